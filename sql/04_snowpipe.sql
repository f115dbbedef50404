-- =============================================================================
-- 04_snowpipe.sql  (OPTIONAL - only if Snowpipe, not Dagster, loads BTCUSDT)
-- Auto-ingest every transformed Parquet file that lands in S3 into BTCUSDT.
--
-- Run as : SYSADMIN (owns the table, stage and file format the pipe uses).
-- Needs  : 02_tables.sql and 03_storage_integration_and_stage.sql. After the
--          first run: SHOW PIPES (below), copy notification_channel (an SQS
--          ARN) and add an S3 event notification on the transformed bucket
--          (s3:ObjectCreated:*, prefix klines/) that targets it. Until then
--          the pipe loads nothing. Backfill files staged in the last 7 days
--          with: ALTER PIPE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_PIPE REFRESH;
--          Idempotent: CREATE PIPE IF NOT EXISTS. Never CREATE OR REPLACE the
--          pipe: a new pipe starts with an empty load history and will load
--          again files the old one already loaded (duplicate rows).
--
-- Snowpipe or the Dagster IO manager? Pick ONE loader per table.
--   * Dagster SnowflakePandasIOManager (this project's default): the load is a
--     Dagster asset - partitioned by day, visible in lineage, scheduled and
--     retried by Dagster. Re-materializing a day DELETEs that day's rows by
--     OPEN_TIME range and INSERTs them again, so corrections and backfills are
--     idempotent. Uses CRYPTO_WH while it runs.
--   * Snowpipe (this file): Snowflake loads each file within about a minute of
--     it landing in S3, serverless (no warehouse), even when something other
--     than Dagster writes the bucket. It is append-only: the pipe remembers
--     each file it loaded, by path and name, for 14 days and skips it -
--     even if the file was rewritten with new content. A corrected day
--     therefore needs a manual
--       DELETE FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT WHERE OPEN_TIME >= '<day>' AND OPEN_TIME < '<day + 1>';
--     followed by a one-off COPY INTO ... PATTERN = '.*date=<day>[.]parquet' FORCE = TRUE.
--   * Both on the same table = double loading: the IO manager inserts a day
--     and the pipe appends the same day again from the S3 file. If Dagster
--     writes BTCUSDT, do not run this script (or pause the pipe:
--     ALTER PIPE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_PIPE SET PIPE_EXECUTION_PAUSED = TRUE;).
--     If the pipe loads BTCUSDT, the Dagster asset must not use the Snowflake
--     IO manager for this table.
--
-- MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE maps Parquet columns (e.g. open_time)
-- to table columns (OPEN_TIME) by name. Every table column must be a column
-- inside the Parquet file - SYMBOL and INTERVAL included, not only in the
-- Hive-style key - otherwise it would load as NULL, which the NOT NULL
-- constraints turn into a rejected file (Snowpipe's default ON_ERROR is
-- SKIP_FILE; see COPY_HISTORY / VALIDATE_PIPE_LOAD).
--
-- Time zones - check before enabling the S3 notification: the clean Parquet
-- stores open_time/close_time as tz-aware UTC instants (pandas
-- datetime64[ns, UTC]), while the table holds naive UTC (TIMESTAMP_NTZ, what
-- the IO manager writes). Load one file by hand into a scratch copy of the
-- table and compare its first OPEN_TIME with the date in the key. If it moved
-- (an instant turned into NTZ in a non-UTC TIMEZONE), set TIMEZONE = 'UTC' for
-- the account, or have the clean step write naive UTC. A shift also shows up
-- as split days in check 4 of 90_verify.sql.
-- =============================================================================

USE ROLE SYSADMIN;

CREATE PIPE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT_PIPE
    AUTO_INGEST = TRUE
    COMMENT = 'crypto_assets: auto-ingest transformed BTCUSDT 1m Parquet into BTCUSDT. Use instead of, never together with, the Dagster Snowflake IO manager.'
AS
COPY INTO CRYPTODB.CRYPTOSCHEMA.BTCUSDT
FROM @CRYPTODB.CRYPTOSCHEMA.S3_TRANSFORMED_STAGE
PATTERN = '.*symbol=BTCUSDT/interval=1m/date=[0-9-]+[.]parquet'
FILE_FORMAT = (FORMAT_NAME = 'CRYPTODB.CRYPTOSCHEMA.PARQUET_FORMAT')
MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;

-- notification_channel = the SQS ARN for the S3 event notification.
SHOW PIPES LIKE 'BTCUSDT_PIPE' IN SCHEMA CRYPTODB.CRYPTOSCHEMA;
