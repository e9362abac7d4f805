"""Time the WIDER FACE evaluator end to end: read a full validation set of submission files, then score it.

Usage: python bench/bench_evaluate.py [--gt ../shared/wider_real/ground_truth] [--detections 300] [--rounds 3]

Writes one file per image of the real ground truth (3,226) with `--detections` detections each, as RF-DETR
emits them (float32 boxes, half near a face, half anywhere, scores in random order), into a temporary
folder; then times read_prediction_dir + evaluate with perf_counter after one untimed warm-up run, and prints
the median and the slowest of the timed runs for each compat mode. The issue's target is 2 s (matlab mode).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecompress.core.errors import exit_on_input_error  # noqa: E402
from facecompress.evaluation.submission import prediction_path, read_prediction_dir, write_prediction_file  # noqa: E402
from facecompress.data.wider import MatImage, read_mat_ground_truth  # noqa: E402
from facecompress.evaluation.official import evaluate  # noqa: E402

DEFAULT_GT = Path(__file__).resolve().parents[2] / "shared" / "wider_real" / "ground_truth"
TARGET_S = 2.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", default=str(DEFAULT_GT),
                        help="folder holding wider_face_val.mat and the three setting files (default: %(default)s)")
    parser.add_argument("--detections", type=int, default=300, help="detections per image (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per mode (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random detections (default: %(default)s)")
    return parser.parse_args(argv)


def fake_detections(image: MatImage, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` float32 detections: half jittered copies of the image's faces, half random boxes."""
    faces = image.boxes.astype(np.float64)
    near = faces[rng.integers(0, len(faces), count // 2)] + rng.normal(0, 2, (count // 2, 4))
    far = np.column_stack([rng.uniform(0, 1000, (count - count // 2, 2)), rng.uniform(4, 200, (count - count // 2, 2))])
    boxes = np.concatenate([near, far])
    return np.column_stack([boxes, rng.random(count)]).astype(np.float32)


def run_once(pred_dir: Path, ground_truth: list[MatImage], compat: str) -> float:
    """Seconds for one read + evaluate."""
    start = time.perf_counter()
    evaluate(read_prediction_dir(pred_dir, compat), ground_truth, compat)
    return time.perf_counter() - start


@exit_on_input_error
def main(argv=None) -> None:
    args = parse_args(argv)
    ground_truth = read_mat_ground_truth(args.gt)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        for image in ground_truth:
            write_prediction_file(prediction_path(tmp, image.name), image.name,
                                  fake_detections(image, args.detections, rng))
        print(f"{len(ground_truth)} images x {args.detections} detections written to {tmp}")
        for compat in ("matlab", "port"):
            run_once(Path(tmp), ground_truth, compat)  # warm-up: page cache, first-call allocations
            seconds = [run_once(Path(tmp), ground_truth, compat) for _ in range(args.rounds)]
            verdict = "within" if np.median(seconds) < TARGET_S else "OVER"
            print(f"{compat}: read + evaluate median {np.median(seconds):.3f} s, slowest {max(seconds):.3f} s "
                  f"over {args.rounds} runs ({verdict} the {TARGET_S:.0f} s target)")


if __name__ == "__main__":
    main()
