"""What the same main-thread work costs back to back, and once something else has run in between.

The extension's update work runs once per Kit update, after the rest of Kit (or here the bench's sleep and
the worker thread) has had the core. This script times one piece of that work, the position read of six
moving cars (StageReader.car_positions on the bench's stage), in three ways:

  back to back   the call in a tight loop (caches and branch predictors warm)
  after sleep    a 16 ms sleep before each call (the bench's 60 Hz loop)
  after sleep(0) 16 ms of time.sleep(0) system calls before each call (the thread never idles)

    .venv/bin/python omni-extension/bench/cold_vs_warm.py [--calls 600]

It prints thread CPU time per call, p50 and p99, and the ratio to back to back.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "exts" / "simgate.parking"))

from bench_extension import busy_lot, percentile  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=600)
    args = parser.parse_args()
    from simgate.parking.stage_reader import StageReader

    reader = StageReader(busy_lot(50, args.calls / 60 + 2))
    cars = [p for p in reader.car_paths() if "Extra" in p][:6]

    def idle(kind: str) -> None:
        if kind == "after sleep":
            time.sleep(0.016)
        elif kind == "after sleep(0)":
            end = time.perf_counter() + 0.016
            while time.perf_counter() < end:
                time.sleep(0)

    rows = []
    for kind in ("back to back", "after sleep", "after sleep(0)"):
        samples = []
        for i in range(args.calls):
            idle(kind)
            c0 = time.thread_time_ns()
            reader.car_positions(i / 60, cars)
            samples.append((time.thread_time_ns() - c0) / 1e3)
        rows.append((kind, percentile(samples, 0.5), percentile(samples, 0.99)))
    base = rows[0][1]
    print("| how | CPU us per call p50 / p99 | p50 / back to back |\n| --- | --- | --- |")
    for kind, p50, p99 in rows:
        print(f"| {kind} | {p50:.1f} / {p99:.1f} | {p50 / base:.1f} x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
