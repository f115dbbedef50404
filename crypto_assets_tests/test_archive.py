"""The archive source: CHECKSUM rule, CSV parsing and the client against the stand-in's archive."""

import hashlib
import io
import zipfile
from datetime import date, datetime, timezone

import pandas as pd
import pytest
import requests

from crypto_assets.klines.frames import day_start_ms
from crypto_assets.klines.raw import archive_raw_frame, source_for_day
from crypto_assets.klines.resources import binance_archive_resource
from crypto_assets.klines.transform import raw_frame
from crypto_assets.sources.binance_archive import (
    ArchiveDayMissing,
    ArchiveError,
    BinanceArchiveClient,
    ChecksumMismatch,
    parse_checksum,
)
from crypto_assets.sources.pacing import RetryPolicy
from crypto_assets_tests.binance_standin import BinanceStandIn
from crypto_assets_tests.conftest import synthetic_days

FETCHED_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
MS_DAY, US_DAY = (
    "2024-12-31",
    "2025-01-01",
)  # the last millisecond-era day, the first microsecond one
NAME = "BTCUSDT-1m-2025-01-01.zip"
DIGEST = "a" * 64


@pytest.fixture(scope="module")
def archive_rows() -> list[list]:
    """Two days of 1m candles either side of the archive's switch to microseconds."""
    return synthetic_days(MS_DAY, 2, seed=3)


@pytest.fixture
def standin(archive_rows):
    with BinanceStandIn({("BTCUSDT", "1m"): [list(row) for row in archive_rows]}) as server:
        yield server


def client(standin: BinanceStandIn) -> BinanceArchiveClient:
    return BinanceArchiveClient(
        standin.url, retry=RetryPolicy(max_attempts=3), sleep=lambda _seconds: None
    )


def zip_path(day: str) -> str:
    return f"/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{day}.zip"


@pytest.mark.parametrize(
    "text",
    [f"{DIGEST}  {NAME}", f"{DIGEST}  {NAME}\n", f"{DIGEST.upper()}  {NAME}\r\n", DIGEST],
)
def test_checksum_file_gives_the_lower_case_digest(text):
    assert parse_checksum(text, NAME) == DIGEST


@pytest.mark.parametrize(
    ("text", "complaint"),
    [("", "is not"), ("<html>404</html>", "is not"), (f"{DIGEST}  other.zip", "another file")],
)
def test_checksum_file_that_is_not_one_is_refused(text, complaint):
    with pytest.raises(ArchiveError, match=complaint):
        parse_checksum(text, NAME)


def test_days_before_yesterday_use_the_archive_and_the_last_two_days_rest():
    today = date(2026, 3, 10)
    assert source_for_day("2026-03-08", today, archive_enabled=True) == "archive"
    assert source_for_day("2017-08-17", today, archive_enabled=True) == "archive"
    assert source_for_day("2026-03-09", today, archive_enabled=True) == "rest"
    assert source_for_day("2026-03-10", today, archive_enabled=True) == "rest"
    assert source_for_day("2026-03-08", today, archive_enabled=False) == "rest"


def test_archive_url_setting_defaults_follow_the_rest_server():
    assert binance_archive_resource({}).base_url == "https://data.binance.vision"
    assert binance_archive_resource({"BINANCE_ARCHIVE_URL": ""}).get_client() is None
    stand_in = {"BINANCE_BASE_URL": "http://127.0.0.1:9"}
    assert binance_archive_resource(stand_in).get_client() is None
    named = {**stand_in, "BINANCE_ARCHIVE_URL": "http://127.0.0.1:9/"}
    assert named and binance_archive_resource(named).get_client().base_url == "http://127.0.0.1:9"


def test_archive_csv_in_microseconds_or_milliseconds_gives_the_rest_frame():
    """Two candles written by hand as the archive writes them, against REST's rows for them."""
    rest_rows = [
        [
            *(1735689600000, "93576.00000000", "93610.93000000", "93537.50000000"),
            *("93610.93000000", "8.21827000", 1735689659999, "768978.14867470"),
            *(2631, "3.95212000", "369849.15433370", "0"),
        ],
        [
            *(1735689660000, "93610.93000000", "93652.00000000", "93606.00000000"),
            *("93652.00000000", "5.36530000", 1735689719999, "502451.37019860"),
            *(1701, "2.93917000", "275218.44633370", "0"),
        ],
    ]
    expected = raw_frame(rest_rows, "BTCUSDT", "1m", FETCHED_AT)
    microseconds = (
        b"1735689600000000,93576.00000000,93610.93000000,93537.50000000,93610.93000000,"
        b"8.21827000,1735689659999999,768978.14867470,2631,3.95212000,369849.15433370,0\n"
        b"1735689660000000,93610.93000000,93652.00000000,93606.00000000,93652.00000000,"
        b"5.36530000,1735689719999999,502451.37019860,1701,2.93917000,275218.44633370,0"
    )
    milliseconds = microseconds
    for micro, milli in [
        (b"1735689600000000", b"1735689600000"),
        (b"1735689659999999", b"1735689659999"),
        (b"1735689660000000", b"1735689660000"),
        (b"1735689719999999", b"1735689719999"),
    ]:
        milliseconds = milliseconds.replace(micro, milli)
    headered = (
        b"open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        b"taker_buy_volume,taker_buy_quote_volume,ignore\n" + milliseconds
    )
    for csv in (microseconds, milliseconds, headered):
        pd.testing.assert_frame_equal(archive_raw_frame(csv, "BTCUSDT", "1m", FETCHED_AT), expected)


def test_a_csv_that_is_not_klines_is_refused_naming_the_file():
    with pytest.raises(ValueError, match=r"BTCUSDT-1m-2025-01-01\.zip"):
        archive_raw_frame(b"1735689600000,oops\n", "BTCUSDT", "1m", FETCHED_AT, file_name=NAME)


