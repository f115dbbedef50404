"""Every strategy x parameter set on one timeframe's newest stretch of bars, with the samples a
quant reads: the full stretch, a 70/30 in-sample/out-of-sample split, and an anchored
walk-forward whose folds start on calendar quarters.

Walk-forward: the folds are the last ``folds`` calendar quarters that begin after the stretch's
first bar (the newest one runs to the last bar). A quarter's start never moves, so a refresh
only lengthens the newest fold; bars of a fold are never used to pick the parameters traded on
it. For each fold, each strategy's set with the best Sharpe on the bars before the fold (the
full run's daily equity up to the fold's start) is traded on the fold; the folds' runs are
stitched into one ``walk_forward`` row per strategy.
"""

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crypto_assets.analytics.backtest import (
    DEFAULT_COSTS,
    NO_EXITS,
    Costs,
    Exits,
    Prices,
    run,
    run_with_prefix,
)
from crypto_assets.analytics.backtest_metrics import (
    METRIC_NAMES,
    BacktestResult,
    metrics,
    sharpe_of,
)
from crypto_assets.analytics.strategies import (
    DEFAULT_GRIDS,
    Grid,
    exit_sets,
    held_positions,
    params_text,
    signal_sets,
)

IN_SAMPLE_SHARE = 0.7
DEFAULT_FOLDS = 4
WALK_FORWARD = "walk_forward"
BACKTEST_COLUMNS = (
    "strategy",
    "params",
    "timeframe",
    "sample",
    "start",
    "end",
    *METRIC_NAMES,
    "excess_return",
    "stop_loss_pct",
    "take_profit_pct",
    "position_size",
    "fee_bps",
    "slippage_bps",
    "selected",
)


@dataclass(frozen=True)
class Sample:
    name: str
    start: int  # first bar, included
    end: int  # last bar, excluded


def samples(bar_count: int, in_sample_share: float = IN_SAMPLE_SHARE) -> list[Sample]:
    """full, in_sample (the first share of bars) and out_of_sample (the bars after it)."""
    split = int(bar_count * in_sample_share)
    return [
        Sample("full", 0, bar_count),
        Sample("in_sample", 0, split),
        Sample("out_of_sample", split, bar_count),
    ]


def fold_starts(open_times: np.ndarray, folds: int = DEFAULT_FOLDS) -> list[int]:
    """Index of the first bar of each fold: the last ``folds`` calendar quarters that begin after
    the first bar and no later than the last one."""
    times = pd.DatetimeIndex(open_times.astype("datetime64[ns]"))
    if len(times) < 2 or folds < 1:
        return []
    quarters = pd.date_range(times[0].to_period("Q").end_time.normalize(), times[-1], freq="QS")
    quarters = quarters[quarters > times[0]][-folds:]
    return sorted({int(np.searchsorted(times, quarter)) for quarter in quarters})


@dataclass
class Chosen:
    """A result whose trades and equity are written: a selected set's, or a walk-forward."""

    strategy: str
    params: str
    sample: str
    result: BacktestResult


@dataclass
class GridOutcome:
    rows: pd.DataFrame
    chosen: list[Chosen]


def _sets(strategy: str, grid: Grid | None) -> list[tuple[dict, Exits]]:
    if grid is None:
        return [({}, NO_EXITS)]
    exits = exit_sets(grid)
    return [(params, exit_) for params in signal_sets(strategy, grid) for exit_ in exits]


def _score(sharpe: float) -> float:
    return -np.inf if np.isnan(sharpe) else sharpe


def grid_results(
    bars: pd.DataFrame,
    timeframe: str,
    bar_length: pd.Timedelta,
    costs: Costs = DEFAULT_COSTS,
    grids: dict[str, Grid] | None = None,
    folds: int = DEFAULT_FOLDS,
) -> GridOutcome:
    """BACKTEST_COLUMNS rows of every strategy x set x sample on ``bars`` (one contiguous
    stretch, ordered by open_time), and the results whose trades and equity are kept."""
    grids = DEFAULT_GRIDS if grids is None else grids
    prices = Prices.of(bars, bar_length)
    close = prices.close
    windows = [sample for sample in samples(len(prices)) if sample.end > sample.start]
    views = {sample.name: prices.window(sample.start, sample.end) for sample in windows}
    starts = fold_starts(prices.times, folds)
    bounds = list(zip(starts, [*starts[1:], len(prices)][: len(starts)], strict=True))
    fold_views = [prices.window(start, end) for start, end in bounds]
    days_before = [int(np.searchsorted(prices.day_ends, start)) for start in starts]
    spans = {
        name: (pd.Timestamp(view.times[0]), pd.Timestamp(view.times[-1] + view.bar_ns))
        for name, view in views.items()
    }
    rows: list[dict] = []
    chosen: list[Chosen] = []
    hold_returns: dict[str, float] = {}
    for strategy in ["buy_and_hold", *grids]:
        grid = grids.get(strategy)
        sets = _sets(strategy, grid)
        helds: dict[str, np.ndarray] = {}
        # Only the metrics are kept: the selected set is run again for its trades and equity.
        set_metrics: list[dict[str, dict]] = []
        fold_scores = []
        for params, exits in sets:
            key = params_text(params)
            if key not in helds:
                helds[key] = held_positions(strategy, params, close)
            by_sample = _run_samples(windows, views, helds[key], costs, exits)
            daily = by_sample["full"].daily_values
            returns = daily[1:] / daily[:-1] - 1
            fold_scores.append([_score(sharpe_of(returns[:days])) for days in days_before])
            set_metrics.append({name: result.metrics for name, result in by_sample.items()})
        in_sample = [_score(m["in_sample"]["sharpe"]) for m in set_metrics if "in_sample" in m]
        best = int(np.argmax(in_sample)) if np.isfinite(max(in_sample, default=-np.inf)) else None
        for index, ((params, exits), by_sample) in enumerate(zip(sets, set_metrics, strict=True)):
            text = params_text(params, exits if grid is not None else None)
            for name, values in by_sample.items():
                selected = index == best
                rows.append(
                    _row(
                        strategy, text, timeframe, name, spans[name], values, exits, costs, selected
                    )
                )
        if best is not None:
            params, exits = sets[best]
            text = params_text(params, exits if grid is not None else None)
            by_sample = _run_samples(windows, views, helds[params_text(params)], costs, exits)
            chosen += [Chosen(strategy, text, name, result) for name, result in by_sample.items()]
        if starts:
            text, result = _walk_forward(sets, helds, fold_scores, bounds, fold_views, costs, grid)
            ranked = any(pick is not None for pick in json.loads(text).values())
            span = (result.start, result.end)
            rows.append(
                _row(
                    strategy,
                    text,
                    timeframe,
                    WALK_FORWARD,
                    span,
                    result.metrics,
                    None,
                    costs,
                    ranked,
                )
            )
            chosen.append(Chosen(strategy, text, WALK_FORWARD, result))
        if strategy == "buy_and_hold":
            hold_returns = {row["sample"]: row["total_return"] for row in rows}
    table = pd.DataFrame(rows, columns=list(BACKTEST_COLUMNS))
    exit_columns = ["stop_loss_pct", "take_profit_pct", "position_size"]
    table[exit_columns] = table[exit_columns].astype(float)  # NULL, not text, where none
    table["excess_return"] = table["total_return"] - table["sample"].map(hold_returns)
    return GridOutcome(table, chosen)


