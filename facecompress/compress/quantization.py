"""ONNX Runtime quantization (dynamic INT8, static QDQ INT8) and FP16 conversion of an exported detector.

Every function reads one ONNX file and writes another atomically. Only matrix products and convolutions
(`MatMul`, `Gemm`, `Conv`) are ever quantized, so LayerNorm, Softmax, GELU, residual adds and GridSample stay
float by construction; `keep_float` name patterns keep chosen products float too (by default, for static QDQ,
the deformable attention's sampling offsets and weights and the box and class heads, which decide where and
what the decoder predicts). Choices measured on this AVX2 CPU without VNNI (untrained Nano, 384 px):

* dynamic INT8 quantizes MatMul/Gemm only: ONNX Runtime's ConvInteger ran ~4x slower than its float Conv, so
  convolutions compute in float from INT8-stored weights (`int8_conv_weights`), keeping the bytes small;
* U8S8 with 7-bit weights (`reduce_range`), as ONNX Runtime advises without VNNI: same speed as U8U8 here;
* static QDQ per channel, attention products kept float (`activation_products`): per-tensor was no faster;
* large float tables the quantizer leaves behind (position table, folded query features, kept-float weights)
  are stored as FP16 behind a Cast that ONNX Runtime folds at load time (`store_tables_fp16`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import onnx
import onnx.version_converter
from onnx import helper, numpy_helper

from ..core.atomic import atomic_path

QUANT_OPS = ("MatMul", "Gemm", "Conv")
# Every operator ONNX Runtime's static quantizer knows, for a search's "all" scope: fewer float islands, so fewer
# Dequantize / Quantize pairs between INT8 neighbours.
ALL_OPS = ("Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Conv", "ConvTranspose", "Flatten", "Gemm",
           "GlobalAveragePool", "LeakyRelu", "MatMul", "MaxPool", "Mul", "Pad", "Relu", "Reshape", "Resize",
           "Sigmoid", "Split", "Squeeze", "Transpose", "Unsqueeze")
DYNAMIC_OPS = ("MatMul", "Gemm")  # dynamic ConvInteger is slower than float Conv here: see int8_conv_weights
MIN_OPSET = 13  # per-channel DequantizeLinear
TABLE_MIN_ELEMENTS = 16384  # smaller float initializers (biases, norms) are not worth a Cast node each


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ONNX Runtime's quantizer logs a line per tensor on the root logger, and its calibration sessions a line per
    unused initializer (CenterFace has 60): keep only their errors and warnings that matter."""
    import onnxruntime

    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    onnxruntime.set_default_logger_severity(3)
    try:
        yield
    finally:
        root.setLevel(level)
        onnxruntime.set_default_logger_severity(2)


