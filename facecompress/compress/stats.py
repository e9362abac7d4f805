"""Parameter, non-zero and FLOP counts read off an ONNX graph, for families that ship without a framework model.

FLOPs count two per multiply-accumulate of the convolutions and matrix products (as torch's FlopCounterMode,
which RF-DETR's counts come from), from the shapes ONNX shape inference gives a fixed-size input; the
elementwise rest is left out, as it is for RF-DETR.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import numpy_helper

FLOPS_METHOD = ("2 x multiply-accumulates of every Conv, ConvTranspose, Gemm and MatMul, shapes from ONNX shape "
                "inference at the fixed input size; parameters and non-zeros over the float initializers")


def parameter_counts(model: onnx.ModelProto) -> tuple[int, int]:
    """(parameters, non-zeros) over the float initializers."""
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    arrays = [numpy_helper.to_array(i) for i in model.graph.initializer if i.data_type in floats]
    return sum(a.size for a in arrays), sum(int(np.count_nonzero(a)) for a in arrays)


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Every tensor's static shape after shape inference (initializers included)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    values = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
    shapes.update({i.name: list(i.dims) for i in model.graph.initializer})
    return shapes


def _numel(shape: list[int]) -> int:
    """Elements of a static shape; 0 when any dimension is unknown."""
    return int(np.prod(shape, dtype=np.int64)) if shape and all(d > 0 for d in shape) else 0


def _node_flops(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> int:
    """2 x MACs of one convolution or matrix product (0 for any other node, or an unknown shape)."""
    if node.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul"):  # a Constant node has no input at all
        return 0
    first, weight = shapes.get(node.input[0], []), shapes.get(node.input[1], []) if len(node.input) > 1 else []
    out = shapes.get(node.output[0], [])
    if node.op_type == "Conv":  # each output element sums over one weight slice
        return 2 * _numel(out) * _numel(weight[1:])
    if node.op_type == "ConvTranspose":  # each input element spreads over one weight slice
        return 2 * _numel(first) * _numel(weight[1:])
    return 2 * _numel(out) * (first[-1] if first else 0)  # Gemm, MatMul: each output sums over the inner dimension


def count_flops(model: onnx.ModelProto) -> int:
    """FLOPs of one forward pass at the graph's fixed input size."""
    shapes = _shapes(model)
    return sum(_node_flops(node, shapes) for node in model.graph.node)


def onnx_stats(path: str | os.PathLike) -> dict:
    """The counts a manifest entry records for an ONNX-only model."""
    model = onnx.load(str(path))
    total, nonzero = parameter_counts(model)
    return {"parameters": total, "nonzero": nonzero, "sparsity": round(1 - nonzero / total, 6) if total else 0.0,
            "flops": count_flops(model)}
