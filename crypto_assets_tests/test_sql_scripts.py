"""The sql/ scripts that set Snowflake up from zero: they parse, and they run on fakesnow.

Every statement of every script must parse as Snowflake SQL with sqlglot. Then the scripts run in
numeric order against fakesnow's server mode (a local HTTP server that the real
snowflake-connector-python talks to, backed by DuckDB). Statements fakesnow cannot emulate are
skipped only through FAKESNOW_UNSUPPORTED below, which names each kind and why; anything else that
fails, fails the test. Two synthetic days of 1m candles then go into BTCUSDT, and the capstone
check and the verification queries are checked against values computed here in Python (the
analytics bars built from BTCUSDT are checked in test_analytics_snowflake.py).
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import snowflake.connector
import sqlglot
from snowflake.connector import DictCursor, SnowflakeConnection
from snowflake.connector.util_text import split_statements
from sqlglot import exp

# fakesnow's own DuckDB-to-Arrow copy warns on every query; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
SQL_FILES = sorted(SQL_DIR.glob("*.sql"), key=lambda path: int(path.name.split("_", 1)[0]))
TABLE = "CRYPTODB.CRYPTOSCHEMA.BTCUSDT"
CAPSTONE_QUERY = "SELECT * FROM cryptodb.cryptoschema.btcusdt"
FIRST_DAY = datetime(2024, 1, 1)
CANDLES_PER_DAY = 1440
DAYS = 2

# The only statement kinds allowed to go unexecuted on fakesnow, and why. Every kind listed must
# occur in sql/ (a stale entry fails the test), and any statement of a kind not listed must run.
FAKESNOW_UNSUPPORTED: dict[str, str] = {
    "CREATE WAREHOUSE": "fakesnow (DuckDB) has no virtual warehouses; USE WAREHOUSE is a no-op",
    "CREATE ROLE": "fakesnow has no access control: no roles",
    "CREATE USER": "fakesnow parses a bare CREATE USER only, not TYPE or DEFAULT_* properties",
    "GRANT": "fakesnow has no access control: no privileges, no future grants",
    "SHOW GRANTS": "fakesnow has no access control to show",
    "SHOW FUTURE GRANTS": "fakesnow has no access control to show",
    "CREATE STORAGE INTEGRATION": "an account-level AWS IAM trust object; fakesnow has none",
    "DESC INTEGRATION": "no integrations in fakesnow (it answers HTTP 500)",
    "CREATE PIPE": "Snowpipe (serverless, S3-event driven COPY) is not emulated by fakesnow",
    "SHOW PIPES": "no pipes in fakesnow",
}

# Kinds that must reach fakesnow and run (proof that the skip list is not swallowing them).
MUST_RUN = {
    "CREATE DATABASE",
    "CREATE SCHEMA",
    "CREATE TABLE",
    "CREATE FILE FORMAT",
    "CREATE STAGE",
    "SELECT",
}

_KIND = re.compile(
    r"""
    (?P<create>CREATE) \s+ (?:OR \s+ REPLACE \s+)? (?:(?:SECURE|TEMPORARY|TEMP|TRANSIENT) \s+)?
        (?P<object>STORAGE \s+ INTEGRATION | FILE \s+ FORMAT | \w+)
    | (?P<verb>DESCRIBE|DESC|SHOW|USE|ALTER|DROP) \s+ (?P<target>(?:FUTURE \s+ | TERSE \s+)? \w+)
    | (?P<word>\w+)
    """,
    re.IGNORECASE | re.VERBOSE,
)


def statement_kind(statement: str) -> str:
    """'CREATE OR REPLACE VIEW x ...' -> 'CREATE VIEW', 'GRANT ...' -> 'GRANT', etc."""
    match = _KIND.match(statement.strip())
    assert match, f"Cannot classify statement: {statement!r}"
    if match["create"]:
        kind = f"CREATE {match['object']}"
    elif match["verb"]:
        verb = "DESC" if match["verb"].upper() == "DESCRIBE" else match["verb"]
        kind = f"{verb} {match['target']}"
    else:
        kind = match["word"]
    return " ".join(kind.upper().split())


def statements(path: Path) -> list[str]:
    """The file split the way snowflake-connector-python splits a script (execute_string)."""
    text = path.read_text()
    return [
        sql for sql, _ in split_statements(io.StringIO(text), remove_comments=True) if sql.strip()
    ]


def test_sql_files_are_numbered_in_run_order() -> None:
    names = [path.name for path in SQL_FILES]
    assert names, f"no .sql files in {SQL_DIR}"
    assert all(re.fullmatch(r"\d{2}_[a-z0-9_]+\.sql", name) for name in names), names
    assert len({name[:2] for name in names}) == len(names), "two scripts share a number"
    assert names[0].startswith("00_") and names[-1] == "90_verify.sql"


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda path: path.name)
def test_every_statement_parses_as_snowflake(path: Path) -> None:
    text = path.read_text()
    parsed = [
        expression
        for expression in sqlglot.parse(text, read="snowflake")
        # a trailing comment-only block parses as a bare Semicolon holding the comment
        if expression is not None and not isinstance(expression, exp.Semicolon)
    ]
    assert len(parsed) > 0
    # sqlglot and the connector must agree on where statements end.
    assert len(parsed) == len(statements(path))

    for statement in statements(path):
        expression = sqlglot.parse_one(statement, read="snowflake")
        kind = statement_kind(statement)
        # sqlglot falls back to an opaque Command for syntax it does not model, which is fine
        # for GRANT / CREATE PIPE / SHOW, but tables, views and queries must be fully understood.
        if kind == "CREATE TABLE":
            assert isinstance(expression, exp.Create) and expression.kind == "TABLE", statement
        elif kind == "CREATE VIEW":
            assert isinstance(expression, exp.Create) and expression.kind == "VIEW", statement
        elif kind == "SELECT":
            assert isinstance(expression, exp.Select), statement
        if kind in {"CREATE TABLE", "CREATE VIEW", "SELECT"}:
            assert not list(expression.find_all(exp.Command)), statement


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda path: path.name)
def test_header_names_the_role_and_no_inline_credentials(path: Path) -> None:
    text = path.read_text()
    header = text.split("\n\n", 1)[0]
    assert header.startswith("-- ") and "Run as :" in header and "Needs" in header
    assert re.search(r"\b(SYSADMIN|SECURITYADMIN|ACCOUNTADMIN|CRYPTO_PIPELINE)\b", header)

    # The capstone pasted AWS keys into its stage; comments may warn about that, SQL may not.
    sql = "\n".join(statements(path)).upper()
    for forbidden in ("CREDENTIALS", "AWS_KEY_ID", "AWS_SECRET_KEY", "AWS_TOKEN", "PASSWORD"):
        assert forbidden not in sql, f"{path.name}: {forbidden} in SQL"
    assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", text), f"{path.name}: AWS access key id"


def synthetic_candles(seed: int = 7) -> list[dict[str, Any]]:
    """DAYS x 1440 BTCUSDT 1m candles with valid OHLC, and derived columns as the pipeline has."""
    rng = random.Random(seed)
    price = 42_000.0
    rows = []
    for minute in range(DAYS * CANDLES_PER_DAY):
        open_time = FIRST_DAY + timedelta(minutes=minute)
        open_ = price
        close = open_ * (1 + rng.uniform(-0.002, 0.002))
        high = max(open_, close) * (1 + rng.uniform(0, 0.001))
        low = min(open_, close) * (1 - rng.uniform(0, 0.001))
        assert low <= min(open_, close) <= max(open_, close) <= high
        volume = 0.0 if minute % 600 == 0 else rng.uniform(0.1, 50.0)  # some empty candles
        quote_volume = volume * (high + low + close) / 3
        taker_base = volume * rng.uniform(0, 1)
        rows.append(
            {
                "OPEN_TIME": open_time,
                "SYMBOL": "BTCUSDT",
                "INTERVAL": "1m",
                "OPEN": open_,
                "HIGH": high,
                "LOW": low,
                "CLOSE": close,
                "VOLUME": volume,
                "CLOSE_TIME": open_time + timedelta(seconds=59.999),
                "QUOTE_ASSET_VOLUME": quote_volume,
                "NUM_TRADES": rng.randint(1, 900) if volume else 0,
                "TAKER_BASE_VOL": taker_base,
                "TAKER_QUOTE_VOL": taker_base * close,
                "PRICE_DIFF": high - low,
                "PRICE_CHANGE": close - open_,
                "CANDLE_RETURN": close / open_ - 1,
                "TYPICAL_PRICE": (high + low + close) / 3,
                "VWAP": quote_volume / volume if volume else None,
                "TAKER_BUY_RATIO": taker_base / volume if volume else None,
            }
        )
        price = close
    return rows


CANDLES = synthetic_candles()
COLUMN_TYPES = {"OPEN_TIME": "TIMESTAMP_NTZ", "CLOSE_TIME": "TIMESTAMP_NTZ", "NUM_TRADES": "NUMBER"}
COLUMN_TYPES |= {"SYMBOL": "VARCHAR", "INTERVAL": "VARCHAR"}


def insert_candles(conn: SnowflakeConnection, rows: list[dict[str, Any]]) -> None:
    """Insert rows with one statement and one bound JSON array, in shuffled order.

    fakesnow pushes every statement through many sqlglot rewrites, so a 2,880-row VALUES list or
    executemany takes ~10 s there; FLATTEN over a bound PARSE_JSON is standard Snowflake and takes
    well under a second. Shuffling makes queries prove they order by OPEN_TIME, not by arrival.
    """
    columns = list(rows[0])
    shuffled = random.Random(1).sample(rows, len(rows))
    payload = json.dumps(
        [
            {k: v.isoformat(sep=" ") if isinstance(v, datetime) else v for k, v in r.items()}
            for r in shuffled
        ]
    )
    names = ", ".join(f'"{column}"' for column in columns)
    values = ", ".join(f"r.value:{c}::{COLUMN_TYPES.get(c, 'FLOAT')}" for c in columns)
    sql = (
        f"INSERT INTO {TABLE} ({names}) SELECT {values} "
        "FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?))) AS r"
    )
    with conn.cursor() as cur:
        cur.execute(sql, (payload,))
        assert cur.rowcount == len(rows)


@dataclass
class ScriptRun:
    executed: list[tuple[str, str]] = field(default_factory=list)  # (file, kind)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def run_scripts(conn: SnowflakeConnection) -> ScriptRun:
    run = ScriptRun()
    with conn.cursor() as cur:
        for path in SQL_FILES:
            for statement in statements(path):
                kind = statement_kind(statement)
                if kind in FAKESNOW_UNSUPPORTED:
                    run.skipped.append((path.name, kind))
                    continue
                try:
                    cur.execute(statement)
                except snowflake.connector.Error as error:
                    pytest.fail(f"{path.name}: fakesnow failed on {kind}: {error}\n{statement}")
                run.executed.append((path.name, kind))
    return run


def connect(server_kwargs: dict[str, Any]) -> SnowflakeConnection:
    # fakesnow's 1 s network_timeout is tight for the 2,880-row insert on a busy machine.
    kwargs = server_kwargs | {"network_timeout": 15}
    return snowflake.connector.connect(**kwargs, paramstyle="qmark")


@dataclass
class Loaded:
    conn: SnowflakeConnection
    first_run: ScriptRun
    second_run: ScriptRun

    def query(self, sql: str) -> list[dict[str, Any]]:
        with self.conn.cursor(DictCursor) as cur:
            return cur.execute(sql).fetchall()


def load(server_kwargs: dict[str, Any]) -> Loaded:
    """A fresh database: all scripts, the synthetic candles, then all scripts again."""
    conn = connect(server_kwargs)
    first_run = run_scripts(conn)
    insert_candles(conn, CANDLES)
    # Re-running every script must be harmless: IF NOT EXISTS / OR REPLACE, no data lost.
    second_run = run_scripts(conn)
    return Loaded(conn, first_run, second_run)


@pytest.fixture(scope="module")
def loaded(fakesnow_server: dict[str, Any]) -> Iterator[Loaded]:
    state = load(fakesnow_server)
    yield state
    state.conn.close()


def verify_selects() -> list[str]:
    selects = [s for s in statements(SQL_DIR / "90_verify.sql") if statement_kind(s) == "SELECT"]
    assert len(selects) == 4, "90_verify.sql: capstone, per-day, duplicates, incomplete days"
    return selects


def test_scripts_run_in_order_with_only_listed_skips(loaded: Loaded) -> None:
    run = loaded.first_run
    skipped_kinds = {kind for _, kind in run.skipped}
    executed_kinds = {kind for _, kind in run.executed}
    assert skipped_kinds == set(FAKESNOW_UNSUPPORTED), "stale or missing FAKESNOW_UNSUPPORTED entry"
    assert executed_kinds >= MUST_RUN
    assert loaded.second_run == run  # the same statements run the second time, and succeed


def test_capstone_query_returns_every_candle(loaded: Loaded) -> None:
    capstone = verify_selects()[0]
    assert capstone.strip().rstrip(";") == CAPSTONE_QUERY
    rows = loaded.query(capstone)
    assert len(rows) == DAYS * CANDLES_PER_DAY  # and not doubled by the second run of 02_tables
    assert list(rows[0]) == list(CANDLES[0])  # the table's columns, in the documented order
    assert sorted(rows, key=lambda row: row["OPEN_TIME"]) == CANDLES  # every value round-trips


def test_verify_counts_per_day(loaded: Loaded) -> None:
    rows = loaded.query(verify_selects()[1])
    assert [(row["DAY"], row["CANDLES"]) for row in rows] == [
        (date(2024, 1, 1), CANDLES_PER_DAY),
        (date(2024, 1, 2), CANDLES_PER_DAY),
    ]


def test_verify_duplicates_and_incomplete_days(fakesnow_server: dict[str, Any]) -> None:
    _, _, duplicates, incomplete = verify_selects()
    state = load(fakesnow_server)  # its own isolated database: this test changes rows
    try:
        assert state.query(duplicates) == []
        assert state.query(incomplete) == []

        # Lose ten candles of day 2 and load one candle of day 1 twice.
        with state.conn.cursor() as cur:
            cur.execute(
                f"DELETE FROM {TABLE} WHERE OPEN_TIME >= '2024-01-02 05:00:00' "
                "AND OPEN_TIME < '2024-01-02 05:10:00'"
            )
            assert cur.rowcount == 10
        insert_candles(state.conn, [CANDLES[100]])

        assert [(r["OPEN_TIME"], r["COPIES"]) for r in state.query(duplicates)] == [
            (CANDLES[100]["OPEN_TIME"], 2)
        ]
        assert [(r["DAY"], r["CANDLES"], r["MISSING"]) for r in state.query(incomplete)] == [
            (date(2024, 1, 2), CANDLES_PER_DAY - 10, 10)
        ]
    finally:
        state.conn.close()
