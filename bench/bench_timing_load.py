"""Do the benchmark's speed-ups survive a neighbour that starts and stops? Quiet rounds, then loaded ones.

Usage: python bench/bench_timing_load.py [--models models] [--variants A B C] [--rounds 30] [--period 2]
                                         [--threads 2]

Times three variants of models/manifest.json (default: SCRFD's original, static INT8 and dynamic INT8, else the
first three of any family) interleaved in rounds, as benchmark.py does, twice: on the machine as it is, then
while a CPU burner (one busy process, local, stopped at the end) is switched on and off every --period
seconds. Prints the speed-ups over the first variant each way by three rules (benchmark.py's paired median and
two alternatives), how far the loaded ones moved from the quiet ones (target: within 25 %), and which rows the
BUSY rule flags. Needs `make all` first.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecompress.core.artifacts import MANIFEST, read_manifest, reference_of  # noqa: E402
from facecompress.core.errors import check_known, exit_on_input_error  # noqa: E402
from facecompress.core.tables import format_table  # noqa: E402
from facecompress.detectors import family_for  # noqa: E402
from facecompress.run.sessions import OnnxRunner, check_file  # noqa: E402
from facecompress.run.timing import (BUSY_SPREAD, cpu_isa, cpu_model, paired_speedup, spread,  # noqa: E402
                                     time_interleaved)

BURN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"
PREFERRED = ("scrfd_original", "scrfd_static_int8", "scrfd_quantized")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="models", help="folder holding manifest.json (default: %(default)s)")
    parser.add_argument("--variants", nargs=3, default=None, metavar="NAME",
                        help=f"three variants of one family, its original first (default: {' '.join(PREFERRED)})")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds each way (default: %(default)s)")
    parser.add_argument("--period", type=float, default=2.0,
                        help="seconds the burner runs, then rests, in turn (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default: %(default)s)")
    return parser.parse_args(argv)


@contextmanager
def intermittent_burner(period: float, limit: float) -> Iterator[None]:
    """One local busy process, paused and resumed every `period` s; it ends by itself after `limit` s at most."""
    burner = subprocess.Popen([sys.executable, "-c", BURN.format(seconds=limit)])
    stop = threading.Event()

    def toggle() -> None:
        running = True
        while not stop.wait(period):
            burner.send_signal(signal.SIGSTOP if running else signal.SIGCONT)
            running = not running

    thread = threading.Thread(target=toggle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        burner.send_signal(signal.SIGCONT)
        burner.kill()
        burner.wait()


def steady_speedup(reference: list[float], candidate: list[float]) -> float:
    """`paired_speedup` over the rounds in which neither side ran more than BUSY_SPREAD above its own 10th
    percentile (a neighbour that came and went mid-round moved it); all rounds when fewer than a third are left."""
    ref, cand = np.asarray(reference), np.asarray(candidate)
    steady = (ref <= np.percentile(ref, 10) * (1 + BUSY_SPREAD)) & (cand <= np.percentile(cand, 10) * (1 + BUSY_SPREAD))
    keep = steady if steady.sum() * 3 >= len(ref) else np.ones_like(steady)
    return float(np.median(ref[keep] / cand[keep]))


def floor_speedup(reference: list[float], candidate: list[float]) -> float:
    """Ratio of the two sides' 10th percentiles: load only ever adds time, so the fastest runs are the least hit."""
    return float(np.percentile(reference, 10) / np.percentile(candidate, 10))


# benchmark.py's rule first; the two others are what it could do instead, measured here beside it
SPEEDUP_RULES = {"paired median (benchmark.py)": paired_speedup, "steady rounds": steady_speedup,
                 "p10 ratio": floor_speedup}


def chosen(manifest: dict, names: list[str] | None) -> list[str]:
    """The three variants to time, the family's original first."""
    if names:
        return names
    if all(n in manifest["variants"] for n in PREFERRED):
        return list(PREFERRED)
    family = next(iter(manifest["families"]))
    others = [n for n, e in manifest["variants"].items() if e["family"] == family and n != reference_of(family)]
    return [reference_of(family), *others[:2]]


def speedups(times: dict[str, list[float]], reference: str) -> dict[str, dict[str, float]]:
    """{rule: {variant: speed-up over `reference`}} by every rule, from the same rounds."""
    return {rule: {n: fn(times[reference], t) for n, t in times.items() if n != reference}
            for rule, fn in SPEEDUP_RULES.items()}


@exit_on_input_error
def main(argv=None) -> None:
    args = parse_args(argv)
    manifest = read_manifest(Path(args.models) / MANIFEST)
    if manifest is None or not manifest["variants"]:
        print(f"skipped: {Path(args.models) / MANIFEST} has no variants yet; run `make all` first")
        return
    if args.variants:
        check_known("--variants", args.variants, list(manifest["variants"]), "in the manifest")
    names = chosen(manifest, args.variants)
    family = family_for(manifest["families"][manifest["variants"][names[0]]["family"]])
    batch = np.random.default_rng(0).uniform(0, 1, family.input_shape).astype(np.float32)
    runners = {n: OnnxRunner(check_file(manifest["variants"][n], args.models), args.threads) for n in names}
    calls = {n: (lambda r=r: r.run(batch)) for n, r in runners.items()}
    quiet = time_interleaved(calls, args.rounds, 3)
    seconds = 3 * sum(sum(t) for t in quiet.values()) + 30
    with intermittent_burner(args.period, seconds):
        loaded = time_interleaved(calls, args.rounds, 3)
    print(f"{', '.join(names)}; {args.rounds} interleaved rounds each way, burner on/off every {args.period:g} s; "
          f"ONNX Runtime {args.threads} threads; CPU {cpu_model()} ({cpu_isa()})")
    before, after = speedups(quiet, names[0]), speedups(loaded, names[0])
    rows = [{"rule": rule, "variant": n, "quiet": f"{before[rule][n]:.2f}x", "loaded": f"{after[rule][n]:.2f}x",
             "moved": f"{after[rule][n] / before[rule][n] - 1:+.0%}",
             "within 25%": "yes" if abs(after[rule][n] / before[rule][n] - 1) <= 0.25 else "NO"}
            for rule in SPEEDUP_RULES for n in before[rule]]
    print(format_table(rows, ["rule", "variant", "quiet", "loaded", "moved", "within 25%"]))
    flags = [{"variant": n, "quiet spread": f"{spread(quiet[n]):.2f}", "loaded spread": f"{spread(loaded[n]):.2f}",
              "BUSY quiet": spread(quiet[n]) > BUSY_SPREAD, "BUSY loaded": spread(loaded[n]) > BUSY_SPREAD}
             for n in names]
    print(format_table(flags, ["variant", "quiet spread", "loaded spread", "BUSY quiet", "BUSY loaded"]))
    print(f"{time.strftime('%Y-%m-%d %H:%M')}: BUSY = a variant's 10th-90th percentile range over its rounds > "
          f"{BUSY_SPREAD:.0%} of its median")


if __name__ == "__main__":
    main()
