-- =============================================================================
-- 05_analytics_tables.sql
-- The analysis layer's tables (Dagster group analytics); 06_read_only_role.sql
-- grants the dashboard and analysts SELECT on them.
--
-- Run as : SYSADMIN (owns the tables; CRYPTO_PIPELINE writes them through the
--          FUTURE TABLES grant of 01_role_and_grants.sql).
-- Needs  : 00, 01 and 02. Idempotent: CREATE ... IF NOT EXISTS, and granting a
--          privilege a role already holds is a no-op. Never CREATE OR REPLACE a
--          table here: the bar tables are rebuilt day by day, not whole.
-- Next   : 06_read_only_role.sql
--
-- Column names are the lower-case names the assets write, upper-cased as
-- write_pandas sends them (quoted). "SAMPLE" and "START" are reserved words in
-- Snowflake and "END" in DuckDB (fakesnow): quote them in queries too, e.g.
--   SELECT "START", "END" FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS WHERE "SAMPLE" = 'full';
-- Timestamps are TIMESTAMP_NTZ holding UTC, like BTCUSDT.
--
-- Upgrading a deployment that ran the former 05_views.sql: its views
-- BTCUSDT_1H and BTCUSDT_1D have the names of two tables below. Drop them
-- once, before running this script:
--   DROP VIEW IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_1H;
--   DROP VIEW IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_1D;
-- The former BTCUSDT_DAILY_INDICATORS table is superseded by
-- BTCUSDT_INDICATORS_1D and may be dropped.
-- =============================================================================

USE ROLE SYSADMIN;

-- Bars resampled from BTCUSDT inside Snowflake (DELETE + INSERT ... SELECT per
-- range of UTC days), one table per timeframe.
CREATE TABLE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_1H (
    OPEN_TIME          TIMESTAMP_NTZ COMMENT 'Bucket start, UTC',
    SYMBOL             VARCHAR       COMMENT 'Binance symbol',
    OPEN               FLOAT         COMMENT 'Open of the first candle',
    HIGH               FLOAT         COMMENT 'Highest high',
    LOW                FLOAT         COMMENT 'Lowest low',
    CLOSE              FLOAT         COMMENT 'Close of the last candle',
    VOLUME             FLOAT         COMMENT 'Base asset volume (BTC)',
    QUOTE_ASSET_VOLUME FLOAT         COMMENT 'Quote asset volume (USDT)',
    NUM_TRADES         NUMBER(38, 0) COMMENT 'Trades',
    TAKER_BASE_VOL     FLOAT         COMMENT 'Taker buy base volume',
    TAKER_QUOTE_VOL    FLOAT         COMMENT 'Taker buy quote volume',
    CANDLE_COUNT       NUMBER(38, 0) COMMENT 'Base candles in the bucket',
    IS_COMPLETE        BOOLEAN       COMMENT 'FALSE while the bucket is not yet whole (e.g. today)'
)
COMMENT = 'BTCUSDT 1h bars resampled from BTCUSDT by the Dagster asset btcusdt_1h; rebuilt by UTC day.';

CREATE TABLE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_4H (
    OPEN_TIME          TIMESTAMP_NTZ COMMENT 'Bucket start, UTC',
    SYMBOL             VARCHAR       COMMENT 'Binance symbol',
    OPEN               FLOAT         COMMENT 'Open of the first candle',
    HIGH               FLOAT         COMMENT 'Highest high',
    LOW                FLOAT         COMMENT 'Lowest low',
    CLOSE              FLOAT         COMMENT 'Close of the last candle',
    VOLUME             FLOAT         COMMENT 'Base asset volume (BTC)',
    QUOTE_ASSET_VOLUME FLOAT         COMMENT 'Quote asset volume (USDT)',
    NUM_TRADES         NUMBER(38, 0) COMMENT 'Trades',
    TAKER_BASE_VOL     FLOAT         COMMENT 'Taker buy base volume',
    TAKER_QUOTE_VOL    FLOAT         COMMENT 'Taker buy quote volume',
    CANDLE_COUNT       NUMBER(38, 0) COMMENT 'Base candles in the bucket',
    IS_COMPLETE        BOOLEAN       COMMENT 'FALSE while the bucket is not yet whole (e.g. today)'
)
COMMENT = 'BTCUSDT 4h bars resampled from BTCUSDT by the Dagster asset btcusdt_4h; rebuilt by UTC day.';

