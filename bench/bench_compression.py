"""Benchmark the variants in models/manifest.json against the issue's targets, interleaved in one run.

Usage: python bench/bench_compression.py [--models models] [--rounds 20] [--threads 0]

Prints, for each variant, median and p90 latency in ONNX Runtime (CPU, batch 1), its speed-up over the FP32
original and its bytes as a share of the original's; then the three target ratios: best speed-up (>= 2.0x),
dynamic INT8 bytes (<= 26 %), structured pruning + INT8 bytes (<= 16 %).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecompress.core.errors import exit_on_input_error  # noqa: E402
from facecompress.core.artifacts import MANIFEST, read_manifest  # noqa: E402
from facecompress.run.sessions import OnnxRunner, check_file  # noqa: E402
from facecompress.core.tables import format_table  # noqa: E402
from facecompress.compress.targets import bench_rows, target_checks  # noqa: E402
from facecompress.run.timing import cpu_isa, cpu_model, time_interleaved  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="models", help="folder holding manifest.json (default: %(default)s)")
    parser.add_argument("--variants", nargs="*", default=None, help="variants to time (default: all in the manifest)")
    parser.add_argument("--rounds", type=int, default=20,
                        help="timed runs per variant; p90 needs 20 (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per variant first (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0,
                        help="ONNX Runtime intra-op threads, 0 = all cores (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fixed random input (default: %(default)s)")
    return parser.parse_args(argv)


@exit_on_input_error
def main(argv=None) -> None:
    args = parse_args(argv)
    manifest = read_manifest(Path(args.models) / MANIFEST)
    if manifest is None or "original" not in manifest["variants"]:
        print(f"skipped: {Path(args.models) / MANIFEST} has no 'original' variant yet; run `make all` first")
        return
    variants = {n: e for n, e in manifest["variants"].items() if e["family"] == "rfdetr"}
    names = ["original"] + [n for n in (args.variants or variants) if n != "original" and n in variants]
    header = manifest["families"]["rfdetr"]
    side = header["resolution"]
    array = np.random.default_rng(args.seed).standard_normal((1, 3, side, side), dtype=np.float32)
    runners = {n: OnnxRunner(check_file(variants[n], args.models), args.threads) for n in names}
    times = time_interleaved({n: (lambda r=r: r.run(array)) for n, r in runners.items()}, args.rounds, args.warmup)
    print(f"{header['provenance']}, {header['model']}; ONNX Runtime CPU, batch 1, "
          f"{args.threads or os.cpu_count()} threads, {args.rounds} interleaved rounds after {args.warmup} warm-up "
          f"runs; fixed random input; CPU {cpu_model()} ({cpu_isa()})")
    print(format_table(bench_rows(variants, times), ["variant", "median_ms", "p90_ms", "speed-up", "bytes %",
                                                     "GFLOPs"]))
    print()
    print(format_table(target_checks(variants, times), ["target", "value", "variant", "limit", "met"]))


if __name__ == "__main__":
    main()