@pytest.mark.parametrize("day", [MS_DAY, US_DAY])
def test_a_verified_archive_day_equals_the_rest_rows(standin, archive_rows, day):
    fetched = client(standin).fetch_day("BTCUSDT", "1m", day)

    published = requests.get(f"{standin.url}{zip_path(day)}", timeout=10)
    assert fetched.sha256 == hashlib.sha256(published.content).hexdigest()
    assert fetched.url == f"{standin.url}{zip_path(day)}"
    with zipfile.ZipFile(io.BytesIO(published.content)) as archive:
        assert archive.namelist() == [f"BTCUSDT-1m-{day}.csv"]
        (member,) = archive.infolist()
    # deflated, as Binance's are, so the client's inflating and its size limits are exercised
    assert member.compress_type == zipfile.ZIP_DEFLATED
    assert member.compress_size < member.file_size / 2
    first_time = fetched.csv.split(b",", 1)[0]
    assert len(first_time) == (16 if day == US_DAY else 13)  # us from 2025 on, as Binance writes

    start = day_start_ms(day)
    served = [row for row in archive_rows if start <= row[0] < start + 86_400_000]
    pd.testing.assert_frame_equal(
        archive_raw_frame(fetched.csv, "BTCUSDT", "1m", FETCHED_AT),
        raw_frame(served, "BTCUSDT", "1m", FETCHED_AT),
    )


def test_a_checksum_mismatch_is_fetched_once_more_then_refused_naming_both_hashes(standin):
    standin.set_archive_variant(MS_DAY, "bad_checksum")
    published = requests.get(f"{standin.url}{zip_path(MS_DAY)}", timeout=10).content
    actual = hashlib.sha256(published).hexdigest()
    claimed = parse_checksum(
        requests.get(f"{standin.url}{zip_path(MS_DAY)}.CHECKSUM", timeout=10).text,
        f"BTCUSDT-1m-{MS_DAY}.zip",
    )
    standin.requests.clear()

    with pytest.raises(ChecksumMismatch) as refused:
        client(standin).fetch_day("BTCUSDT", "1m", MS_DAY)

    message = str(refused.value)
    assert f"BTCUSDT-1m-{MS_DAY}.zip" in message and actual in message and claimed in message
    zip_fetches = [entry for entry in standin.requests if entry["path"] == zip_path(MS_DAY)]
    assert len(zip_fetches) == 2


def test_a_truncated_zip_is_refused_even_when_its_checksum_matches(standin):
    standin.set_archive_variant(MS_DAY, "truncated")
    with pytest.raises(ArchiveError, match="not a readable zip"):
        client(standin).fetch_day("BTCUSDT", "1m", MS_DAY)


def test_a_day_not_published_is_missing(standin):
    standin.set_archive_variant(MS_DAY, "missing")
    with pytest.raises(ArchiveDayMissing, match="404"):
        client(standin).fetch_day("BTCUSDT", "1m", MS_DAY)
    with pytest.raises(ArchiveDayMissing):
        client(standin).fetch_day("BTCUSDT", "1m", "2019-01-01")  # no candles served that day


def test_a_server_error_is_retried_then_the_day_loads(standin):
    standin.inject("500", path=zip_path(US_DAY))
    fetched = client(standin).fetch_day("BTCUSDT", "1m", US_DAY)
    statuses = [entry["status"] for entry in standin.requests if entry["path"] == zip_path(US_DAY)]
    assert statuses == [500, 200]
    assert len(archive_raw_frame(fetched.csv, "BTCUSDT", "1m", FETCHED_AT)) == 1440


def test_a_headered_archive_file_loads_like_a_plain_one(standin, archive_rows):
    plain = client(standin).fetch_day("BTCUSDT", "1m", US_DAY)
    standin.set_archive_variant(US_DAY, "headered")
    headered = client(standin).fetch_day("BTCUSDT", "1m", US_DAY)

    assert headered.csv.startswith(b"open_time,open,high,")
    assert headered.sha256 != plain.sha256
    pd.testing.assert_frame_equal(
        archive_raw_frame(headered.csv, "BTCUSDT", "1m", FETCHED_AT),
        archive_raw_frame(plain.csv, "BTCUSDT", "1m", FETCHED_AT),
    )


@pytest.mark.faults
def test_a_zip_bomb_with_a_matching_checksum_is_refused_before_it_is_inflated(standin):
    standin.set_archive_variant(MS_DAY, "zip_bomb")
    with pytest.raises(ArchiveError) as refused:
        client(standin).fetch_day("BTCUSDT", "1m", MS_DAY)
    assert str(refused.value) == (
        f"BTCUSDT-1m-{MS_DAY}.zip would unpack to 68,157,440 bytes, over the 67,108,864 a day's"
        " CSV may have; the day is not loaded."
    )
    zip_fetches = [entry for entry in standin.requests if entry["path"] == zip_path(MS_DAY)]
    assert len(zip_fetches) == 1


@pytest.mark.faults
def test_a_download_larger_than_any_days_file_is_stopped_and_not_retried(standin):
    standin.set_archive_variant(MS_DAY, "oversized")
    with pytest.raises(ArchiveError) as refused:
        client(standin).fetch_day("BTCUSDT", "1m", MS_DAY)
    assert str(refused.value) == (
        f"GET {standin.url}{zip_path(MS_DAY)} sent over 33,554,432 bytes, more than any day's"
        " file has; the download was stopped and the day is not loaded."
    )
    zip_fetches = [entry for entry in standin.requests if entry["path"] == zip_path(MS_DAY)]
    assert len(zip_fetches) == 1
