"""A channel-pruned ONNX-only family's model, made end to end: prune, check, recover, export, check again.

`ChannelPruner` holds the family's FP32 file converted to PyTorch (checked against ONNX Runtime within
`channel_pruning.CONVERSION_TOLERANCE` on a real input) and makes two kinds of file from it:

* `pruned` (method `channel-l1`): the network with a share of its channels removed, nothing else done:
  the point before recovery;
* `recovered` (method `channel-l1-recovered`): the same pruned network, its convolutions refitted by least
  squares on a few unlabelled images (`reconstruction`), then distilled from the FP32 network on the
  recovery images (`distillation`), bounded by the recipe's minutes and resumable from the checkpoint
  beside the file.

Each exported file is run by ONNX Runtime on the parity inputs and held to the PyTorch model it came from.
Recovery images (`channel_recipe.RecoveryImages`) are the calibration folder's images when there is one,
else the calibration inputs already loaded (which then overlap the evaluated images, and the entry says so).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.checksums import sha256_file
from ..run.sessions import make_session, run_onnx
from . import channel_pruning as cp
from .channel_recipe import RECONSTRUCTION_CROP, RecoveryImages

EXPORT_TOLERANCE = 1e-4  # exported file vs the PyTorch model it came from, as in `channel_pruning.max_difference`


class ChannelPruner:
    """One family's FP32 network in PyTorch, and the channel-pruned files made from it."""

    def __init__(self, fp32: str | os.PathLike, input_name: str, parity_inputs: list[np.ndarray]):
        import onnx

        self.fp32, self.input_name, self.parity_inputs = Path(fp32), input_name, parity_inputs
        self.output_names = [o.name for o in onnx.load(str(fp32), load_external_data=False).graph.output]
        self.example = parity_inputs[0]
        self.teacher = cp.to_torch(fp32, self.example)
        reference = run_onnx(make_session(fp32), parity_inputs[:1])[0]
        self.conversion_error = cp.max_difference(reference, cp.outputs_of(self.teacher, self.example))
        if self.conversion_error > cp.CONVERSION_TOLERANCE:
            raise ValueError(f"{fp32}: onnx2torch's conversion differs from ONNX Runtime by "
                             f"{self.conversion_error:.2g} (relative), over {cp.CONVERSION_TOLERANCE:g}")

    def _export(self, module, path: str | os.PathLike) -> dict:
        """Write `module` to `path`, the file held to it on the parity inputs first; the facts of both checks."""
        error = cp.export_onnx(module, self.example, path, self.input_name, self.output_names,
                               lambda file: self._difference(module, file, path))
        return {"conversion_max_rel_diff": float(f"{self.conversion_error:.3g}"),
                "export_max_rel_diff": float(f"{error:.3g}"), "channels_before": cp.conv_channels(self.teacher),
                "channels_after": cp.conv_channels(module)}

    def _difference(self, module, file: Path, path: str | os.PathLike) -> float:
        """The exported `file`'s largest relative difference from `module` on the parity inputs; over
        EXPORT_TOLERANCE it is refused."""
        outputs = run_onnx(make_session(file), self.parity_inputs)
        error = max(cp.max_difference(cp.outputs_of(module, a), o) for a, o in zip(self.parity_inputs, outputs))
        if error > EXPORT_TOLERANCE:
            raise ValueError(f"{path}: the exported file differs from the pruned PyTorch model by {error:.2g}")
        return error

    def pruned(self, ratio: float, min_channels: int, path: str | os.PathLike) -> dict:
        """Write the pruned network, before any recovery; the facts of its checks and channels."""
        module, _ = cp.prune_channels(self.teacher, self.example, ratio, min_channels)
        return self._export(module, path)

    def recovered(self, ratio: float, min_channels: int, path: str | os.PathLike, images: RecoveryImages,
                  recipe, reconstruction_images: int) -> dict:
        """Write the pruned network after reconstruction and distillation; the facts of both and of the checks.

        Reconstruction reads `reconstruction_images` windows of RECONSTRUCTION_CROP pixels in one batch (on
        SCRFD's 25 %: Hard AP 0.364 from 8 whole inputs, 0.527 from 24), distillation the recipe's schedule.
        The checkpoint and the loss curve are kept beside `path` (`<stem>.recovery.pt`, `<stem>.recovery.csv`).
        """
        from .distillation import Pair, distill, resumable, window
        from .reconstruction import reconstruct, refittable

        module, kept = cp.prune_channels(self.teacher, self.example, ratio, min_channels)
        path = Path(path)
        checkpoint, curve = path.with_suffix(".recovery.pt"), path.with_suffix(".recovery.csv")
        identity = {"teacher": sha256_file(self.fp32), "ratio": ratio, "min_channels": min_channels,
                    "reconstruction_images": reconstruction_images, "images": list(images.names)}
        if not resumable(checkpoint, recipe, identity):  # a checkpoint holds the refitted weights already
            chosen = [window(images.load(i), RECONSTRUCTION_CROP, (recipe.seed, i, 2))
                      for i in _spread(len(images), reconstruction_images, recipe.seed)]
            reconstruct(self.teacher, module, kept, chosen, recipe.seed)
        pair = Pair(self.teacher, module, kept, cp.probability_outputs(self.teacher))
        try:
            outcome = distill(pair, images.load, len(images), recipe, checkpoint, curve, identity)
        finally:
            pair.close()
        recovery = {**outcome.facts(), **images.record(), "loss_curve": curve.name, "checkpoint": checkpoint.name,
                    "reconstructed_layers": len(refittable(module, kept))}
        return {**self._export(module, path), "recovery": recovery}


def _spread(count: int, wanted: int, seed: int) -> list[int]:
    """`wanted` distinct image indices out of `count`, drawn with `seed`."""
    return sorted(np.random.default_rng(seed).choice(count, min(count, wanted), replace=False).tolist())