CREATE TABLE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_1D (
    OPEN_TIME          TIMESTAMP_NTZ COMMENT 'Bucket start, UTC',
    SYMBOL             VARCHAR       COMMENT 'Binance symbol',
    OPEN               FLOAT         COMMENT 'Open of the first candle',
    HIGH               FLOAT         COMMENT 'Highest high',
    LOW                FLOAT         COMMENT 'Lowest low',
    CLOSE              FLOAT         COMMENT 'Close of the last candle',
    VOLUME             FLOAT         COMMENT 'Base asset volume (BTC)',
    QUOTE_ASSET_VOLUME FLOAT         COMMENT 'Quote asset volume (USDT)',
    NUM_TRADES         NUMBER(38, 0) COMMENT 'Trades',
    TAKER_BASE_VOL     FLOAT         COMMENT 'Taker buy base volume',
    TAKER_QUOTE_VOL    FLOAT         COMMENT 'Taker buy quote volume',
    CANDLE_COUNT       NUMBER(38, 0) COMMENT 'Base candles in the bucket',
    IS_COMPLETE        BOOLEAN       COMMENT 'FALSE while the bucket is not yet whole (e.g. today)'
)
COMMENT = 'BTCUSDT 1d bars resampled from BTCUSDT by the Dagster asset btcusdt_1d; rebuilt by UTC day.';

-- TA-Lib indicators over the whole history of complete bars; rewritten whole.

CREATE TABLE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_INDICATORS_1H (
    OPEN_TIME        TIMESTAMP_NTZ COMMENT 'Bar start, UTC',
    CLOSE            FLOAT         COMMENT 'Bar close',
    SMA_20           FLOAT         COMMENT 'SMA 20',
    SMA_50           FLOAT         COMMENT 'SMA 50',
    SMA_200          FLOAT         COMMENT 'SMA 200',
    EMA_12           FLOAT         COMMENT 'EMA 12',
    EMA_26           FLOAT         COMMENT 'EMA 26',
    RSI_14           FLOAT         COMMENT 'RSI 14 (Wilder)',
    MACD             FLOAT         COMMENT 'MACD 12/26',
    MACD_SIGNAL      FLOAT         COMMENT 'MACD signal 9',
    MACD_HIST        FLOAT         COMMENT 'MACD - signal',
    BB_UPPER         FLOAT         COMMENT 'Bollinger 20, 2: upper',
    BB_MIDDLE        FLOAT         COMMENT 'Bollinger 20, 2: middle',
    BB_LOWER         FLOAT         COMMENT 'Bollinger 20, 2: lower',
    ATR_14           FLOAT         COMMENT 'ATR 14',
    OBV              FLOAT         COMMENT 'On-balance volume',
    TAKER_BUY_RATIO  FLOAT         COMMENT 'TAKER_BASE_VOL / VOLUME',
    NET_TAKER_VOLUME FLOAT         COMMENT '2 * TAKER_BASE_VOL - VOLUME',
    VOLATILITY_30    FLOAT         COMMENT 'Annualised std of the last 30 log returns'
)
COMMENT = 'TA-Lib indicators on every complete 1h bar; NULL during warm-up. Rewritten whole.';

