"""Where a profiled range run held the GIL, by stage of the lineage and by thread.

Reads py-spy's raw output (collapsed stacks with counts) of a `dagster asset materialize` run,
as `benchmarks/range_run.py --profile FILE` records it (100 samples/s of whichever thread holds
the GIL, child processes too), and prints seconds and shares per stage and per thread. The run
is GIL-bound: the main thread fetches and transforms, the write-behind thread encodes and
stores, and one thread runs Python at a time, so GIL-held seconds are what a change must cut.

    .venv/bin/python benchmarks/profile_breakdown.py FILE [--rate 100]
"""

import argparse
from collections import Counter


def _before_the_run(stack: str) -> bool:
    """A main-thread stack outside the run's execution: loading the CLI, the code, the instance."""
    return "execute_job" not in stack and not _in_a_thread(stack)


def _in_a_thread(stack: str) -> bool:
    return stack.split(";")[1].startswith("Thread._bootstrap")


STAGES = (
    ("start-up: imports", lambda stack: "_find_and_load" in stack and _before_the_run(stack)),
    ("start-up: CLI, definitions, instance", _before_the_run),
    ("run creation: planned events", lambda stack: "_log_asset_planned_events" in stack),
    ("REST client: requests and JSON", lambda stack: "_klines_page" in stack),
    ("raw_frame", lambda stack: "raw_frame (" in stack),
    ("split_by_day", lambda stack: "split_by_day (" in stack),
    ("Parquet write", lambda stack: "_put_batch" in stack),
    ("Parquet read", lambda stack: "_read_table" in stack or "_read_days" in stack),
    ("clean_frame", lambda stack: "clean_frame (" in stack or "_typed (" in stack),
    ("OHLC validation", lambda stack: "validate_day (" in stack or "ohlc_check" in stack),
    ("Arrow to pandas", lambda stack: "_table_to_frame" in stack),
    ("warehouse_frame", lambda stack: "warehouse_frame (" in stack),
    ("DuckDB insert", lambda stack: "_replace_batch (" in stack),
    ("warehouse row-count check", lambda stack: "warehouse_matches_clean_klines" in stack),
    ("Dagster event log", lambda stack: "event_log" in stack or "store_event" in stack),
    ("imports during the run", lambda stack: "_find_and_load" in stack),
    ("other Dagster step machinery", lambda stack: True),
)


def breakdown(path: str) -> tuple[Counter, Counter]:
    """GIL-held samples per stage and per thread (main, write-behind, other)."""
    stages, threads = Counter(), Counter()
    with open(path) as stacks:
        for line in stacks:
            stack, _, count = line.rstrip().rpartition(" ")
            if ";" not in stack:
                continue
            stages[next(name for name, matches in STAGES if matches(stack))] += int(count)
            if not _in_a_thread(stack):
                threads["main"] += int(count)
            elif "WriteBehind" in stack:
                threads["write-behind"] += int(count)
            else:
                threads["other threads (Dagster's watchers)"] += int(count)
    return stages, threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--rate", type=float, default=100.0, help="py-spy samples per second")
    args = parser.parse_args()
    stages, threads = breakdown(args.path)
    total = sum(stages.values())
    print(f"GIL held: {total / args.rate:.1f} s")
    for stage, samples in stages.most_common():
        print(f"  {samples / args.rate:6.2f} s {100 * samples / total:5.1f}%  {stage}")
    for thread, samples in threads.most_common():
        print(f"thread {thread}: {samples / args.rate:.2f} s")


if __name__ == "__main__":
    main()
