"""Backtests of every strategy's parameter grid on the 1h, 4h and 1d bars (the newest contiguous
stretch of each), with the in/out-of-sample split and the anchored walk-forward, their trades and
daily equity, and the equity-and-drawdown chart."""

import dagster as dg
import pandas as pd
from pydantic import Field

from crypto_assets.analytics import bars
from crypto_assets.analytics.assets import (
    ANALYTICS_GROUP,
    HEAVY_REFRESH,
    btcusdt_bars,
    replace_whole_tables,
)
from crypto_assets.analytics.backtest import DEFAULT_FEE_BPS, DEFAULT_SLIPPAGE_BPS, Costs
from crypto_assets.analytics.backtest_grid import BACKTEST_COLUMNS, DEFAULT_FOLDS, grid_results
from crypto_assets.analytics.backtest_metrics import TRADE_COLUMNS, daily_equity
from crypto_assets.analytics.series import gaps, newest_stretch
from crypto_assets.analytics.strategies import DEFAULT_GRIDS, SIGNALS, Grid
from crypto_assets.analytics.structure_assets import png_markdown
from crypto_assets.settings import KLINES
from crypto_assets.storage.artifacts import ArtifactsWriter
from crypto_assets.storage.warehouse import WarehouseResource

BACKTEST_TIMEFRAMES = ("1h", "4h", "1d")
KEYS = ("strategy", "params", "timeframe", "sample")
EQUITY_COLUMNS = (*KEYS, "day", "equity", "drawdown")


class StrategyGrid(dg.Config):
    """One strategy's grid: each signal parameter's values, and the exits and sizes every
    parameter set is run with (null = no stop / no target)."""

    params: dict[str, list[float]] = Field(description="Each signal parameter's values.")
    stop_loss_pct: list[float | None] = Field(
        default=[None, 0.05], description="Stop-loss below the entry fill (0.05 = 5%); null: none"
    )
    take_profit_pct: list[float | None] = Field(
        default=[None, 0.1], description="Take-profit above the entry fill; null: none"
    )
    position_size: list[float] = Field(
        default=[1.0, 0.5], description="Fraction of the equity each entry spends"
    )


class BacktestConfig(dg.Config):
    fee_bps: float = DEFAULT_FEE_BPS
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS
    timeframes: list[str] = Field(
        default=list(BACKTEST_TIMEFRAMES), description="Bar tables to backtest"
    )
    folds: int = Field(
        default=DEFAULT_FOLDS, description="Walk-forward folds: the last N calendar quarters"
    )
    strategies: dict[str, StrategyGrid] = Field(
        default={
            name: {
                "params": grid.params,
                "stop_loss_pct": grid.stop_loss_pct,
                "take_profit_pct": grid.take_profit_pct,
                "position_size": grid.position_size,
            }
            for name, grid in DEFAULT_GRIDS.items()
        },
        description="Strategy name (a key of strategies.SIGNALS) -> its grid",
        validate_default=True,
    )

    def grids(self) -> dict[str, Grid]:
        unknown = sorted(set(self.strategies) - set(SIGNALS))
        if unknown:
            raise dg.Failure(f"Unknown strategies {unknown} in run config; known: {list(SIGNALS)}")
        wrong = sorted(set(self.timeframes) - set(BACKTEST_TIMEFRAMES))
        if wrong:
            raise dg.Failure(f"Timeframes {wrong} cannot be backtested; use {BACKTEST_TIMEFRAMES}")
        return {
            name: Grid(
                params=dict(grid.params),
                stop_loss_pct=list(grid.stop_loss_pct),
                take_profit_pct=list(grid.take_profit_pct),
                position_size=list(grid.position_size),
            )
            for name, grid in self.strategies.items()
        }


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
            BACKTESTS,
            BACKTEST_COLUMNS,
            "One row per timeframe x strategy x parameter set x sample, and one walk_forward"
            " row per timeframe x strategy.",
        ),
        TRADES: _out(
            TRADES,
            (*KEYS, *TRADE_COLUMNS),
            "Trades of each strategy's selected parameter set per sample, and of its walk-forward.",
        ),
        EQUITY: _out(
            EQUITY,
            EQUITY_COLUMNS,
            "Daily equity (last bar of each UTC day) and the day's deepest drawdown (every bar) of"
            " the selected sets and the walk-forwards.",
        ),
    },
    deps=[btcusdt_bars],
    can_subset=False,
)
def btcusdt_backtests(
    config: BacktestConfig, warehouse: WarehouseResource, artifacts: ArtifactsWriter
):
    costs = Costs(fee_bps=config.fee_bps, slippage_bps=config.slippage_bps)
    grids = config.grids()
    summaries, trades, equity = [], [], []
    chart_lines: dict[str, pd.Series] = {}
    stretches: dict[str, str] = {}
    for timeframe in config.timeframes:
        bar_length = pd.Timedelta(bars.TIMEFRAMES[timeframe])
        frame = warehouse.query_frame(
            bars.complete_bars_sql(warehouse.qualified_table(f"{KLINES.table}_{timeframe}"))
        )
        skipped = gaps(frame["open_time"], bar_length) if len(frame) else []
        frame = newest_stretch(frame, bar_length)
        if len(frame) < 2:
            continue
        stretches[f"stretch_{timeframe}"] = (
            f"{frame['open_time'].iloc[0]:%Y-%m-%d %H:%M} .. "
            f"{frame['open_time'].iloc[-1] + bar_length:%Y-%m-%d %H:%M} ({len(frame)} bars)"
        )
        stretches[f"gaps_skipped_{timeframe}"] = "; ".join(map(str, skipped)) or "none"
        outcome = grid_results(frame, timeframe, bar_length, costs, grids, config.folds)
        summaries.append(outcome.rows)
        for chosen in outcome.chosen:
            keys = {
                "strategy": chosen.strategy,
                "params": chosen.params,
                "timeframe": timeframe,
                "sample": chosen.sample,
            }
            trades.append(chosen.result.trades.assign(**keys))
            daily = daily_equity(chosen.result)
            equity.append(daily.assign(**keys))
            if timeframe == "1d" and chosen.sample == "full":
                chart_lines[chosen.strategy] = daily.set_index("day")["equity"]
    backtests = pd.concat(summaries, ignore_index=True) if summaries else _empty(BACKTEST_COLUMNS)
    metadata = {**_best_metadata(backtests), **stretches}
    if chart_lines:
        # matplotlib loads here, not with the code location: a kline run never draws a chart.
        from crypto_assets.analytics import charts

        png = charts.equity_chart(
            chart_lines, f"{KLINES.symbol} 1d: selected strategies vs buy and hold (newest stretch)"
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
    """Out-of-sample figures of the selected sets and walk-forward figures on 1d, as floats for
    the Plots tab."""
    daily = backtests[backtests["timeframe"] == "1d"]
    picked = {
        "oos": daily[daily["selected"] & (daily["sample"] == "out_of_sample")],
        "walk_forward": daily[daily["sample"] == "walk_forward"],
    }
    metadata: dict = {"rows": len(backtests)}
    for prefix, rows in picked.items():
        for row in rows.itertuples():
            for name in ("total_return", "sharpe", "max_drawdown"):
                value = getattr(row, name)
                if pd.notna(value):
                    metadata[f"{prefix}_{row.strategy}_{name}"] = float(value)
    return metadata
