"""Time what a new user waits for: `make all` on a fresh clone (set-up included), then `make all` again.

Usage: python bench/bench_first_run.py [--keep]

Clones this repository's committed HEAD into a temporary folder, runs `make setup` (the virtual
environment and the pinned requirements), then `make all` (the embedded sample and every stage), then
`make all` once more with nothing changed, and prints each stage's wall time as the Makefile reports it,
against the targets: a fresh `make all`, set-up included, in at most 10 minutes; the re-run under 1 minute.
Each `make` runs with its own output hidden; a failing one is printed and ends the run.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_RUN_TARGET_S = 600
RERUN_TARGET_S = 60
STAGE_LINE = re.compile(r"^== wall time per stage:(.*)$", re.M)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the clone and print where it is (default: remove)")
    return parser.parse_args(argv)


def timed_make(clone: Path, target: str) -> tuple[float, str]:
    """(seconds, output) of one `make` target in the clone; a failure prints its output and exits."""
    start = time.perf_counter()
    done = subprocess.run(["make", target], cwd=clone, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"make {target} failed in {clone} (exit {done.returncode})")
    return seconds, done.stdout


def stage_times(output: str) -> str:
    """The Makefile's one line of per-stage wall times."""
    match = STAGE_LINE.search(output)
    return match.group(1).strip() if match else "(no per-stage line)"


def verdict(seconds: float, target: float) -> str:
    return f"{'within' if seconds <= target else 'OVER'} the {target:g} s target"


def main(argv=None) -> None:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="facecompress-first-run-"))
    clone = folder / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    setup_s, _ = timed_make(clone, "setup")
    first_s, first = timed_make(clone, "all")
    again_s, again = timed_make(clone, "all")
    print(f"fresh clone: make setup {setup_s:.0f} s, make all {first_s:.0f} s, together {setup_s + first_s:.0f} s "
          f"({verdict(setup_s + first_s, FIRST_RUN_TARGET_S)})")
    print(f"  stages: {stage_times(first)}")
    print(f"make all again, nothing changed: {again_s:.0f} s ({verdict(again_s, RERUN_TARGET_S)})")
    print(f"  stages: {stage_times(again)}")
    if args.keep:
        print(f"clone kept in {clone}")
    else:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
