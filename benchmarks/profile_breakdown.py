"""Where a profiled range run's main thread spent its time, by stage of the lineage.

Reads py-spy's raw output (collapsed stacks with counts) of a `dagster asset materialize` run,
as `benchmarks/range_run.py --profile FILE` records it (200 samples/s, idle samples included,
child processes too), and prints seconds and shares per stage. The main thread is the
`dagster` process's own; Dagster's orphan watchers are left out and the prefetch thread, which
downloads while the main thread writes, is shown on its own lines.

    .venv/bin/python benchmarks/profile_breakdown.py FILE [--rate 200]
"""

import argparse
from collections import Counter

STAGES = (
    ("start-up: imports", lambda stack: "_find_and_load" in stack and "execute_job" not in stack),
    ("start-up: CLI, definitions, instance", lambda stack: "execute_job" not in stack),
    ("run creation: planned events", lambda stack: "_log_asset_planned_events" in stack),
    ("waiting for the download (prefetch queue)", lambda stack: "get (queue.py" in stack),
    ("Parquet write", lambda stack: "frame_to_parquet" in stack),
    ("Parquet read", lambda stack: "frame_from_parquet" in stack),
    ("raw_frame", lambda stack: "raw_frame (" in stack),
    ("clean_frame", lambda stack: "clean_frame (" in stack),
    ("OHLC validation", lambda stack: "validate_day (" in stack or "ohlc_checks (" in stack),
    ("warehouse_frame", lambda stack: "warehouse_frame (" in stack),
    ("DuckDB insert", lambda stack: "_replace_batch (" in stack),
    ("warehouse row-count check", lambda stack: "warehouse_matches_clean_klines" in stack),
    ("Dagster event log", lambda stack: "event_log" in stack or "store_event" in stack),
    ("imports during the run", lambda stack: "_find_and_load" in stack),
    ("other Dagster step machinery", lambda stack: True),
)


def breakdown(path: str) -> tuple[Counter, Counter]:
    """Samples per stage on the main thread, and per activity on the prefetch thread."""
    main, prefetch = Counter(), Counter()
    with open(path) as stacks:
        for line in stacks:
            stack, _, count = line.rstrip().rpartition(" ")
            if "watch_orphans" in stack or ";" not in stack:
                continue
            if stack.split(";")[1].startswith("Thread._bootstrap"):
                leaf = stack.rsplit(";", 1)[-1]
                waiting = any(word in leaf for word in ("wait", "readinto", "recv", "select"))
                prefetch["waiting on the network" if waiting else "running"] += int(count)
                continue
            stage = next(name for name, matches in STAGES if matches(stack))
            main[stage] += int(count)
    return main, prefetch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--rate", type=float, default=200.0, help="py-spy samples per second")
    args = parser.parse_args()
    main_thread, prefetch = breakdown(args.path)
    total = sum(main_thread.values())
    print(f"main thread: {total / args.rate:.1f} s")
    for stage, samples in main_thread.most_common():
        print(f"  {samples / args.rate:6.2f} s {100 * samples / total:5.1f}%  {stage}")
    for activity, samples in prefetch.most_common():
        print(f"prefetch thread {activity}: {samples / args.rate:.2f} s")


if __name__ == "__main__":
    main()