def _run_samples(
    windows: list[Sample], views: dict[str, Prices], held: np.ndarray, costs: Costs, exits: Exits
) -> dict[str, BacktestResult]:
    """One set's run on every sample; in-sample, the first bars of the full stretch, is taken
    from the full run rather than run again."""
    results = {}
    if "in_sample" in views:
        results["full"], results["in_sample"] = run_with_prefix(
            views["full"], views["in_sample"], held, costs, exits
        )
    for sample in windows:
        if sample.name not in results:
            view = views[sample.name]
            results[sample.name] = run(view, held[sample.start : sample.end], costs, exits)
    return {sample.name: results[sample.name] for sample in windows}


def _walk_forward(
    sets: list[tuple[dict, Exits]],
    helds: dict[str, np.ndarray],
    fold_scores: list[list[float]],
    bounds: list[tuple[int, int]],
    fold_views: list[Prices],
    costs: Costs,
    grid: Grid | None,
) -> tuple[str, BacktestResult]:
    """The stitched runs of each fold's pick, and the picks as JSON (fold start -> set, null
    where no set could be ranked: that fold stays flat)."""
    scores = np.array(fold_scores).reshape(len(sets), len(bounds))
    picks, runs = {}, []
    for fold, ((start, end), view) in enumerate(zip(bounds, fold_views, strict=True)):
        day = str(pd.Timestamp(view.times[0]).date())
        if not np.isfinite(scores[:, fold].max()):
            picks[day] = None
            runs.append(run(view, np.zeros(end - start, dtype=bool), costs))
            continue
        params, exits = sets[int(np.argmax(scores[:, fold]))]
        picks[day] = json.loads(params_text(params, exits if grid is not None else None))
        held = helds[params_text(params)][start:end]
        runs.append(run(view, held, costs, exits))
    return json.dumps(picks, sort_keys=True), stitch(runs)


def stitch(results: list[BacktestResult]) -> BacktestResult:
    """Consecutive runs as one: each starts with the equity the one before ended on."""
    scale = np.cumprod([1.0] + [result.equity_steps[-1] for result in results[:-1]])
    offsets = np.cumsum([0] + [len(result.times) for result in results[:-1]])
    trades = {
        name: np.concatenate([result.trade_arrays[name] for result in results])
        for name in results[0].trade_arrays
    }
    trades["profit"] = np.concatenate(
        [
            result.trade_arrays["profit"] * factor
            for result, factor in zip(results, scale, strict=True)
        ]
    )
    count = sum(len(result.times) for result in results)
    stitched = BacktestResult(
        times=np.concatenate([result.times for result in results]),
        equity_steps=np.concatenate(
            [result.equity_steps * factor for result, factor in zip(results, scale, strict=True)]
        ),
        step_starts=np.concatenate(
            [result.step_starts + offset for result, offset in zip(results, offsets, strict=True)]
        ),
        trade_arrays=trades,
        exposure=float(sum(result.exposure * len(result.times) for result in results) / count),
        bar_ns=results[0].bar_ns,
        day_ends=np.concatenate(
            [result.day_ends + offset for result, offset in zip(results, offsets, strict=True)]
        ),
    )
    stitched.metrics = metrics(stitched)
    return stitched


def _row(
    strategy: str,
    params: str,
    timeframe: str,
    sample: str,
    span: tuple[pd.Timestamp, pd.Timestamp],
    values: dict[str, float | int],
    exits: Exits | None,
    costs: Costs,
    selected: bool,
) -> dict:
    return {
        "strategy": strategy,
        "params": params,
        "timeframe": timeframe,
        "sample": sample,
        "start": span[0],
        "end": span[1],
        **values,
        "stop_loss_pct": exits.stop_loss_pct if exits else None,
        "take_profit_pct": exits.take_profit_pct if exits else None,
        "position_size": exits.position_size if exits else None,
        "fee_bps": costs.fee_bps,
        "slippage_bps": costs.slippage_bps,
        "selected": selected,
    }
