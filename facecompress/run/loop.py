"""Run one model over the dataset: WIDER-format predictions written image by image, per-phase timings.

Each prediction file is written atomically as soon as its image is done, so a killed run loses at most the
image in flight; `cache` decides which images still need a run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import supervision as sv
from PIL import Image
from tqdm import tqdm

from ..core.artifacts import LOOP_PHASE
from ..core.errors import InputError
from ..data.dataset import Dataset, read_image
from ..data.wider import ImageAnnotation
from ..detectors.family import Family
from ..evaluation.submission import prediction_path, write_prediction_file
from .timing import prefetch, summarize, time_calls

log = logging.getLogger(__name__)

SCORE_FLOOR = 0.01  # keep the low-score tail the official PR curve sweeps through


class Runner(Protocol):
    """Anything that maps a preprocessed batch to the network's raw outputs (an ONNX session, a PyTorch model)."""

    def run(self, batch: np.ndarray) -> list[np.ndarray]: ...


@dataclass
class LoopTimings:
    """Milliseconds per image of each phase, and the wall time of the whole loop."""

    preprocess: list[float] = field(default_factory=list)
    inference: list[float] = field(default_factory=list)
    postprocess: list[float] = field(default_factory=list)
    wall_s: float = 0.0


def _loader(dataset: Dataset, family: Family, skip_unreadable: bool):
    def load(annotation: ImageAnnotation) -> tuple[np.ndarray, tuple[int, int]] | None:
        image = read_image(dataset, annotation, skip_unreadable)
        return None if image is None else (family.preprocess(image), image.size)
    return load


def to_submission(detections: sv.Detections) -> np.ndarray:
    """(N, 5) x, y, w, h, score: the WIDER FACE submission layout."""
    xywh = sv.xyxy_to_xywh(detections.xyxy.astype(np.float64))
    return np.column_stack([xywh, detections.confidence]).reshape(-1, 5)


def detect(runner: Runner, family: Family, image: Image.Image, floor: float = SCORE_FLOOR) -> np.ndarray:
    """One image through exactly the loop's preprocess, run and decode: its submission rows."""
    outputs = runner.run(family.preprocess(image))
    return to_submission(family.decode(outputs, image.size, floor))


def run_images(runner: Runner, family: Family, dataset: Dataset, annotations: list[ImageAnnotation],
               folder: Path, label: str, floor: float = SCORE_FLOOR, skip_unreadable: bool = False) -> LoopTimings:
    """Decode + preprocess (in a worker thread, one image ahead), infer, decode, write; time each phase."""
    timings = LoopTimings()
    start = time.perf_counter()
    loader = _loader(dataset, family, skip_unreadable)
    for annotation, loaded, load_ms in tqdm(prefetch(loader, annotations), total=len(annotations), desc=label,
                                            unit="img", leave=False):
        if loaded is None:  # unreadable and skipped: no file, so the stage counts it out of the scored set
            continue
        batch, size = loaded
        t0 = time.perf_counter()
        outputs = runner.run(batch)
        t1 = time.perf_counter()
        dets = to_submission(family.decode(outputs, size, floor))
        t2 = time.perf_counter()
        write_prediction_file(prediction_path(folder, annotation.name), annotation.name, dets)
        timings.preprocess.append(load_ms)
        timings.inference.append((t1 - t0) * 1000)
        timings.postprocess.append((t2 - t1) * 1000)
    timings.wall_s = time.perf_counter() - start
    return timings


def fixed_input(family: Family, dataset: Dataset) -> np.ndarray:
    """The preprocessed first readable image: the one input every latency figure is measured on."""
    for annotation in dataset.present:
        image = read_image(dataset, annotation, skip_unreadable=True)
        if image is not None:
            return family.preprocess(image)
    raise InputError(f"{dataset.images_dir}: no readable image to time the models on")


def fixed_input_timings(runner: Runner, family: Family, dataset: Dataset, warmup: int, repeats: int) -> list[float]:
    """Bare network milliseconds on one fixed preprocessed image: the rate the image loop is held to."""
    batch = fixed_input(family, dataset)
    return time_calls(lambda: runner.run(batch), warmup, repeats)


def warm_up(runner: Runner, family: Family, count: int) -> None:
    """Untimed runs so the first images of the loop do not pay for allocation and kernel selection."""
    batch = np.zeros(family.input_shape, np.float32)
    for _ in range(count):
        runner.run(batch)


def loop_rows(model: str, timings: LoopTimings, context: dict, images_total: int) -> list[dict]:
    """Tidy rows, one per loop phase and one for the loop's overall rate, saying how many images they cover.

    A resumed run only times the images it still had to do: `n` of `images_total`.
    """
    images = len(timings.inference)
    phases = {"preprocess": timings.preprocess, "inference": timings.inference, "postprocess": timings.postprocess}
    rows = [{"model": model, "phase": phase, **summarize(values), "images_per_s": None} for phase, values in
            phases.items()]
    per_image = [1000 * timings.wall_s / images] if images else []
    rows.append({"model": model, "phase": LOOP_PHASE, **summarize(per_image),
                 "images_per_s": round(images / timings.wall_s, 3) if images else None})
    rows[-1]["n"] = images
    return [{**row, "images_total": images_total, **context} for row in rows]
