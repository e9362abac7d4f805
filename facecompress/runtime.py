"""Run an exported RF-DETR in ONNX Runtime with exactly the pre- and post-processing of rfdetr's `predict`.

A compressed variant is only comparable with the original when every variant sees the same input
tensor and its outputs are decoded the same way, so every variant runs through this module (its input
side in `preprocessing`) and both halves are tested against `predict` itself. After the network,
`predict` takes a sigmoid over all `[Q, C+1]` logits, keeps the top 300 query/class pairs (stable
sort, background slot included), and scales `cxcywh` to pixels.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import supervision as sv
import torch
from PIL import Image

from .onnx_export import INPUT_NAME, OUTPUT_NAMES, export_ready
from .preprocessing import preprocess

FACE_CLASS = 0  # a one-class RF-DETR puts the face in slot 0 and "no object" in the last slot
NUM_SELECT = 300  # predict's top-k: at most 300 detections per image, whatever the crowd


def decode(boxes: np.ndarray, logits: np.ndarray, image_size: tuple[int, int], threshold: float = 0.0,
           num_select: int = NUM_SELECT) -> sv.Detections:
    """Face detections of one image from raw `dets` `[Q, 4]` (normalised cx, cy, w, h) and `labels` `[Q, C+1]`.

    `image_size` is (width, height) of the source image; scores are sigmoids; only pairs of the face
    class scoring above `threshold` survive, in descending score order.
    """
    probabilities = (1.0 / (1.0 + np.exp(-logits.astype(np.float32)))).reshape(-1)
    order = np.argsort(-probabilities, kind="stable")[:num_select]
    queries, labels, scores = order // logits.shape[1], order % logits.shape[1], probabilities[order]
    keep = (labels == FACE_CLASS) & (scores > threshold)
    cx, cy, w, h = boxes[queries[keep]].astype(np.float32).T
    width, height = image_size
    scale = np.array([width, height, width, height], np.float32)
    xyxy = np.clip(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) * scale, 0, scale)
    return sv.Detections(xyxy=xyxy.reshape(-1, 4), confidence=scores[keep],
                         class_id=np.full(int(keep.sum()), FACE_CLASS, dtype=int))


def to_xywh_score(detections: sv.Detections) -> np.ndarray:
    """(N, 5) x, y, w, h, score: the WIDER FACE submission layout."""
    xyxy = detections.xyxy.astype(np.float64)
    return np.column_stack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2], detections.confidence]).reshape(-1, 5)


def make_session(path: str | os.PathLike, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session with full graph optimisation; `threads=None` (or 0) lets ONNX Runtime use every core."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or 0
    options.log_severity_level = 3  # its constant-folding notices about FP16 kernels are expected, not errors
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session: ort.InferenceSession, inputs: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(dets, labels) for each [1, 3, R, R] input."""
    return [tuple(session.run(list(OUTPUT_NAMES), {INPUT_NAME: array})) for array in inputs]


class OnnxDetector:
    """A thin ONNX Runtime wrapper: `run` for timing the bare network, `detect` for an image."""

    def __init__(self, path: str | os.PathLike, resolution: int, threads: int | None = None):
        self.session = make_session(path, threads)
        self.resolution = resolution

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw `dets`, `labels` for a preprocessed `[1, 3, R, R]` batch."""
        ((boxes, logits),) = run_onnx(self.session, [batch])
        return boxes, logits

    def detect(self, image: Image.Image, threshold: float = 0.0) -> sv.Detections:
        """Preprocess, run, decode one RGB image."""
        boxes, logits = self.run(preprocess(image, self.resolution))
        return decode(boxes[0], logits[0], image.size, threshold)


class TorchDetector:
    """The PyTorch model behind the ONNX files, run the same way: the reference row of the benchmark."""

    def __init__(self, net: torch.nn.Module, resolution: int):
        self.net = export_ready(net, resolution)
        self.resolution = resolution

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw `dets`, `labels` for a preprocessed `[1, 3, R, R]` batch."""
        with torch.no_grad():
            boxes, logits = self.net(torch.from_numpy(batch))
        return boxes.numpy(), logits.numpy()
