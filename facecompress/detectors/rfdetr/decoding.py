"""rfdetr's `predict` post-processing, reproduced on raw ONNX outputs without torch.

After the network, `predict` takes a sigmoid over all `[Q, C+1]` logits, keeps the top 300 query/class
pairs (stable sort, background slot included), and scales `cxcywh` to pixels. Tests hold this, with
`preprocessing`, to `predict` itself, so every variant is decoded exactly as rfdetr would.
"""

from __future__ import annotations

import numpy as np
import supervision as sv

from . import FACE_CLASS, NUM_SELECT


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
    width, height = image_size
    scale = np.array([width, height, width, height], np.float32)
    xyxy = np.clip(sv.xcycwh_to_xyxy(boxes[queries[keep]].astype(np.float32)) * scale, 0, scale)
    return sv.Detections(xyxy=xyxy.reshape(-1, 4), confidence=scores[keep],
                         class_id=np.full(int(keep.sum()), FACE_CLASS, dtype=int))
