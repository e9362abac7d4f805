"""The PyTorch model behind the ONNX files, rebuilt from the manifest and run like them: the benchmark's reference row."""

from __future__ import annotations

import numpy as np
import torch

from .export import export_ready
from .loading import Baseline, load_baseline


def rebuild_baseline(header: dict) -> Baseline:
    """The PyTorch baseline a manifest was made from, rebuilt from its recorded source."""
    source = header["source"]
    settings = {"variant": header["model_variant"], "resolution": header["resolution"],
                "num_classes": header["num_classes"]}
    if source["kind"] == "untrained":
        return load_baseline(seed=source["seed"], **settings)
    if source["kind"] == "checkpoint":
        return load_baseline(checkpoint=source["path"], allow_partial=bool(source.get("partial")), **settings)
    return load_baseline(weights="coco", **settings)


class TorchRunner:
    """An `LWDETR` in export mode: the same input tensor as the ONNX files, the same two outputs."""

    def __init__(self, net: torch.nn.Module, resolution: int):
        self.net = export_ready(net, resolution)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Raw `dets`, `labels` for a preprocessed `[1, 3, R, R]` batch."""
        with torch.no_grad():
            return [t.numpy() for t in self.net(torch.from_numpy(batch))]
