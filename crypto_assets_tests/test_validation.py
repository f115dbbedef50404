"""OHLC rules name exactly the candles that break them."""

from datetime import datetime, timezone

import pandas as pd

from crypto_assets.klines.frames import DayBatch
from crypto_assets.klines.transform import clean_frame, raw_frame
from crypto_assets.klines.validation import (
    COMPLETENESS,
    OHLC_RULES,
    ValidationReport,
    check_ohlc,
    validate_days,
    validating,
)

DAY = 1_704_067_200_000


def day_of_klines(count: int = 1440, step: int = 60_000) -> list[list]:
    return [
        [
            DAY + i * step,
            "100",
            "110",
            "90",
            "105",
            "2",
            DAY + i * step + step - 1,
            "210",
            7,
            "1",
            "105",
            "0",
        ]
        for i in range(count)
    ]


def clean(rows: list[list], interval: str = "1m") -> pd.DataFrame:
    return clean_frame(raw_frame(rows, "BTCUSDT", interval, datetime.now(timezone.utc)))


def test_a_sound_day_passes_every_rule():
    report = validate_days([("2024-01-01", clean(day_of_klines()))], "1m")
    assert all(violations.passed for violations in report.rules.values())
    assert report.rows == report.expected_rows == 1440


def offenders(rows: list[list]) -> dict[str, list[str]]:
    found = check_ohlc(clean(rows), "1m")
    return {
        name: [t.strftime("%H:%M") for t in times] for name, times in found.items() if len(times)
    }


def test_each_rule_names_its_offending_open_time():
    cases = {
        "low_at_or_below_open_and_close": (3, "low", "120"),
        "high_at_or_above_open_and_close": (4, "high", "101"),
        "prices_positive": (5, "open", "-1"),
        "volumes_non_negative": (6, "volume", "-2"),
        "taker_quote_within_quote_volume": (7, "taker_quote_vol", "999"),
    }
    positions = {"open": 1, "high": 2, "low": 3, "volume": 5, "taker_quote_vol": 10}
    for rule, (minute, field, value) in cases.items():
        rows = day_of_klines(10)
        rows[minute][positions[field]] = value
        assert f"00:0{minute}" in offenders(rows)[rule], rule


def test_high_below_low_is_caught():
    rows = day_of_klines(10)
    rows[2][2], rows[2][3] = "80", "120"
    found = offenders(rows)
    assert found["low_at_or_below_open_and_close"] == ["00:02"]
    assert found["high_at_or_above_open_and_close"] == ["00:02"]


def test_taker_base_above_volume_and_bad_close_time_and_off_grid():
    rows = day_of_klines(10)
    rows[1][9] = "5"
    rows[2][6] = rows[2][6] + 1
    rows[3][0] = rows[3][0] + 1
    rows[3][6] = rows[3][0] + 59_999
    found = offenders(rows)
    assert found["taker_base_within_volume"] == ["00:01"]
    assert found["close_time_matches_interval"] == ["00:02"]
    assert found["open_time_unique_on_grid"] == ["00:03"]


def test_completeness_lists_missing_open_times_and_counts():
    rows = [row for i, row in enumerate(day_of_klines()) if i not in (5, 700)]
    report = validate_days([("2024-01-01", clean(rows))], "1m")
    missing = report.rules[COMPLETENESS]
    assert missing.count == 2
    assert missing.first_open_times == ["2024-01-01T00:05:00Z", "2024-01-01T11:40:00Z"]
    assert all(report.rules[name].passed for name in OHLC_RULES)


def test_report_keeps_only_the_first_ten_offenders_but_counts_all():
    rows = day_of_klines(30)
    for row in rows:
        row[3] = "200"
    report = validate_days([("2024-01-01", clean(rows))], "1m")
    violations = report.rules["low_at_or_below_open_and_close"]
    assert violations.count == 30
    assert len(violations.first_open_times) == 10
    assert violations.first_open_times[0] == "2024-01-01T00:00:00Z"


def test_rules_read_a_missing_price_as_no_evidence_and_name_duplicate_open_times():
    rows = day_of_klines(4)
    rows[1][4] = "NaN"  # close missing: low and high are judged against open alone
    rows[3] = [*rows[2][:1], "101", *rows[2][2:]]  # a second, different candle at 00:02
    found = offenders(rows)
    assert found == {"open_time_unique_on_grid": ["00:02", "00:02"]}


def days_later(rows: list[list], days: int) -> list[list]:
    shift = days * 86_400_000
    return [[row[0] + shift, *row[1:6], row[6] + shift, *row[7:]] for row in rows]


def test_validating_marks_only_the_days_that_break_an_ohlc_rule():
    broken = days_later(day_of_klines(), 1)
    broken[5][4] = "120"  # close above high
    gappy = days_later(day_of_klines(), 2)[:1000]  # incomplete: warns, never rejected
    batch = DayBatch(
        ["2024-01-01", "2024-01-02", "2024-01-03"],
        pd.concat([clean(day_of_klines()), clean(broken), clean(gappy)], ignore_index=True),
        [1440, 1440, 1000],
    )
    alone = DayBatch.one_day("2024-01-04", clean(days_later(day_of_klines(), 3)))

    passed = list(validating([batch, alone], ValidationReport("1m")))

    assert passed[0].rejections == {
        "2024-01-02": {
            "high_at_or_above_open_and_close": {
                "offending_rows": 1,
                "first_offending_open_times": ["2024-01-02T00:05:00Z"],
            }
        }
    }
    assert passed[1] is alone
    assert passed[1].rejections == {}
