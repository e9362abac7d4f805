"""The builder's source of models for a family that ships as ONNX only (SCRFD, CenterFace).

Its FP32 'original' is the published file (fetched, checked) or the user's own export; its pruned models
are magnitude-pruned copies of that file, or channel-pruned networks made through PyTorch
(`channel_recovery`, imported only then); counts come from the graph, and parity compares decoded
detections with the FP32 file's on the parity images.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnx

from ..core.atomic import atomic_path
from ..detectors.family import Family
from ..run.sessions import make_session, run_onnx
from .channel_recipe import Recipe
from .parity import compare_detections
from .pruning import prune_onnx, sparsity, weight_names
from .stats import onnx_stats

PARITY_FLOOR = 0.3  # parity compares the detections a user would keep, not the low-score tail


class OnnxModels:
    """The FP32 file of one ONNX-only family and the pruned models made from it."""

    def __init__(self, family: Family, fp32: str | os.PathLike, parity_inputs: list[np.ndarray],
                 parity_sizes: list[tuple[int, int]], recovery=None):
        """`recovery` (a `channel_recovery.RecoveryImages`) is what channel-pruned models are recovered on."""
        self.family, self.fp32 = family, Path(fp32)
        self.parity_inputs, self.parity_sizes = parity_inputs, parity_sizes
        self.recovery = recovery
        self._reference: list | None = None
        self._stats: dict[str, dict] = {}
        self._channels = None
        self._made: dict[str, dict] = {}  # what making a channel-pruned file found (checks, channels, recovery)

    def _channel_pruner(self):
        """The FP32 network in PyTorch, converted once per run (imports torch)."""
        if self._channels is None:
            from .channel_recovery import ChannelPruner

            self._channels = ChannelPruner(self.fp32, self.family.input_name, self.parity_inputs)
        return self._channels

    def export(self, name: str, method: str, params: dict, path: str | os.PathLike) -> None:
        """Write model `name`'s FP32 file: the original as it came, a magnitude-pruned copy or a channel-pruned one."""
        if method == "unstructured-l1":
            prune_onnx(self.fp32, path, params["amount"])
        elif method == "channel-l1":
            self._made[name] = self._channel_pruner().pruned(params["ratio"], params["min_channels"], path)
        elif method == "channel-l1-recovered":
            if self.recovery is None:
                raise ValueError(f"{name}: no recovery images given")
            self._made[name] = self._channel_pruner().recovered(params["ratio"], params["min_channels"], path,
                                                                self.recovery, Recipe(**params["recovery"]),
                                                                params["reconstruction_images"])
        else:
            with atomic_path(path) as tmp:
                shutil.copyfile(self.fp32, tmp)

    def stats(self, name: str, method: str, params: dict, path: str | os.PathLike) -> dict:
        """Parameters, non-zeros, sparsity and FLOPs of model `name`'s FP32 file, plus what pruning left."""
        if name not in self._stats:
            stats = onnx_stats(path)
            if method == "unstructured-l1":
                model = onnx.load(str(path))
                zeros, elements = sparsity(model)
                stats["pruned_layers"] = {"count": len(weight_names(model)), "elements": elements, "zeros": zeros,
                                          "sparsity": round(zeros / elements, 6)}
            if name in self._made:
                stats["channel_pruning"] = self._made[name]
            self._stats[name] = stats
        return self._stats[name]

    def _decoded(self, outputs: list) -> list:
        return [self.family.decode(o, size, PARITY_FLOOR) for o, size in zip(outputs, self.parity_sizes)]

    def parity(self, name: str, method: str, params: dict, candidate: list) -> dict:
        """Decoded detections of a file's outputs against the family's FP32 file, on the parity images."""
        if self._reference is None:
            self._reference = self._decoded(run_onnx(make_session(self.fp32), self.parity_inputs))
        return {**compare_detections(self._reference, self._decoded(candidate)), "score_floor": PARITY_FLOOR}
