"""Accuracy tables from cached predictions: the published project's per-image columns, done right, and the
official WIDER FACE Easy / Medium / Hard AP, restricted to the images present when the set is partial."""

from __future__ import annotations

import numpy as np

from ..data.dataset import Dataset
from ..evaluation.metrics import agreement, dataset_metrics
from ..data.wider import MatImage
from ..evaluation.official import evaluate

AGREEMENT_TOP = 100  # an untrained reference has no confident box: then each image's top 100 stand as "truth"


def _rounded(value: float, digits: int = 6) -> float:
    return round(float(value), digits) if np.isfinite(value) else float("nan")


def image_rows(model: str, predictions: dict[str, np.ndarray], dataset: Dataset, threshold: float) -> list[dict]:
    """One row per (model, image): faces, detections and TP / FP / FN / P / R / F1 at `threshold`, AP@0.5."""
    metrics = dataset_metrics(predictions, dataset.present, threshold)
    return [{"model": model, "image": m.name, "faces": m.faces, "detections": m.detections,
             "tp": m.counts.tp, "fp": m.counts.fp, "fn": m.counts.fn, "precision": _rounded(m.counts.precision),
             "recall": _rounded(m.counts.recall), "f1": _rounded(m.counts.f1), "ap50": _rounded(m.ap50),
             "threshold": threshold} for m in metrics.images]


def agreement_confidence(reference: dict[str, np.ndarray], threshold: float) -> tuple[float, str]:
    """The score from which the reference's boxes count as truth: `threshold`, unless no box reaches it.

    An untrained reference never scores near a real threshold; then the confidence is the median, over
    images, of its 100th-best score, so that about 100 boxes per image stand as truth and agreement
    still measures how faithfully a variant reproduces the original.
    """
    if any(np.any(d[:, 4] >= threshold) for d in reference.values()):
        return threshold, f"score >= {threshold}"
    kth = [np.sort(d[:, 4])[::-1][min(AGREEMENT_TOP, len(d)) - 1] for d in reference.values() if len(d)]
    confidence = float(np.median(kth)) if kth else threshold
    return confidence, f"score >= {confidence:.4f} (about the top {AGREEMENT_TOP} per image)"


def accuracy_row(model: str, predictions: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None,
                 dataset: Dataset, ground_truth: list[MatImage], threshold: float) -> dict:
    """Dataset-level metrics of one model at `threshold`, official WIDER AP, and agreement with the reference."""
    names = [a.name for a in dataset.present]
    predictions = {n: predictions.get(n, np.zeros((0, 5))) for n in names}
    metrics = dataset_metrics(predictions, dataset.present, threshold)
    official = evaluate(predictions, ground_truth, restrict_to=None if dataset.complete else names)
    row = {"model": model, "images": len(names), "faces": sum(m.faces for m in metrics.images),
           "threshold": threshold, "tp": metrics.counts.tp, "fp": metrics.counts.fp, "fn": metrics.counts.fn,
           "precision": _rounded(metrics.counts.precision), "recall": _rounded(metrics.counts.recall),
           "f1": _rounded(metrics.counts.f1), "ap50": _rounded(metrics.ap50),
           **{f"wider_{s}": _rounded(ap) for s, ap in official.ap.items()},
           "wider_restricted_to": official.restricted_to, "wider_arithmetic": official.arithmetic}
    if reference is not None:
        reference = {n: reference.get(n, np.zeros((0, 5))) for n in names}
        confidence, rule = agreement_confidence(reference, threshold)
        agreed = agreement(predictions, reference, confidence)
        row.update(agreement_ap50=_rounded(agreed.ap50), agreement_reproduced=_rounded(agreed.reproduced),
                   agreement_reference=rule)
    return row
