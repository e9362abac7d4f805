"""Time `--help` of every top-level script as a whole process: what a user waits for before anything runs.

Usage: python bench/bench_help.py [--rounds 5]

Scripts that only read results must not pay for torch, onnx or rfdetr on start-up; the targets are
under 1 s for analyze_results.py and plot_results.py. Rounds are interleaved across scripts so that
background load hits each alike; the median of each is printed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("analyze_results.py", "plot_results.py", "visualize_detections.py", "benchmark.py", "inference.py")
TARGETS_S = {"analyze_results.py": 1.0, "plot_results.py": 1.0}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per script (default: %(default)s)")
    return parser.parse_args(argv)


def help_seconds(script: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, script, "--help"], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def main(argv=None) -> None:
    args = parse_args(argv)
    times: dict[str, list[float]] = {script: [] for script in SCRIPTS}
    for _ in range(args.rounds):
        for script in SCRIPTS:
            times[script].append(help_seconds(script))
    for script, seconds in times.items():
        target = TARGETS_S.get(script)
        verdict = "" if target is None else f" ({'within' if statistics.median(seconds) < target else 'OVER'} " \
                                            f"the {target:g} s target)"
        print(f"{script} --help: median {statistics.median(seconds):.2f} s, slowest {max(seconds):.2f} s{verdict}")


if __name__ == "__main__":
    main()
