"""Structured channel pruning of an ONNX-only family: its ONNX file to PyTorch, fewer convolution channels, to ONNX.

SCRFD and CenterFace ship as ONNX only. `to_torch` converts the file with onnx2torch (checked against ONNX
Runtime on a real input by `max_difference`), `prune_channels` removes whole output channels of every
convolution but the output heads' with Torch-Pruning's dependency graph (which shrinks, with each pruned
channel, the inputs of every layer that reads it, across residual adds and FPN merges) and an L1-norm
importance, and `export_onnx` writes the smaller network with the family's input and output names, in
the family's output order, so that its layout check and decoder read it as they read the original.

Channel counts are rounded to multiples of ROUND_TO: ONNX Runtime's convolutions on x86 block channels
by 8 (AVX2) or 16 (AVX-512), so a count off the block pays for the padding it leaves. Measured on SCRFD-2.5G
(640 x 640, one thread, AVX2, interleaved): 25 % of the channels without rounding ran 1.22x faster than
the original, with rounding to 8 (which removes a little more) 1.95x.

Layers narrower than MIN_CHANNELS keep every channel. SCRFD-2.5G's 12- and 24-channel layers run at the
highest resolutions; cutting them 24 -> 16 with the rest (25 % everywhere) left Hard AP at 0.105 on the
report events after least-squares reconstruction, against 0.378 when only the layers of 48 channels and
more were pruned (0.788 unpruned); the latter measured 1.29-1.42x faster than the original here.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..core.atomic import atomic_path
from .channel_recipe import MIN_CHANNELS, OPSET, ROUND_TO

CONVERSION_TOLERANCE = 1e-4  # of max(1, the output's largest magnitude): float32 rounding over ~60 convolutions


def to_torch(path: str | os.PathLike, example: np.ndarray) -> nn.Module:
    """The ONNX file as a PyTorch module in eval mode, ready to have channels pruned and to run on crops.

    ONNX Resize nodes may carry their output size as a constant [N, C, H, W]: the converted module would
    refuse to run once C shrinks, and would resize a crop to the full input's grid. Each is replaced by
    the scale factor it applies to `example` (a preprocessed input of the file's size), which gives the
    same output at that size and the right one at any other.
    """
    import onnx
    from onnx2torch import convert
    from onnx2torch.node_converters.resize import OnnxResize, _onnx_mode_to_torch_mode

    module = convert(onnx.load(str(path))).eval()
    resizes = {name: m for name, m in module.named_modules() if isinstance(m, OnnxResize)}
    scales: dict[str, tuple[float, ...]] = {}
    handles = [m.register_forward_hook(_scale_keeper(scales, name)) for name, m in resizes.items()]
    outputs_of(module, example)
    for handle in handles:
        handle.remove()
    for name, resize in resizes.items():
        mode = _onnx_mode_to_torch_mode(resize.onnx_mode, len(scales[name]))
        setattr(module, name, ScaleResize(scales[name], mode, resize.align_corners))
    return module


def _scale_keeper(scales: dict, name: str):
    def keep(_module, inputs, output):
        scales[name] = tuple(o / i for o, i in zip(output.shape[2:], inputs[0].shape[2:]))
    return keep


class ScaleResize(nn.Module):
    """An ONNX Resize as a fixed scale factor: what FPN upsampling is, whatever the constant it was written with."""

    def __init__(self, scale: tuple[float, ...], mode: str, align_corners: bool | None):
        super().__init__()
        self.scale, self.mode, self.align_corners = scale, mode, align_corners

    def forward(self, inputs: torch.Tensor, *_constants) -> torch.Tensor:
        return F.interpolate(inputs, scale_factor=self.scale, mode=self.mode, align_corners=self.align_corners)


def outputs_of(module: nn.Module, array: np.ndarray) -> list[np.ndarray]:
    """Every graph output of `module` for one preprocessed input, in the graph's order."""
    with torch.no_grad():
        outputs = module(torch.from_numpy(array))
    return [o.numpy() for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def max_difference(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> float:
    """Largest |difference| over all outputs, each divided by max(1, that output's largest |value|)."""
    return max(float(np.abs(r - c).max()) / max(1.0, float(np.abs(r).max())) for r, c in zip(reference, candidate))


def output_convs(module: nn.Module) -> list[nn.Module]:
    """The convolutions whose output reaches a graph output without passing another convolution: the heads.

    Their channel counts are what the family's decoder reads (scores, boxes, landmarks), so they stay.
    """
    from torch import fx

    modules = dict(module.named_modules())
    pending = _outputs(module)
    seen, heads = set(), []
    while pending:
        node = pending.pop()
        if not isinstance(node, fx.Node) or node in seen:
            continue
        seen.add(node)
        target = modules.get(node.target) if node.op == "call_module" else None
        if _is_conv(target):
            heads.append(target)
        else:
            pending += [arg for arg in _flat(node.args) if isinstance(arg, fx.Node)]
    return list(dict.fromkeys(heads))


def probability_outputs(module: nn.Module) -> list[bool]:
    """For each graph output, whether a Sigmoid makes it (a score or heatmap), looking back through shape ops.

    Walks from each output along first arguments until a convolution; distillation fits these outputs by
    cross-entropy rather than squared error.
    """
    from torch import fx

    modules = dict(module.named_modules())
    flags = []
    for node in _outputs(module):
        found = False
        while node is not None:
            target = modules.get(node.target) if node.op == "call_module" else node.target
            if _is_conv(target):
                break
            found = found or isinstance(target, nn.Sigmoid) or target in (torch.sigmoid, F.sigmoid)
            node = next((arg for arg in _flat(node.args) if isinstance(arg, fx.Node)), None)
        flags.append(found)
    return flags


def _outputs(module: nn.Module) -> list:
    """The fx nodes of the module's graph outputs, in order (onnx2torch makes a GraphModule; others are traced)."""
    from torch import fx

    graph = module.graph if isinstance(module, fx.GraphModule) else fx.symbolic_trace(module).graph
    return [arg for node in graph.nodes if node.op == "output" for arg in _flat(node.args)]


def _flat(args) -> list:
    """The leaves of nested tuples and lists of fx node arguments."""
    if isinstance(args, (list, tuple)):
        return [leaf for arg in args for leaf in _flat(arg)]
    return [args]


def conv_channels(module: nn.Module) -> int:
    """Output channels over all convolutions: what channel pruning removes a share of."""
    return sum(m.out_channels for m in module.modules() if _is_conv(m))


def prune_channels(module: nn.Module, example: np.ndarray, ratio: float, min_channels: int = MIN_CHANNELS,
                   round_to: int = ROUND_TO) -> tuple[nn.Module, dict[str, list[int]]]:
    """A copy of `module` with `ratio` of the output channels of every convolution at least `min_channels`
    wide removed (L1 importance), and for every convolution (by module name) the indices of the channels it kept.

    The same share of each layer (not a global ranking, which can empty a layer), each kept count rounded
    down to a multiple of `round_to`; heads and narrower layers keep their channels. The copy is really
    smaller: fewer channels, not zeros. The kept indices tie each of the copy's channels to the original's.
    """
    import torch_pruning as tp

    pruned = copy.deepcopy(module).eval()
    names = {m: n for n, m in pruned.named_modules()}
    removed: dict[str, set[int]] = {}
    narrow = [m for m in pruned.modules() if _is_conv(m) and m.out_channels < min_channels]
    pruner = tp.pruner.MetaPruner(pruned, torch.from_numpy(example),
                                  importance=tp.importance.GroupMagnitudeImportance(p=1), pruning_ratio=ratio,
                                  ignored_layers=output_convs(pruned) + narrow, round_to=round_to)
    for group in pruner.step(interactive=True):
        for item in group.items:  # an output dimension belongs to one group: indices are the original's
            if pruner.DG.is_out_channel_pruning_fn(item.dep.handler) and _is_conv(item.dep.target.module):
                removed.setdefault(names[item.dep.target.module], set()).update(item.idxs)
        group.prune()
    kept = {name: [i for i in range(m.out_channels) if i not in removed.get(name, set())]
            for name, m in module.named_modules() if _is_conv(m)}
    return pruned, kept


def _is_conv(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.conv._ConvNd)


def export_onnx(module: nn.Module, example: np.ndarray, path: str | os.PathLike, input_name: str,
                output_names: Sequence[str], check: Callable[[Path], float] | None = None) -> float | None:
    """Write `module` as ONNX (opset OPSET, fixed input shape) with the family's names, atomically.

    torch's exporter refuses names that are bare numbers (CenterFace's outputs are '537' ...), so the
    outputs are exported under placeholders and renamed in the graph. `check` reads the finished file
    before it replaces `path`, so a file that fails it (by raising) never takes a good one's place; what it
    returns is returned.
    """
    import warnings

    import onnx

    _show_onnx2torch_the_opset()
    placeholders = [f"output_{i}" for i in range(len(output_names))]
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # onnx2torch's shape arithmetic warns that the trace fixes the input shape
        torch.onnx.export(module.eval(), (torch.from_numpy(example),), str(tmp), input_names=[input_name],
                          output_names=placeholders, opset_version=OPSET, dynamo=False)
        onnx.save(_renamed(onnx.load(str(tmp)), dict(zip(placeholders, output_names))), str(tmp))
        checked = check(tmp) if check is not None else None
    return checked


def _show_onnx2torch_the_opset() -> None:
    """Let onnx2torch's Shape, Squeeze and Reduce modules read the opset of the export under way.

    They read it from `torch.onnx.symbolic_helper.GLOBALS`. torch 2.14's backward-compatible
    `symbolic_helper` re-exports GLOBALS or not depending on what imported torch.onnx first (the test
    suite, run whole, got the latter: AttributeError mid-export), so the one object is bound here.
    """
    from onnx2torch.utils import common

    if not hasattr(common.symbolic_helper, "GLOBALS"):
        from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

        common.symbolic_helper.GLOBALS = GLOBALS


def _renamed(model, names: dict[str, str]):
    """`model` with the tensors named in `names` renamed wherever they appear (node outputs, graph outputs)."""
    for node in model.graph.node:
        node.output[:] = [names.get(n, n) for n in node.output]
        node.input[:] = [names.get(n, n) for n in node.input]
    for output in model.graph.output:
        output.name = names.get(output.name, output.name)
    return model
