"""Time the WIDER FACE evaluator end to end: read a full validation set of submission files, then score it.

Usage: python bench/bench_evaluate.py [--gt wider_face_split] [--detections 300] [--rounds 3]

Writes one file per image of the ground truth in --gt (3,226 for WIDER FACE val, as fetched by
`python -m facecompress.data.download`) with `--detections` detections each, as RF-DETR emits them (float32
boxes, half near a face, half anywhere, scores in random order), into a temporary folder; then times
read_prediction_dir + evaluate in this process (targets: 2 s, matlab mode), and `python -m
facecompress.evaluation` as a whole process, imports included (target: 2.5 s), each after one untimed
warm-up run, and prints the median and the slowest of the timed runs. Without the evaluation files it
says so and exits.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecompress.core.errors import exit_on_input_error  # noqa: E402
from facecompress.data.dataset import DEFAULT_SPLIT  # noqa: E402
from facecompress.data.wider import MAT_FILE, MatImage, read_mat_ground_truth  # noqa: E402
from facecompress.evaluation.official import evaluate  # noqa: E402
from facecompress.evaluation.submission import (prediction_path, read_prediction_dir,  # noqa: E402
                                                write_prediction_file)

TARGET_S = 2.0  # read + evaluate in process
PROCESS_TARGET_S = 2.5  # `python -m facecompress.evaluation`, start to exit


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", default=str(DEFAULT_SPLIT),
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


def process_once(pred_dir: Path, gt: str) -> float:
    """Seconds for the whole `python -m facecompress.evaluation` process, interpreter start and imports included."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "facecompress.evaluation", "--pred", str(pred_dir), "--gt", gt],
                   check=True, stdout=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent)
    return time.perf_counter() - start


def report(label: str, seconds: list[float], target: float) -> None:
    verdict = "within" if np.median(seconds) < target else "OVER"
    print(f"{label}: median {np.median(seconds):.3f} s, slowest {max(seconds):.3f} s over {len(seconds)} runs "
          f"({verdict} the {target:g} s target)")


@exit_on_input_error
def main(argv=None) -> None:
    args = parse_args(argv)
    if not (Path(args.gt) / MAT_FILE).is_file():
        print(f"skipped: no {MAT_FILE} in {args.gt}; fetch WIDER FACE val with `python -m facecompress.data.download` "
              "or pass --gt FOLDER")
        return
    ground_truth = read_mat_ground_truth(args.gt)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        for image in ground_truth:
            write_prediction_file(prediction_path(tmp, image.name), image.name,
                                  fake_detections(image, args.detections, rng))
        print(f"{len(ground_truth)} images x {args.detections} detections written to {tmp}")
        for compat in ("matlab", "port"):
            run_once(Path(tmp), ground_truth, compat)  # warm-up: page cache, first-call allocations
            report(f"{compat}: read + evaluate", [run_once(Path(tmp), ground_truth, compat)
                                                  for _ in range(args.rounds)], TARGET_S)
        process_once(Path(tmp), args.gt)
        report("python -m facecompress.evaluation, whole process",
               [process_once(Path(tmp), args.gt) for _ in range(args.rounds)], PROCESS_TARGET_S)


if __name__ == "__main__":
    main()
