"""ONNX export of an `LWDETR` module, the way rfdetr exports it, but quiet and to a file name of our choosing.

rfdetr's `RFDETR.export()` prints the whole traced graph, writes to a fixed file name and needs the `RFDETR`
wrapper rather than a pruned module. This mirrors what it does for a detection model (rfdetr 1.11.2,
`export/prepare.py` and `export/_onnx/exporter.py`): freeze the DINOv2 position table at the export size, switch
every submodule to its export forward, then the TorchScript-based `torch.onnx.export` (not dynamo) at opset 17
with constant folding. The graph takes `input` [1, 3, R, R] (ImageNet-normalised RGB) and returns `dets`
[1, Q, 4] (normalised cx, cy, w, h) and `labels` [1, Q, C+1] (raw logits), exactly as rfdetr's own file does.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings

import torch
from torch import nn

from ...core.atomic import atomic_path
from . import INPUT_NAME, OPSET, OUTPUT_NAMES



def export_ready(net: nn.Module, resolution: int) -> nn.Module:
    """A copy of `net` in rfdetr's export mode: image tensor in, (boxes, logits) out, position table frozen."""
    from rfdetr.models.backbone.dinov2 import DinoV2

    ready = copy.deepcopy(net).eval()
    for module in ready.modules():
        if isinstance(module, DinoV2):
            module.shape = (resolution, resolution)
            module.export()
    ready.export()
    return ready


@contextlib.contextmanager
def _quiet_trace():
    """Hide the tracer's warnings and any stdout chatter: they describe rfdetr's code, not a problem with the run."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def export_onnx(net: nn.Module, resolution: int, path: str | os.PathLike) -> None:
    """Write `net` as an ONNX file atomically (a temp name renamed into place only once complete)."""
    ready = export_ready(net, resolution)
    example = torch.zeros(1, 3, resolution, resolution)
    with atomic_path(path) as tmp, _quiet_trace(), torch.no_grad():
        torch.onnx.export(ready, (example,), str(tmp), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                          export_params=True, keep_initializers_as_inputs=False, do_constant_folding=True,
                          opset_version=OPSET, dynamo=False)