CREATE TABLE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_INDICATORS_1D (
    OPEN_TIME        TIMESTAMP_NTZ COMMENT 'Bar start, UTC',
    CLOSE            FLOAT         COMMENT 'Bar close',
    SMA_20           FLOAT         COMMENT 'SMA 20',
    SMA_50           FLOAT         COMMENT 'SMA 50',
    SMA_200          FLOAT         COMMENT 'SMA 200',
    EMA_12           FLOAT         COMMENT 'EMA 12',
    EMA_26           FLOAT         COMMENT 'EMA 26',
    RSI_14           FLOAT         COMMENT 'RSI 14 (Wilder)',
    MACD             FLOAT         COMMENT 'MACD 12/26',
    MACD_SIGNAL      FLOAT         COMMENT 'MACD signal 9',
    MACD_HIST        FLOAT         COMMENT 'MACD - signal',
    BB_UPPER         FLOAT         COMMENT 'Bollinger 20, 2: upper',
    BB_MIDDLE        FLOAT         COMMENT 'Bollinger 20, 2: middle',
    BB_LOWER         FLOAT         COMMENT 'Bollinger 20, 2: lower',
    ATR_14           FLOAT         COMMENT 'ATR 14',
    OBV              FLOAT         COMMENT 'On-balance volume',
    TAKER_BUY_RATIO  FLOAT         COMMENT 'TAKER_BASE_VOL / VOLUME',
    NET_TAKER_VOLUME FLOAT         COMMENT '2 * TAKER_BASE_VOL - VOLUME',
    VOLATILITY_30    FLOAT         COMMENT 'Annualised std of the last 30 log returns'
)
COMMENT = 'TA-Lib indicators on every complete 1d bar; NULL during warm-up. Rewritten whole.';

-- Market structure.

CREATE TABLE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_LEVELS (
    PRICE        FLOAT         COMMENT 'Level price (mean of its swing prices)',
    KIND         VARCHAR       COMMENT 'support or resistance (below / above the last close)',
    TIMEFRAME    VARCHAR       COMMENT '1d or 4h',
    TOUCHES      NUMBER(38, 0) COMMENT 'Swing points in the cluster (a flat top is one)',
    STRENGTH     FLOAT         COMMENT 'Sum of the swings'' recency weights',
    FIRST_TOUCH  TIMESTAMP_NTZ COMMENT 'First swing',
    LAST_TOUCH   TIMESTAMP_NTZ COMMENT 'Last swing',
    LAST_CLOSE   FLOAT         COMMENT 'Close of the newest complete bar',
    DISTANCE_PCT FLOAT         COMMENT 'PRICE / LAST_CLOSE - 1'
)
COMMENT = 'Support and resistance from recency-weighted swing highs/lows of the 1d and 4h bars.';

CREATE TABLE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_VOLUME_PROFILE (
    BIN_LOW           FLOAT         COMMENT 'Bin low',
    BIN_HIGH          FLOAT         COMMENT 'Bin high',
    PRICE             FLOAT         COMMENT 'Bin middle',
    VOLUME            FLOAT         COMMENT 'Volume traded in the bin',
    TAKER_BUY_VOLUME  FLOAT         COMMENT 'Taker buy volume',
    TAKER_SELL_VOLUME FLOAT         COMMENT 'VOLUME - TAKER_BUY_VOLUME',
    IS_POC            BOOLEAN       COMMENT 'The point of control',
    IN_VALUE_AREA     BOOLEAN       COMMENT 'Inside the 70% value area',
    WINDOW_START      TIMESTAMP_NTZ COMMENT 'First 1h bar of the window',
    WINDOW_END        TIMESTAMP_NTZ COMMENT 'Close time of the last 1h bar of the window'
)
COMMENT = 'Volume by price over the last 90 days of 1h bars, with the POC and the 70% value area.';

-- Backtests: the grid, the trades and the daily equity of the selected sets.

