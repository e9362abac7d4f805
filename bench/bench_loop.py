"""Does the image loop keep ONNX Runtime busy? Loop throughput over bare `session.run` throughput, FP32 original.

Usage: python bench/bench_loop.py [--models models] [--rounds 6] [--passes 3]

Each round times the loop (decode, preprocess, inference, decode, write) over the images `passes`
times in one run, and bare runs on one fixed preprocessed input as many times, in alternating order.
Background load on a shared machine swings throughput by tens of percent within a minute, so the
ratio is taken within each round and the median over rounds is reported. Target: ratio >= 0.9.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecompress.run.loop import fixed_input_timings, run_images, warm_up  # noqa: E402
from facecompress.cli import add_dataset_args  # noqa: E402
from facecompress.data.dataset import open_dataset  # noqa: E402
from facecompress.core.errors import exit_on_input_error  # noqa: E402
from facecompress.core.artifacts import MANIFEST, header_of, read_manifest  # noqa: E402
from facecompress.detectors import family_for  # noqa: E402
from facecompress.run.sessions import OnnxRunner  # noqa: E402

TARGET = 0.9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_args(parser)
    parser.add_argument("--models", default="models", help="folder holding manifest.json (default: %(default)s)")
    parser.add_argument("--variant", default="original", help="manifest variant to run (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=6, help="paired loop and bare runs (default: %(default)s)")
    parser.add_argument("--passes", type=int, default=3, help="passes over the images per loop run (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    return parser.parse_args(argv)


def loop_rate(runner: OnnxRunner, family, dataset, passes: int) -> float:
    """Images per second of the full image loop over the images `passes` times, predictions to a scratch folder."""
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        timings = run_images(runner, family, dataset, list(dataset.present) * passes, Path(scratch), "loop")
        return len(timings.inference) / (time.perf_counter() - start)


def bare_rate(runner: OnnxRunner, family, dataset, runs: int) -> float:
    """Images per second of `session.run` alone on one fixed preprocessed input."""
    milliseconds = fixed_input_timings(runner, family, dataset, 1, runs)
    return 1000 * len(milliseconds) / sum(milliseconds)


@exit_on_input_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    manifest = read_manifest(Path(args.models) / MANIFEST)
    if manifest is None or args.variant not in manifest["variants"]:
        print(f"skipped: {Path(args.models) / MANIFEST} has no '{args.variant}' variant yet; run `make all` first")
        return
    dataset = open_dataset(args.images, args.split, args.limit)
    path = Path(args.models) / manifest["variants"][args.variant]["file"]
    runner, family = OnnxRunner(path, args.threads), family_for(header_of(manifest, args.variant))
    warm_up(runner, family, 3)
    loop, bare = [], []
    for round_index in range(args.rounds):
        for kind in ("loop", "bare") if round_index % 2 == 0 else ("bare", "loop"):  # neither always goes first
            if kind == "loop":
                loop.append(loop_rate(runner, family, dataset, args.passes))
            else:
                bare.append(bare_rate(runner, family, dataset, len(dataset.present) * args.passes))
    ratios = [a / b for a, b in zip(loop, bare)]
    print(f"{args.variant} ({header_of(manifest, args.variant)['provenance']}; {dataset.describe()}), "
          f"{args.rounds} paired rounds:")
    print(f"  bare session.run: median {statistics.median(bare):.2f} img/s ({', '.join(f'{r:.2f}' for r in bare)})")
    print(f"  image loop:       median {statistics.median(loop):.2f} img/s ({', '.join(f'{r:.2f}' for r in loop)})")
    ratio = statistics.median(ratios)
    print(f"  loop / bare per round: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"  median loop / bare = {ratio:.3f} (target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
