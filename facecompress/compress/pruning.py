"""Global L1 magnitude pruning of an ONNX file's convolution and matrix weights, for families with no framework model.

SCRFD and CenterFace ship as ONNX only, so their pruning works on the graph's initializers: every weight
tensor a Conv, ConvTranspose, Gemm or MatMul reads as its weight input is a candidate, the smallest
`amount` of all their elements together (by absolute value) become exactly zero, and the rest of the
graph (biases, BatchNorm, everything else) is left as it is. Ties at the threshold are broken by position
so that the measured sparsity equals the request to the element. As with RF-DETR's unstructured pruning,
the zeros only show in compressed bytes: the file stays dense.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import numpy_helper

from ..core.atomic import atomic_path

WEIGHT_INPUT = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}  # op type -> index of its weight input


def weight_names(model: onnx.ModelProto) -> list[str]:
    """Float initializers used as a weight by a convolution or matrix product, in graph order, each once."""
    floats = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    names = [node.input[WEIGHT_INPUT[node.op_type]] for node in model.graph.node
             if node.op_type in WEIGHT_INPUT and len(node.input) > WEIGHT_INPUT[node.op_type]]
    return list(dict.fromkeys(n for n in names if n in floats))


def sparsity(model: onnx.ModelProto) -> tuple[int, int]:
    """(zeros, elements) over the prunable weights: what a pruned file's manifest entry reports."""
    tables = {i.name: i for i in model.graph.initializer}
    arrays = [numpy_helper.to_array(tables[name]) for name in weight_names(model)]
    return sum(int(np.count_nonzero(a == 0)) for a in arrays), sum(a.size for a in arrays)


def magnitude_mask(arrays: list[np.ndarray], amount: float) -> list[np.ndarray]:
    """Keep-masks zeroing exactly round(amount x elements) of the smallest |w| across all arrays together."""
    flat = np.concatenate([np.abs(a).reshape(-1) for a in arrays])
    drop = np.argsort(flat, kind="stable")[:round(amount * flat.size)]
    keep = np.ones(flat.size, bool)
    keep[drop] = False
    bounds = np.cumsum([0] + [a.size for a in arrays])
    return [keep[start:end].reshape(a.shape) for a, start, end in zip(arrays, bounds[:-1], bounds[1:])]


def prune_onnx(src: str | os.PathLike, dst: str | os.PathLike, amount: float) -> None:
    """Write `src` with the smallest `amount` of its convolution and matrix weights set to zero, atomically."""
    if not 0 <= amount < 1:
        raise ValueError(f"pruning amount {amount} is not in [0, 1)")
    model = onnx.load(str(src))
    tables = {i.name: i for i in model.graph.initializer}
    names = weight_names(model)
    arrays = [numpy_helper.to_array(tables[name]) for name in names]
    for name, array, mask in zip(names, arrays, magnitude_mask(arrays, amount)):
        tables[name].CopyFrom(numpy_helper.from_array(np.where(mask, array, 0).astype(array.dtype), name))
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
