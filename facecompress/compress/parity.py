"""How closely a compressed ONNX file reproduces its family's FP32 file, compared as decoded detections.

Raw outputs of different families mean different things (anchor distances, heatmaps), and INT8 moves them
all a little; what a user sees is the detections. So both files run on the same parity images, both are
decoded by the family above the caller's score floor (the detections a user would keep), and each FP32
detection, best first, takes the candidate detection that overlaps it most (IoU >= 0.5, each taken once). Reported: the largest box-corner
and score difference between partners, and the share of the FP32 file's top-k detections reproduced.
"""

from __future__ import annotations

import numpy as np
import supervision as sv

from ..evaluation.metrics import iou_matrix
from ..evaluation.official import IOU_THRESHOLD

TOP_K = 100
METHOD = (f"decoded detections vs the family's FP32 file on the parity images; each FP32 detection, best first, "
          f"paired with the unpaired candidate detection overlapping it most (IoU >= {IOU_THRESHOLD}); max "
          f"|difference| of box corners (pixels) and of scores between partners; top-{TOP_K}: share of the FP32 "
          f"file's best {TOP_K} detections that found a partner")


def pair(reference: sv.Detections, candidate: sv.Detections) -> list[tuple[int, int]]:
    """(reference, candidate) index pairs, the reference taken by descending score."""
    xywh = [sv.xyxy_to_xywh(d.xyxy.astype(np.float64)) for d in (reference, candidate)]
    iou = iou_matrix(*xywh)
    taken: set[int] = set()
    pairs = []
    for row in np.argsort(-reference.confidence, kind="stable"):
        free = [c for c in np.argsort(-iou[row], kind="stable") if iou[row, c] >= IOU_THRESHOLD and c not in taken]
        if free:
            taken.add(free[0])
            pairs.append((int(row), int(free[0])))
    return pairs


def image_parity(reference: sv.Detections, candidate: sv.Detections, k: int = TOP_K) -> dict:
    """Differences between partners on one image, and the share of the reference's top k with a partner."""
    pairs = pair(reference, candidate)
    rows, cols = (np.array(i, dtype=int) for i in zip(*pairs)) if pairs else (np.zeros(0, int),) * 2
    top = set(np.argsort(-reference.confidence, kind="stable")[:k].tolist())
    return {"boxes": float(np.abs(reference.xyxy[rows] - candidate.xyxy[cols]).max(initial=0.0)),
            "scores": float(np.abs(reference.confidence[rows] - candidate.confidence[cols]).max(initial=0.0)),
            "reproduced": len(top & set(rows.tolist())) / len(top) if top else 1.0}


def compare_detections(reference: list[sv.Detections], candidate: list[sv.Detections], k: int = TOP_K) -> dict:
    """A manifest's parity record: worst image for each figure, every image counted."""
    images = [image_parity(r, c, k) for r, c in zip(reference, candidate)]
    overlap = min(image["reproduced"] for image in images)
    return {"images": len(images), "max_abs_boxes": max(image["boxes"] for image in images),
            "max_abs_scores": max(image["scores"] for image in images), "top_k": k,
            "top_k_overlap": overlap, "top_k_agree": overlap == 1.0, "method": METHOD}
