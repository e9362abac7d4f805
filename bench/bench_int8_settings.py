"""Measure the INT8 settings facecompress/compress/isa.py chooses from, on this CPU, for one family's FP32 file.

Usage: python bench/bench_int8_settings.py [--models models] [--family scrfd] [--calibration-dir DIR]
                                           [--rounds 20] [--threads 2]

Builds static QDQ INT8 files of the family's FP32 original in each setting (7-bit or full-range weights,
U8S8 / U8U8 / S8S8 kernels, per-channel or per-tensor scales, convolutions only or every operator), times
them interleaved with the FP32 file in one run, and measures each one's label-free agreement with FP32 on
images of the calibration folder (or the dataset's, said so). Prints the table with the CPU's instruction
sets: what the docstring of isa.py records. It needs `make all` (or inference.py) first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecompress.compress import quantization  # noqa: E402
from facecompress.compress.inputs import from_dataset, from_folder  # noqa: E402
from facecompress.compress.search import SCOPES, detections  # noqa: E402
from facecompress.core.artifacts import MANIFEST, read_manifest, reference_of  # noqa: E402
from facecompress.core.errors import exit_on_input_error  # noqa: E402
from facecompress.core.tables import format_table  # noqa: E402
from facecompress.data.dataset import open_dataset  # noqa: E402
from facecompress.detectors import family_for  # noqa: E402
from facecompress.evaluation.accuracy import agreement_confidence  # noqa: E402
from facecompress.evaluation.metrics import agreement  # noqa: E402
from facecompress.run.sessions import OnnxRunner  # noqa: E402
from facecompress.run.timing import cpu_isa, cpu_model, paired_speedup, time_interleaved  # noqa: E402

BASE = {"per_channel": True, "reduce_range": True, "weight_type": "s8", "activation_type": "u8", "scope": "conv"}
SETTINGS = {  # name -> what differs from BASE
    "U8S8 7-bit, per channel, conv": {},
    "U8S8 full range": {"reduce_range": False},
    "U8U8": {"weight_type": "u8"},
    "S8S8": {"activation_type": "s8"},
    "per tensor": {"per_channel": False},
    "every operator": {"scope": "all"},
    "every operator, full range": {"scope": "all", "reduce_range": False},
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="models", help="folder holding manifest.json (default: %(default)s)")
    parser.add_argument("--family", default="scrfd", help="family whose FP32 original is measured (default: %(default)s)")
    parser.add_argument("--calibration-dir", default=None, help="images to calibrate and check on (default: the dataset's)")
    parser.add_argument("--images", default="WIDER_val/images", help="dataset images (default: %(default)s)")
    parser.add_argument("--split", default="wider_face_split", help="dataset annotations (default: %(default)s)")
    parser.add_argument("--check-images", type=int, default=32, help="agreement images (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved timing rounds (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default: %(default)s)")
    return parser.parse_args(argv)


def build(source: Path, out: Path, calibration: list, setting: dict) -> Path:
    """One static QDQ file in `setting`, calibrated with MinMax (ranges cached between settings)."""
    options = {**BASE, **setting}
    scope = options.pop("scope")  # ONNX Runtime calibrates only the tensors of the operators in scope
    quantization.quantize_static_qdq(source, out, calibration, op_types=SCOPES[scope], fp16_tables=False,
                                     ranges_cache=out.parent / f"ranges-{scope}.json", **options)
    return out


@exit_on_input_error
def main(argv=None) -> None:
    args = parse_args(argv)
    manifest = read_manifest(Path(args.models) / MANIFEST)
    reference = reference_of(args.family)
    if manifest is None or reference not in manifest["variants"]:
        print(f"skipped: {Path(args.models) / MANIFEST} has no {reference} yet; run `make all` first")
        return
    family = family_for(manifest["families"][args.family])
    dataset = open_dataset(args.images, args.split)
    inputs = (from_folder(args.calibration_dir, dataset, family, 16, args.check_images, 1) if args.calibration_dir
              else from_dataset(dataset, family, 16, args.check_images, 1))
    check = inputs.check
    with tempfile.TemporaryDirectory(prefix="facecompress-bench-") as scratch:
        source = Path(scratch) / "pre.onnx"
        quantization.preprocess(Path(args.models) / manifest["variants"][reference]["file"], source)
        calibration = [a for _, a, _ in inputs.calibration]
        files = {name: build(source, Path(scratch) / f"{i}.onnx", calibration, s)
                 for i, (name, s) in enumerate(SETTINGS.items())}
        truth = detections(source, family, check, args.threads)
        confidence, _ = agreement_confidence(truth, 0.5)
        agreed = {n: agreement(detections(f, family, check, args.threads), truth, confidence) for n, f in files.items()}
        runners = {"FP32": OnnxRunner(source, args.threads), **{n: OnnxRunner(f, args.threads) for n, f in files.items()}}
        times = time_interleaved({n: (lambda r=r: r.run(check.inputs[0])) for n, r in runners.items()}, args.rounds, 3)
    print(f"{manifest['families'][args.family]['model']}; ONNX Runtime CPU, {args.threads} threads, {args.rounds} "
          f"interleaved rounds; agreement on {len(check.names)} images ({inputs.record['source']}); "
          f"CPU {cpu_model()} ({cpu_isa()})")
    rows = [{"setting": n, "median_ms": f"{1000 * sorted(times[n])[len(times[n]) // 2]:.1f}",
             "speed-up": f"{paired_speedup(times['FP32'], times[n]):.2f}x",
             "agreement": f"{agreed[n].ap50:.4f}" if n in agreed else "1", "reproduced":
             f"{agreed[n].reproduced:.3f}" if n in agreed else "1"} for n in runners]
    print(format_table(rows, ["setting", "median_ms", "speed-up", "agreement", "reproduced"]))


if __name__ == "__main__":
    main()
