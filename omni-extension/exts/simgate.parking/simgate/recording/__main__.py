"""python -m simgate.recording check FILE...: reads each recording and reports its frames and any damage
(code, frame index, byte offset). Exit status 1 when a file is damaged or not a recording."""
from __future__ import annotations

import argparse
import sys
from collections import Counter

from .errors import RecordingError
from .reader import CorruptFrame, RecordingReader


def check(path: str) -> bool:
    try:
        reader = RecordingReader.open(path)
    except (OSError, RecordingError) as exc:
        print(f"{path}: {exc.describe() if isinstance(exc, RecordingError) else exc}")
        return False
    with reader:
        bodies: Counter[str] = Counter()
        types: Counter[str] = Counter()
        problems = []
        for item in reader.frames(skip_corrupt=True):
            if isinstance(item, CorruptFrame):
                problems.append(item.error)
                continue
            body = item.frame.WhichOneof("body") or ""
            bodies[body] += 1
            if body == "event":
                types[item.frame.event.event_type] += 1
        print(f"{path}: run {reader.header.run.run_id or '(none)'}, written by {reader.header.writer or '(unknown)'}")
        print(
            f"  {sum(bodies.values())} intact frames: {bodies['run_start']} run start, {bodies['event']} events "
            f"({' '.join(f'{t}={n}' for t, n in sorted(types.items())) or 'none'}), {bodies['run_end']} run end"
        )
        for problem in problems:
            print(f"  {problem.describe()}")
        if not problems:
            print("  OK")
        return not problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgate.recording")
    sub = parser.add_subparsers(dest="command", required=True)
    check_parser = sub.add_parser("check", help="validate recordings without sending them")
    check_parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    results = [check(path) for path in args.files]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