CREATE TABLE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS (
    STRATEGY               VARCHAR       COMMENT 'Strategy name',
    PARAMS                 VARCHAR       COMMENT 'Parameter set as JSON text; walk_forward: fold start -> set',
    TIMEFRAME              VARCHAR       COMMENT '1h, 4h or 1d',
    "SAMPLE"               VARCHAR       COMMENT 'full, in_sample, out_of_sample or walk_forward',
    "START"                TIMESTAMP_NTZ COMMENT 'Open time of the first bar (inside the newest stretch)',
    "END"                  TIMESTAMP_NTZ COMMENT 'End of the last bar',
    TOTAL_RETURN           FLOAT         COMMENT 'Final equity - 1',
    CAGR                   FLOAT         COMMENT 'Compound annual growth; NULL under 90 days',
    SHARPE                 FLOAT         COMMENT 'Daily returns, 365/yr, rf 0, ddof 1',
    SORTINO                FLOAT         COMMENT 'Daily returns over downside deviation',
    MAX_DRAWDOWN           FLOAT         COMMENT 'Deepest fall from peak, equity at every bar close (<= 0)',
    MAX_DRAWDOWN_DAYS      FLOAT         COMMENT 'Longest time under a previous peak, days',
    CALMAR                 FLOAT         COMMENT 'CAGR / |MAX_DRAWDOWN|; NULL under 90 days',
    WIN_RATE               FLOAT         COMMENT 'Share of winning trades',
    TRADES                 NUMBER(38, 0) COMMENT 'Round trips',
    EXPOSURE               FLOAT         COMMENT 'Share of bars in the market',
    PROFIT_FACTOR          FLOAT         COMMENT 'Gross profit / gross loss; NULL without a losing trade',
    AVG_TRADE_RETURN       FLOAT         COMMENT 'Mean trade return, net of fees',
    AVG_BARS_HELD          FLOAT         COMMENT 'Mean bars a trade is held',
    MAX_CONSECUTIVE_LOSSES NUMBER(38, 0) COMMENT 'Longest run of losing trades',
    EXCESS_RETURN          FLOAT         COMMENT 'TOTAL_RETURN - buy and hold''s, same timeframe and sample',
    STOP_LOSS_PCT          FLOAT         COMMENT 'Stop below the entry fill (0.05 = 5%); NULL: none',
    TAKE_PROFIT_PCT        FLOAT         COMMENT 'Target above the entry fill; NULL: none',
    POSITION_SIZE          FLOAT         COMMENT 'Fraction of equity per entry; NULL for walk_forward',
    FEE_BPS                FLOAT         COMMENT 'Fee per side, bps',
    SLIPPAGE_BPS           FLOAT         COMMENT 'Slippage per side, bps',
    SELECTED               BOOLEAN       COMMENT 'Best in-sample Sharpe (or a ranked walk-forward); FALSE when none could be ranked'
)
COMMENT = 'One row per strategy x parameter set x sample on the newest contiguous stretch; metric conventions in the README.';

CREATE TABLE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTEST_TRADES (
    STRATEGY     VARCHAR       COMMENT 'Strategy name',
    PARAMS       VARCHAR       COMMENT 'Parameter set as JSON text',
    TIMEFRAME    VARCHAR       COMMENT '1h, 4h or 1d',
    "SAMPLE"     VARCHAR       COMMENT 'full, in_sample, out_of_sample or walk_forward',
    ENTRY_TIME   TIMESTAMP_NTZ COMMENT 'Fill time of the buy (bar open)',
    ENTRY_PRICE  FLOAT         COMMENT 'Buy fill price, slippage included',
    EXIT_TIME    TIMESTAMP_NTZ COMMENT 'Open of the exit bar; end of the last bar for end_of_sample',
    EXIT_PRICE   FLOAT         COMMENT 'Sale fill price, slippage included',
    TRADE_RETURN FLOAT         COMMENT 'Net of fees, on the position',
    EXIT_REASON  VARCHAR       COMMENT 'signal, stop_loss, take_profit or end_of_sample',
    BARS_HELD    NUMBER(38, 0) COMMENT 'Bars the position was open in'
)
COMMENT = 'Round trips of the selected parameter sets and the walk-forwards, per sample.';