def preprocess(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """ONNX Runtime's recommended pre-quantization pass (shape inference, MatMul+Add to Gemm), at opset 13 or later.

    Per-channel DequantizeLinear (its `axis`) needs opset 13: older files, such as SCRFD's opset 11, are
    converted first with ONNX's version converter, in the scratch copy only.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with atomic_path(dst) as tmp, _quiet_root_logger():
        quant_pre_process(str(src), str(tmp), skip_symbolic_shape=False)
        model = onnx.load(str(tmp))
        if opset(model) < MIN_OPSET:
            model = onnx.version_converter.convert_version(model, MIN_OPSET)
        onnx.save(named_nodes(model), str(tmp))


def named_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with every unnamed node called '<op>_<index>': the quantizer excludes nodes by name (CenterFace's
    published file names none)."""
    taken = {n.name for n in model.graph.node if n.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)
    return model


def opset(model: onnx.ModelProto) -> int:
    """The default-domain opset a model is written in."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def nodes_matching(model: onnx.ModelProto, patterns: Iterable[str], op_types: Iterable[str] = QUANT_OPS) -> list[str]:
    """Names of the quantizable nodes whose name contains any of `patterns` (ONNX names follow module paths)."""
    patterns, op_types = tuple(patterns), set(op_types)
    return [n.name for n in model.graph.node if n.op_type in op_types and any(p in n.name for p in patterns)]


def activation_products(model: onnx.ModelProto) -> list[str]:
    """MatMul nodes whose second operand is computed, not a weight (attention scores and mixing).

    ONNX Runtime's static quantizer ignores `MatMulConstBOnly` in QDQ mode and would quantize them, dragging
    the Softmax between them into INT8 too; listing them as excluded keeps attention float.
    """
    weights = {init.name for init in model.graph.initializer}
    weights |= {out for n in model.graph.node if n.op_type == "Constant" for out in n.output}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] not in weights]


def store_tables_fp16(model: onnx.ModelProto, min_elements: int = TABLE_MIN_ELEMENTS) -> onnx.ModelProto:
    """A copy of `model` whose large float32 initializers are stored as FP16 behind a Cast back to float32.

    Halves what the quantizer leaves in float; the Cast has a constant input, so ONNX Runtime folds it at
    load time and inference computes in float32 with weights rounded to FP16 (relative error about 5e-4).
    """
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    kept, casts = [], []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            kept.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{init.name}__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                      name=f"{init.name}__to_fp32"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return result


def int8_conv_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose float Conv weights are stored as INT8 (symmetric, per output channel) and
    dequantized by a DequantizeLinear in front of the Conv, which then computes in float.

    ONNX Runtime's dynamic ConvInteger is about four times slower than its float Conv on this AVX2 CPU, so
    dynamic INT8 quantizes the matrix products only; this keeps the convolutions' bytes at INT8 all the same.
    """
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    inits = {init.name: init for init in graph.initializer}
    conv_weights = {n.input[1] for n in graph.node if n.op_type == "Conv" and n.input[1] in inits
                    and inits[n.input[1]].data_type == onnx.TensorProto.FLOAT}
    dequantize = []
    for name in sorted(conv_weights):
        weight = numpy_helper.to_array(inits[name])
        scale = np.maximum(np.abs(weight).reshape(len(weight), -1).max(axis=1), 1e-12) / 127.0
        quantized = np.clip(np.round(weight / scale.reshape(-1, *[1] * (weight.ndim - 1))), -127, 127)
        graph.initializer.remove(inits[name])
        graph.initializer.extend([numpy_helper.from_array(quantized.astype(np.int8), f"{name}__int8"),
                                  numpy_helper.from_array(scale.astype(np.float32), f"{name}__scale")])
        dequantize.append(helper.make_node("DequantizeLinear", [f"{name}__int8", f"{name}__scale"], [name],
                                           axis=0, name=f"{name}__dequantize"))
    nodes = dequantize + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return result


def _finish(tmp: Path, conv_weights_int8: bool, fp16_tables: bool) -> None:
    """Post-passes on a freshly quantized file: INT8 storage of float Conv weights, FP16 of leftover tables."""
    model = onnx.load(str(tmp))
    if conv_weights_int8:
        model = int8_conv_weights(model)
    if fp16_tables:
        model = store_tables_fp16(model)
    onnx.save(model, str(tmp))


def quantize_dynamic_int8(src: str | os.PathLike, dst: str | os.PathLike, *, weight_type: str = "s8",
                          reduce_range: bool = True, keep_float: Iterable[str] = (),
                          op_types: Iterable[str] = DYNAMIC_OPS, conv_weights_int8: bool = True,
                          fp16_tables: bool = True) -> None:
    """Dynamic INT8: weights quantized offline, activations per inference (no calibration data needed).

    `src` should already be `preprocess`ed. `weight_type` "s8" gives U8S8 kernels, "u8" U8U8. `reduce_range`
    (7-bit weights) avoids the 16-bit saturation of AVX2's U8S8 multiply-add on CPUs without VNNI, as ONNX
    Runtime advises; it cost no speed here and agreed slightly better with the float model.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    excluded = nodes_matching(model, keep_float, op_types)
    # dynamic mode first rewrites each Gemm as a MatMul named "<gemm>_MatMul" (plus an Add), then quantizes that
    excluded += [f"{name}_MatMul" for name in excluded]
    with atomic_path(dst) as tmp, _quiet_root_logger():
        quantize_dynamic(model, str(tmp), op_types_to_quantize=list(op_types), reduce_range=reduce_range,
                         weight_type=QuantType.QInt8 if weight_type == "s8" else QuantType.QUInt8,
                         nodes_to_exclude=excluded, extra_options={"MatMulConstBOnly": True})
        _finish(tmp, conv_weights_int8 and "Conv" not in op_types, fp16_tables)


def _method(name: str):
    """A lazily imported CalibrationMethod member (onnxruntime is imported only when quantizing)."""
    def member():
        from onnxruntime.quantization import CalibrationMethod

        return getattr(CalibrationMethod, name)
    return member


# name -> (ONNX Runtime's CalibrationMethod, its options). Percentile at 99.999 clips the rare activation
# outliers MinMax would stretch every scale to; Entropy picks the range that keeps a histogram's information.
# Both keep every activation of every image in memory until their histograms are built (17 GB for 16 CenterFace
# images at 1024 px, killed here): fed one image at a time (`CalibStridedMinMax`, which strides any method),
# their histograms grow image by image instead.
CALIBRATIONS = {"minmax": (_method("MinMax"), {}),
                "entropy": (_method("Entropy"), {"CalibStridedMinMax": 1}),
                "percentile": (_method("Percentile"), {"CalibPercentile": 99.999, "CalibStridedMinMax": 1})}


class _Reader:
    """The calibration images as ONNX Runtime's CalibrationDataReader wants them: one feed dict at a time, over
    all of them or, for strided calibration, over the range last set."""

    def __init__(self, input_name: str, inputs: list[np.ndarray]):
        self._name, self._all = input_name, inputs
        self._inputs = iter(inputs)

    def __len__(self) -> int:
        return len(self._all)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._inputs = iter(self._all[start_index:end_index])

    def get_next(self) -> dict | None:
        array = next(self._inputs, None)
        return None if array is None else {self._name: array}


def quantize_static_qdq(src: str | os.PathLike, dst: str | os.PathLike, inputs: list[np.ndarray], *,
                        per_channel: bool = True, activation_type: str = "u8", weight_type: str = "s8",
                        reduce_range: bool = True, keep_float: Iterable[str] = (),
                        op_types: Iterable[str] | None = QUANT_OPS, fp16_tables: bool = True,
                        calibration: str = "minmax", float_nodes: Iterable[str] = (),
                        ranges_cache: str | os.PathLike | None = None) -> None:
    """Static INT8 in QDQ format, activation ranges calibrated on `inputs` (`calibration`: one of CALIBRATIONS);
    `src` pre-processed.

    Only products with a constant weight are quantized: the attention products between two activations, and
    so the Softmax between them, stay float (see `activation_products`). `op_types=None` quantizes every
    operator ONNX Runtime can; `float_nodes` are node names kept float besides the `keep_float` patterns.
    `ranges_cache` keeps the calibrated ranges in a file, so that a search building many files from one
    calibration runs it once (the ranges depend on the images and the method only).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    types = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}
    model = onnx.load(str(src))
    scope = ALL_OPS if op_types is None else tuple(op_types)
    method, options = CALIBRATIONS[calibration]
    excluded = nodes_matching(model, keep_float, scope) + activation_products(model) + list(float_nodes)
    with atomic_path(dst) as tmp, _quiet_root_logger():
        quantize_static(str(src), str(tmp), _Reader(model.graph.input[0].name, inputs), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(scope), per_channel=per_channel, reduce_range=reduce_range,
                        activation_type=types[activation_type], weight_type=types[weight_type],
                        nodes_to_exclude=excluded, calibrate_method=method(),
                        extra_options={"MatMulConstBOnly": True, **options},
                        calibration_providers=["CPUExecutionProvider"],
                        calibration_cache_path=None if ranges_cache is None else str(ranges_cache))
        _finish(tmp, False, fp16_tables)


def convert_fp16(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """FP16 weights and compute, float32 input and outputs (so it is a drop-in file); ops without FP16 kernels
    on the list of ONNX Runtime's converter stay float32."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True,
                                     op_block_list=list(DEFAULT_OP_BLOCK_LIST))
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
