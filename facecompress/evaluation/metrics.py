"""Detection metrics at a confidence threshold, AP@0.5 over all faces, and agreement between two models.

These are the project's own figures, next to the official Easy / Medium / Hard AP (facecompress.evaluation.official):
- Ground truth: ImageAnnotation.faces (the all-zero placeholder row of a faceless image is not a face).
  Faces marked invalid=1 are *ignored*, as the official protocol does (no setting's gt_list holds any of
  the 585): a detection on one is neither TP nor FP, and an unfound one is no FN.
- IoU: continuous x, y, w, h boxes, area w*h, no +1 (as COCO; the official protocol adds 1 pixel).
- Matching, one to one at IoU >= 0.5: detections by descending score (stable for ties); each takes the
  not yet matched valid face of highest IoU (on an exact IoU tie the later face, as pycocotools does);
  failing that, a detection with IoU >= 0.5 on an ignored face is ignored (an ignored face can absorb
  several); otherwise it is a false positive. This is COCO's rule; VOC's differs in one point: a
  detection whose best face is already taken is a false positive there, here it tries the next face.
- At a threshold t the detections scoring >= t count; matching all detections and then cutting at t
  gives the same counts, since a lower-scored detection never changes a higher one's match.
- Ratios with a zero denominator are NaN, never 0 or 1: precision with no detection, recall with no
  face, F1 (= 2TP / (2TP + FP + FN)) with neither, AP with no face. Dataset totals sum the counts
  (micro), they do not average per-image ratios.
- AP@0.5: all-point interpolation (area under the monotone precision envelope, VOC 2010+); `points=101`
  gives COCO's 101 recall samples instead, for comparison with pycocotools.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..data.wider import INVALID, ImageAnnotation
from .official import IOU_THRESHOLD

TP, FP, IGNORED = 1, 0, -1


@dataclass(frozen=True)
class Counts:
    """True positives, false positives and missed faces; the ratios follow."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)


@dataclass(frozen=True)
class ImageMetrics:
    """One image at a threshold (counts) and over all its detections (ap50)."""

    name: str
    faces: int
    detections: int
    counts: Counts
    ap50: float


@dataclass(frozen=True)
class DatasetMetrics:
    """Per-image rows, their summed counts and AP@0.5 with every face of every image pooled."""

    images: list[ImageMetrics]
    counts: Counts
    ap50: float
    score_threshold: float


@dataclass(frozen=True)
class Agreement:
    """A variant scored against a reference model's confident detections taken as ground truth."""

    ap50: float
    reproduced: float  # share of the reference boxes the variant finds at the same confidence
    reference_boxes: int
    images: int


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when either is missing or the denominator is 0 (precision with no detection)."""
    if not (np.isfinite(numerator) and np.isfinite(denominator)) or denominator == 0:
        return math.nan
    return float(numerator / denominator)


def iou_matrix(boxes: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """IoU of every x, y, w, h box against every face, continuous coordinates (0 where the union is empty)."""
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(faces, dtype=np.float64).reshape(-1, 4)[None, :, :]
    w = np.clip(np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _score_order(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def _greedy(iou: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Rows (in score order) that take a face: each the best untaken face at or above the threshold."""
    rows, cols = np.nonzero(iou >= iou_threshold)
    order = np.lexsort((-cols, -iou[rows, cols], rows))  # per row: best IoU first, on a tie the later face
    taken, matched, current, done = set(), [], -1, False
    for row, col in zip(rows[order].tolist(), cols[order].tolist()):
        if row != current:
            current, done = row, False
        if not done and col not in taken:
            taken.add(col)
            matched.append(row)
            done = True
    return np.asarray(matched, dtype=np.int64)


