"""Does the image loop keep ONNX Runtime busy? Loop throughput over bare `session.run` throughput, FP32 original.

Usage: python bench/bench_loop.py [--models models] [--rounds 2] [--passes 3]

The loop (decode, preprocess, inference, decode, write) and bare runs on one fixed preprocessed input are
measured alternately, `rounds` times each, so background load hits both alike. Target: ratio >= 0.9.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecompress.benchmarking import fixed_input_timings, run_images, warm_up  # noqa: E402
from facecompress.cli import add_dataset_args  # noqa: E402
from facecompress.dataset import open_dataset  # noqa: E402
from facecompress.errors import InputError, exit_on_input_error  # noqa: E402
from facecompress.manifest import MANIFEST, read_manifest  # noqa: E402
from facecompress.runtime import OnnxDetector  # noqa: E402

TARGET = 0.9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_args(parser)
    parser.add_argument("--models", default="models", help="folder holding manifest.json (default: %(default)s)")
    parser.add_argument("--variant", default="original", help="manifest variant to run (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of loop and bare runs (default: %(default)s)")
    parser.add_argument("--passes", type=int, default=3, help="passes over the images per loop run (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    return parser.parse_args(argv)


def loop_rate(detector: OnnxDetector, dataset, passes: int) -> float:
    """Images per second of the full image loop, predictions written to a scratch folder."""
    images, seconds = 0, 0.0
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(passes):
            start = time.perf_counter()
            timings = run_images(detector, dataset, list(dataset.present), Path(scratch) / str(index), "loop")
            seconds += time.perf_counter() - start
            images += len(timings.inference)
    return images / seconds


@exit_on_input_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    manifest = read_manifest(Path(args.models) / MANIFEST)
    if manifest is None or args.variant not in manifest["variants"]:
        raise InputError(f"{Path(args.models) / MANIFEST}: no '{args.variant}' variant; run `python inference.py` first")
    dataset = open_dataset(args.images, args.split, args.limit)
    path = Path(args.models) / manifest["variants"][args.variant]["file"]
    detector = OnnxDetector(path, manifest["resolution"], args.threads)
    warm_up(detector, 3)
    loop, bare = [], []
    for _ in range(args.rounds):
        loop.append(loop_rate(detector, dataset, args.passes))
        runs = fixed_input_timings(detector, dataset, 1, len(dataset.present) * args.passes)
        bare.append(1000 * len(runs) / sum(runs))
    loop_best, bare_best = max(loop), max(bare)
    print(f"{args.variant} ({manifest['provenance']}; {dataset.describe()}), {args.rounds} alternations:")
    print(f"  bare session.run: {bare_best:.2f} img/s (all rounds: {', '.join(f'{r:.2f}' for r in bare)})")
    print(f"  image loop:       {loop_best:.2f} img/s (all rounds: {', '.join(f'{r:.2f}' for r in loop)})")
    ratio = loop_best / bare_best
    print(f"  loop / bare = {ratio:.3f} (target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