CREATE TABLE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTEST_EQUITY (
    STRATEGY  VARCHAR       COMMENT 'Strategy name',
    PARAMS    VARCHAR       COMMENT 'Parameter set as JSON text',
    TIMEFRAME VARCHAR       COMMENT '1h, 4h or 1d',
    "SAMPLE"  VARCHAR       COMMENT 'full, in_sample, out_of_sample or walk_forward',
    DAY       TIMESTAMP_NTZ COMMENT 'UTC day',
    EQUITY    FLOAT         COMMENT 'Equity at the day''s last bar, 1.0 at the start',
    DRAWDOWN  FLOAT         COMMENT 'Deepest EQUITY / running peak - 1 of the day''s bars (<= 0)'
)
COMMENT = 'Daily equity and drawdown of the selected parameter sets and the walk-forwards, per sample.';

-- Upgrading a deployment created before the trade statistics, exits and
-- walk-forward (each column once; ADD COLUMN IF NOT EXISTS is idempotent):
ALTER TABLE IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS ADD COLUMN IF NOT EXISTS MAX_DRAWDOWN_DAYS FLOAT;
ALTER TABLE IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS ADD COLUMN IF NOT EXISTS PROFIT_FACTOR FLOAT;
ALTER TABLE IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS ADD COLUMN IF NOT EXISTS AVG_TRADE_RETURN FLOAT;
ALTER TABLE IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS ADD COLUMN IF NOT EXISTS AVG_BARS_HELD FLOAT;
ALTER TABLE IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS ADD COLUMN IF NOT EXISTS MAX_CONSECUTIVE_LOSSES NUMBER(38, 0);
ALTER TABLE IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS ADD COLUMN IF NOT EXISTS EXCESS_RETURN FLOAT;
ALTER TABLE IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS ADD COLUMN IF NOT EXISTS STOP_LOSS_PCT FLOAT;
ALTER TABLE IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS ADD COLUMN IF NOT EXISTS TAKE_PROFIT_PCT FLOAT;
ALTER TABLE IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS ADD COLUMN IF NOT EXISTS POSITION_SIZE FLOAT;
ALTER TABLE IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTEST_TRADES ADD COLUMN IF NOT EXISTS EXIT_REASON VARCHAR;
ALTER TABLE IF EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTEST_TRADES ADD COLUMN IF NOT EXISTS BARS_HELD NUMBER(38, 0);

-- Whole-table outputs are replaced by swapping in a staging table the pipeline
-- has just written (ALTER TABLE ... SWAP WITH, see warehouse_snowflake.py),
-- and a SWAP needs OWNERSHIP of both tables: the pipeline owns these. The
-- staging table is created LIKE the table, COPY GRANTS, so the dashboard's
-- SELECT (06_read_only_role.sql) survives every swap, and SYSADMIN still
-- manages them through the role hierarchy.

GRANT OWNERSHIP ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_INDICATORS_1H TO ROLE CRYPTO_PIPELINE COPY CURRENT GRANTS;
GRANT OWNERSHIP ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_INDICATORS_1D TO ROLE CRYPTO_PIPELINE COPY CURRENT GRANTS;
GRANT OWNERSHIP ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_LEVELS TO ROLE CRYPTO_PIPELINE COPY CURRENT GRANTS;
GRANT OWNERSHIP ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_VOLUME_PROFILE TO ROLE CRYPTO_PIPELINE COPY CURRENT GRANTS;
GRANT OWNERSHIP ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS TO ROLE CRYPTO_PIPELINE COPY CURRENT GRANTS;
GRANT OWNERSHIP ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTEST_TRADES TO ROLE CRYPTO_PIPELINE COPY CURRENT GRANTS;
GRANT OWNERSHIP ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTEST_EQUITY TO ROLE CRYPTO_PIPELINE COPY CURRENT GRANTS;