def match_detections(dets: np.ndarray, faces: np.ndarray, ignored: np.ndarray | None = None,
                     iou_threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """Each detection's outcome (TP 1, FP 0, IGNORED -1), in input order, under the greedy rule above."""
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    order = _score_order(dets[:, 4])
    ignored = np.zeros((0, 4)) if ignored is None else ignored
    outcome = np.where((iou_matrix(dets[order, :4], ignored) >= iou_threshold).any(axis=1), IGNORED, FP)
    outcome[_greedy(iou_matrix(dets[order, :4], faces), iou_threshold)] = TP
    result = np.empty_like(outcome)
    result[order] = outcome
    return result


def average_precision(scores: np.ndarray, outcomes: np.ndarray, positives: int, points: int | None = None) -> float:
    """AP from detections' scores and outcomes: all-point (points=None) or COCO's `points` recall samples."""
    if positives == 0:
        return math.nan
    kept = np.asarray(outcomes) != IGNORED
    order = _score_order(np.asarray(scores)[kept])
    tp = np.cumsum(np.asarray(outcomes)[kept][order] == TP)
    if len(tp) == 0:
        return 0.0
    recall = tp / positives
    precision = tp / np.arange(1, len(tp) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    if points is not None:
        at = np.searchsorted(recall, np.linspace(0, 1, points), side="left")
        return float(np.mean(np.where(at < len(envelope), envelope[np.minimum(at, len(envelope) - 1)], 0.0)))
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def _split_faces(annotation: ImageAnnotation) -> tuple[np.ndarray, np.ndarray]:
    """(valid faces, ignored invalid=1 faces); placeholder rows are neither."""
    real = annotation.face_mask
    invalid = annotation.attributes[:, INVALID] == 1
    return annotation.boxes[real & ~invalid], annotation.boxes[real & invalid]


def _counts(outcome: np.ndarray, scores: np.ndarray, faces: int, threshold: float) -> Counts:
    above = scores >= threshold
    tp = int(np.sum(above & (outcome == TP)))
    return Counts(tp, int(np.sum(above & (outcome == FP))), faces - tp)


def _as_dets(dets: np.ndarray | None) -> np.ndarray:
    return np.zeros((0, 5)) if dets is None else np.asarray(dets, dtype=np.float64).reshape(-1, 5)


def _scored(dets: np.ndarray, annotation: ImageAnnotation, threshold: float) -> tuple[ImageMetrics, np.ndarray]:
    """One image's metrics and its detections' outcomes (input order)."""
    valid, ignored = _split_faces(annotation)
    outcome = match_detections(dets, valid, ignored)
    counts = _counts(outcome, dets[:, 4], len(valid), threshold)
    detections = int(np.sum(dets[:, 4] >= threshold))
    return ImageMetrics(annotation.name, len(valid), detections, counts,
                        average_precision(dets[:, 4], outcome, len(valid))), outcome


def image_metrics(dets: np.ndarray, annotation: ImageAnnotation, score_threshold: float = 0.5) -> ImageMetrics:
    """TP / FP / FN and ratios at `score_threshold`, and AP@0.5 over all detections, for one image."""
    return _scored(_as_dets(dets), annotation, score_threshold)[0]


def pooled_average_precision(scores: Sequence[np.ndarray], outcomes: Sequence[np.ndarray], positives: int,
                             points: int | None = None) -> float:
    """AP over images pooled in their order, each image's detections by score first (as COCO pools them)."""
    orders = [_score_order(s) for s in scores]
    return average_precision(np.concatenate([np.zeros(0)] + [s[o] for s, o in zip(scores, orders)]),
                             np.concatenate([np.zeros(0, dtype=int)] + [c[o] for c, o in zip(outcomes, orders)]),
                             positives, points)


def dataset_metrics(predictions: Mapping[str, np.ndarray], annotations: Sequence[ImageAnnotation],
                    score_threshold: float = 0.5) -> DatasetMetrics:
    """image_metrics for every annotated image (missing predictions: none), summed counts, pooled AP@0.5."""
    rows, scores, outcomes = [], [], []
    for annotation in annotations:
        dets = _as_dets(predictions.get(annotation.name))
        row, outcome = _scored(dets, annotation, score_threshold)
        rows.append(row)
        scores.append(dets[:, 4])
        outcomes.append(outcome)
    total = Counts(*(sum(getattr(r.counts, k) for r in rows) for k in ("tp", "fp", "fn")))
    ap = pooled_average_precision(scores, outcomes, sum(r.faces for r in rows))
    return DatasetMetrics(rows, total, ap, score_threshold)


def agreement(variant: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray],
              confidence: float = 0.5) -> Agreement:
    """AP@0.5 of `variant` against `reference`'s detections scoring >= confidence, and the share it reproduces."""
    names = sorted(set(variant) | set(reference))
    scores, outcomes, found, boxes = [], [], 0, 0
    for name in names:
        truth = _as_dets(reference.get(name))
        truth = truth[truth[:, 4] >= confidence, :4]
        dets = _as_dets(variant.get(name))
        outcome = match_detections(dets, truth)
        found += int(np.sum((outcome == TP) & (dets[:, 4] >= confidence)))
        boxes += len(truth)
        scores.append(dets[:, 4])
        outcomes.append(outcome)
    return Agreement(pooled_average_precision(scores, outcomes, boxes), ratio(found, boxes), boxes, len(names))
