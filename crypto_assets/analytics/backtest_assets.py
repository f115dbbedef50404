"""Backtests of every strategy's parameter grid on the 1d and 1h bars, with a walk-forward
split, their trades and daily equity, and the equity-and-drawdown chart."""

import dagster as dg
import pandas as pd

from crypto_assets.analytics import bars
from crypto_assets.analytics.assets import (
    ANALYTICS_GROUP,
    HEAVY_REFRESH,
    btcusdt_bars,
    replace_whole_tables,
)
from crypto_assets.analytics.backtest import (
    DEFAULT_FEE_BPS,
    DEFAULT_SLIPPAGE_BPS,
    TRADE_COLUMNS,
    Costs,
    daily_equity,
    drawdown,
)
from crypto_assets.analytics.strategies import BACKTEST_COLUMNS, grid_results
from crypto_assets.analytics.structure_assets import png_markdown
from crypto_assets.settings import KLINES
from crypto_assets.storage.artifacts import ArtifactsWriter
from crypto_assets.storage.warehouse import WarehouseResource

BACKTEST_TIMEFRAMES = ("1d", "1h")
KEYS = ("strategy", "params", "timeframe", "sample")
EQUITY_COLUMNS = (*KEYS, "day", "equity", "drawdown")


class BacktestConfig(dg.Config):
    fee_bps: float = DEFAULT_FEE_BPS
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS


def _out(table: str, columns: tuple[str, ...], description: str) -> dg.AssetOut:
    return dg.AssetOut(
        key=dg.AssetKey(table),
        group_name=ANALYTICS_GROUP,
        kinds={"pandas"},
        automation_condition=HEAVY_REFRESH,
        metadata={
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name) for name in columns]
            ),
        },
        description=description,
    )


BACKTESTS, TRADES, EQUITY = (
    f"{KLINES.table}_backtests",
    f"{KLINES.table}_backtest_trades",
    f"{KLINES.table}_backtest_equity",
)


@dg.multi_asset(
    outs={
        BACKTESTS: _out(
            BACKTESTS, BACKTEST_COLUMNS, "One row per strategy x parameter set x sample."
        ),
        TRADES: _out(
            TRADES,
            (*KEYS, *TRADE_COLUMNS),
            "Trades of each strategy's selected parameter set, per sample.",
        ),
        EQUITY: _out(
            EQUITY, EQUITY_COLUMNS, "Daily equity and drawdown of the selected parameter sets."
        ),
    },
    deps=[btcusdt_bars],
    can_subset=False,
)
def btcusdt_backtests(
    config: BacktestConfig, warehouse: WarehouseResource, artifacts: ArtifactsWriter
):
    costs = Costs(fee_bps=config.fee_bps, slippage_bps=config.slippage_bps)
    summaries, trades, equity = [], [], []
    chart_lines: dict[str, pd.Series] = {}
    for timeframe in BACKTEST_TIMEFRAMES:
        frame = warehouse.query_frame(
            bars.complete_bars_sql(warehouse.qualified_table(f"{KLINES.table}_{timeframe}"))
        )
        if len(frame) < 2:
            continue
        rows, selected = grid_results(frame, timeframe, costs)
        summaries.append(rows)
        for (strategy, params), results in selected.items():
            for sample, result in results.items():
                keys = {"strategy": strategy, "params": params, "timeframe": timeframe}
                trades.append(result.trades.assign(**keys, sample=sample))
                daily = daily_equity(result.equity, result.bar_length)
                equity.append(
                    pd.DataFrame(
                        {
                            **keys,
                            "sample": sample,
                            "day": daily.index,
                            "equity": daily.to_numpy(),
                            "drawdown": drawdown(daily).to_numpy(),
                        }
                    )
                )
                if timeframe == "1d" and sample == "full":
                    chart_lines[f"{strategy} {params}" if params != "{}" else strategy] = daily
    backtests = pd.concat(summaries, ignore_index=True) if summaries else _empty(BACKTEST_COLUMNS)
    metadata = _best_metadata(backtests)
    if chart_lines:
        # matplotlib loads here, not with the code location: a kline run never draws a chart.
        from crypto_assets.analytics import charts

        png = charts.equity_chart(
            chart_lines, f"{KLINES.symbol} 1d: selected strategies vs buy and hold (full history)"
        )
        metadata["equity_chart"] = png_markdown(png, "equity and drawdown")
        metadata["equity_chart_path"] = dg.MetadataValue.path(
            artifacts.write(f"charts/{KLINES.table}_equity.png", png)
        )
    # The three tables in one replace: never new backtests beside old trades or equity.
    written = replace_whole_tables(
        warehouse,
        {
            BACKTESTS: backtests,
            TRADES: _concat(trades, (*KEYS, *TRADE_COLUMNS)),
            EQUITY: _concat(equity, EQUITY_COLUMNS),
        },
    )
    yield dg.MaterializeResult(asset_key=BACKTESTS, metadata={**written[BACKTESTS], **metadata})
    yield dg.MaterializeResult(asset_key=TRADES, metadata=written[TRADES])
    yield dg.MaterializeResult(asset_key=EQUITY, metadata=written[EQUITY])


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame(columns=list(columns))


def _concat(frames: list[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)[list(columns)] if frames else _empty(columns)


def _best_metadata(backtests: pd.DataFrame) -> dict:
    """Out-of-sample figures of the selected sets on 1d, as floats for the Plots tab."""
    chosen = backtests[
        backtests["selected"]
        & (backtests["sample"] == "out_of_sample")
        & (backtests["timeframe"] == "1d")
    ]
    metadata: dict = {"rows": len(backtests)}
    for row in chosen.itertuples():
        for name in ("total_return", "sharpe", "max_drawdown"):
            value = getattr(row, name)
            if pd.notna(value):
                metadata[f"oos_{row.strategy}_{name}"] = float(value)
    return metadata
