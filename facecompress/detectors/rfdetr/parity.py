"""How closely an ONNX file reproduces the PyTorch model it came from, on the same preprocessed images.

DETR outputs are a set: the two-stage encoder picks its top-300 proposals by score, and when two scores are
nearly tied (common in an untrained model) a last-bit difference reorders them. So queries are first paired
by an optimal one-to-one matching, on box distance first and logit distance second, and differences are
measured between partners. A reorder still changes logits a little, because each decoder slot adds its own
learned query embedding to whichever proposal lands in it: that is the network's behaviour, not an export
error, and it is why an exact FP32 export can show a logit difference on near-tied queries.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from ...detectors.rfdetr.export import export_ready

TOP_K = 100
BOX_WEIGHT = 100.0  # pair by location first: boxes are in [0, 1], logits vary by units
BOX_TOLERANCE = 0.01  # two detections are the same when no box coordinate moved by 1 % of the image side

Outputs = tuple[np.ndarray, np.ndarray]  # boxes [1, Q, 4], logits [1, Q, C+1]


def torch_outputs(net: nn.Module, resolution: int, inputs: list[np.ndarray]) -> list[Outputs]:
    """(boxes, logits) of the export-mode PyTorch module: the reference every ONNX file is held to."""
    ready = export_ready(net, resolution)
    with torch.no_grad():
        return [tuple(t.numpy() for t in ready(torch.from_numpy(array))) for array in inputs]


def align(reference: Outputs, candidate: Outputs) -> Outputs:
    """The candidate's queries reordered to best match the reference's, one to one (Hungarian matching)."""
    ref_boxes, ref_logits = reference[0][0], reference[1][0]
    boxes, logits = candidate[0][0], candidate[1][0]
    cost = (BOX_WEIGHT * np.abs(ref_boxes[:, None] - boxes[None]).max(-1)
            + np.abs(ref_logits[:, None] - logits[None]).max(-1))
    _, order = linear_sum_assignment(cost)
    return boxes[order][None], logits[order][None]


def top_k(logits: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Flat (query, class) indices of the k highest logits, as rfdetr's post-processing ranks them.

    rfdetr ranks sigmoid scores over every query and class slot; sigmoid keeps the order, so logits do.
    """
    return np.argsort(-logits.reshape(-1), kind="stable")[:k]


def top_detections(outputs: Outputs, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [k, 4], class slots [k]) of the k best-ranked detections of one image."""
    boxes, logits = outputs[0][0], outputs[1][0]
    order = top_k(logits, k)
    return boxes[order // logits.shape[1]], order % logits.shape[1]


def top_k_overlap(reference: Outputs, candidate: Outputs, k: int = TOP_K) -> float:
    """Share of the reference's top-k detections that the candidate's top-k also has: same class slot, box
    within BOX_TOLERANCE in every coordinate. Independent of query order."""
    ref_boxes, ref_classes = top_detections(reference, k)
    boxes, classes = top_detections(candidate, k)
    near = np.abs(ref_boxes[:, None] - boxes[None]).max(-1) <= BOX_TOLERANCE
    return float((near & (ref_classes[:, None] == classes[None])).any(1).mean())


METHOD = (f"ONNX vs the PyTorch model it came from on the parity images; queries paired one to one by box then "
          f"logit distance before max |difference|; top-{TOP_K} detections agree when class and every box "
          f"coordinate match within {BOX_TOLERANCE} (normalised)")


def compare(reference: list[Outputs], candidate: list[Outputs], k: int = TOP_K) -> dict:
    """Max |difference| of boxes and logits between matched queries, and how many top-k detections agree.

    `top_k_overlap` is the worst image's share of reference top-k detections found in the candidate's top-k;
    `top_k_agree` is true when every image keeps all of them.
    """
    aligned = [align(r, c) for r, c in zip(reference, candidate)]
    overlap = min(top_k_overlap(r, c, k) for r, c in zip(reference, candidate))
    return {
        "images": len(reference),
        "max_abs_boxes": float(max(np.abs(r[0] - a[0]).max() for r, a in zip(reference, aligned))),
        "max_abs_logits": float(max(np.abs(r[1] - a[1]).max() for r, a in zip(reference, aligned))),
        "mean_abs_logits": float(np.mean([np.abs(r[1] - a[1]).mean() for r, a in zip(reference, aligned)])),
        "top_k": k,
        "top_k_overlap": overlap,
        "top_k_agree": overlap == 1.0,
    }
