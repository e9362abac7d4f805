"""RF-DETR's side of the builder: the PyTorch models variants are exported from, their counts and their parity.

The builder asks for a model by name ('original', 'pruned_30', 'structured_50') with the recipe that makes
it; each is pruned from the original once per run, and what several variants share (structured-pruning
importance, PyTorch outputs on the parity images, counts) is computed once.
"""

from __future__ import annotations

import os

import numpy as np
from torch import nn

from . import INPUT_NAME, pruning
from .export import export_onnx, export_ready
from .loading import Baseline
from .parity import METHOD as PARITY_METHOD
from .parity import compare, torch_outputs
from .stats import FLOPS_METHOD, count_flops, count_parameters


def file_stem(baseline: Baseline) -> str:
    """The start of every variant's file name: 'rfdetr-nano'."""
    return f"rfdetr-{baseline.variant}"


def manifest_header(baseline: Baseline) -> dict:
    """RF-DETR's run-wide manifest facts: source, size, input contract, pruning targets, how counts were made."""
    side = baseline.resolution
    return {"family": "rfdetr", "model": f"RF-DETR {baseline.variant} at {side} px", "provenance": baseline.provenance, "source": baseline.source,
            "model_variant": baseline.variant, "resolution": side, "num_classes": baseline.num_classes,
            "input": {"name": INPUT_NAME, "shape": [1, 3, side, side], "dtype": "float32",
                      "preprocess": "RGB / 255, bilinear resize without antialias to R x R, ImageNet mean/std "
                                    "(as rfdetr predict)"},
            "outputs": {"dets": "[1, Q, 4] normalised cx, cy, w, h", "labels": "[1, Q, C+1] raw logits"},
            "unstructured_targets": pruning.target_names(baseline.net), "parity_method": PARITY_METHOD,
            "flops_method": FLOPS_METHOD, "counts": "parameters, non-zeros and FLOPs are those of the PyTorch model "
                                                    "a file came from (torch_model)"}


class TorchModels:
    """The original and the pruned PyTorch models of one run, made on first use."""

    def __init__(self, baseline: Baseline, calibration_inputs: list[np.ndarray], parity_inputs: list[np.ndarray]):
        self.resolution = baseline.resolution
        self.calibration_inputs, self.parity_inputs = calibration_inputs, parity_inputs
        self._nets: dict[str, nn.Module] = {"original": baseline.net}
        self._stats: dict[str, dict] = {}
        self._references: dict[str, list] = {}
        self._importance: dict | None = None

    def importance(self) -> dict:
        """Head and channel scores of the original on the calibration images, shared by every structured ratio."""
        if self._importance is None:
            self._importance = pruning.structured_importance(self._nets["original"], self.resolution,
                                                             self.calibration_inputs)
        return self._importance

    def net(self, name: str, method: str, params: dict) -> nn.Module:
        """PyTorch model `name`, made by `method` with `params` from the original on first use."""
        if name not in self._nets:
            original = self._nets["original"]
            if method == "unstructured-l1":
                self._nets[name] = pruning.prune_unstructured(original, params["amount"])
            else:
                self._nets[name] = pruning.prune_structured(original, params["ratio"], self.importance())
        return self._nets[name]

    def export(self, name: str, method: str, params: dict, path: str | os.PathLike) -> None:
        """Write PyTorch model `name` as ONNX."""
        export_onnx(self.net(name, method, params), self.resolution, path)

    def stats(self, name: str, method: str, params: dict, path: str | os.PathLike | None = None) -> dict:
        """Parameters, non-zeros, sparsity and FLOPs of a PyTorch model as exported, plus what pruning left.

        Counted on the PyTorch model, not on its file (`path`, unused here), so they hold for every export.
        """
        if name not in self._stats:
            net = self.net(name, method, params)
            total, nonzero = count_parameters(export_ready(net, self.resolution))
            stats = {"parameters": total, "nonzero": nonzero, "sparsity": round(1 - nonzero / total, 6),
                     "flops": count_flops(net, self.resolution)}
            if method == "unstructured-l1":
                zeros, elements = pruning.target_sparsity(net)
                stats["pruned_layers"] = {"count": len(pruning.prunable_weights(net)), "elements": elements,
                                          "zeros": zeros, "sparsity": round(zeros / elements, 6)}
            elif method == "structured":
                stats["backbone_widths"] = pruning.block_widths(net)
            self._stats[name] = stats
        return self._stats[name]

    def parity(self, name: str, method: str, params: dict, candidate: list) -> dict:
        """How closely an ONNX file's outputs on the parity images match PyTorch model `name`'s."""
        if name not in self._references:
            self._references[name] = torch_outputs(self.net(name, method, params), self.resolution,
                                                   self.parity_inputs)
        return compare(self._references[name], candidate)
