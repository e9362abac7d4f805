"""INT8 and FP16 files: small, runnable, and float where the recipe says float."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from facecompress.compress import quantization as q
from facecompress.detectors.rfdetr import KEEP_FLOAT
from facecompress.detectors.rfdetr.export import export_onnx
from facecompress.detectors.rfdetr.parity import compare
from facecompress.run.sessions import make_session, run_onnx
from model_fixtures import RESOLUTION, random_inputs, small_baseline, tiny_graph


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(fp32 file, pre-processed file, ONNX Runtime outputs of the fp32 file on two inputs)."""
    folder = tmp_path_factory.mktemp("quant")
    fp32, pre = folder / "fp32.onnx", folder / "pre.onnx"
    export_onnx(small_baseline().net, RESOLUTION, fp32)
    q.preprocess(fp32, pre)
    return fp32, pre, run_onnx(make_session(fp32), random_inputs(2))


def _ops(path) -> list[tuple[str, str]]:
    return [(n.op_type, n.name) for n in onnx.load(str(path)).graph.node]


def test_dynamic_int8_is_at_most_30_percent_and_runs(exported, tmp_path):
    fp32, pre, reference = exported
    out = tmp_path / "int8.onnx"
    q.quantize_dynamic_int8(pre, out)
    assert out.stat().st_size <= 0.30 * fp32.stat().st_size
    outputs = run_onnx(make_session(out), random_inputs(2))
    assert [o[1].shape for o in outputs] == [r[1].shape for r in reference]
    assert compare(reference, outputs)["mean_abs_logits"] < 1.0
    ops = _ops(out)
    assert not any(op in ("ConvInteger", "QLinearConv") for op, _ in ops)  # float Conv, INT8-stored weights
    assert sum(op == "MatMulInteger" for op, _ in ops) > 80


def test_dynamic_keep_float_leaves_the_named_products_float(exported, tmp_path):
    _, pre, _ = exported
    out = tmp_path / "keep.onnx"
    q.quantize_dynamic_int8(pre, out, keep_float=("sampling_offsets",))
    offsets = [op for op, name in _ops(out) if "sampling_offsets" in name]
    assert offsets and "MatMulInteger" not in offsets


def test_static_qdq_keeps_attention_softmax_and_heads_float(exported, tmp_path):
    fp32, pre, reference = exported
    out = tmp_path / "qdq.onnx"
    q.quantize_static_qdq(pre, out, random_inputs(2, seed=3), keep_float=KEEP_FLOAT)
    assert out.stat().st_size <= 0.30 * fp32.stat().st_size
    model = onnx.load(str(out))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type in ("Softmax", "LayerNormalization", "GridSample"):
            assert producers.get(node.input[0]) != "DequantizeLinear", node.name
        if any(k in node.name for k in KEEP_FLOAT) and node.op_type in q.QUANT_OPS:
            assert all(producers.get(i) != "DequantizeLinear" for i in node.input[:2]), node.name
    outputs = run_onnx(make_session(out), random_inputs(2))
    assert compare(reference, outputs)["mean_abs_logits"] < 1.0


def test_fp16_halves_the_file_and_keeps_float32_io(exported, tmp_path):
    fp32, _, reference = exported
    out = tmp_path / "fp16.onnx"
    q.convert_fp16(fp32, out)
    assert out.stat().st_size < 0.55 * fp32.stat().st_size
    outputs = run_onnx(make_session(out), random_inputs(2))
    assert outputs[0][0].dtype == np.float32 and outputs[0][1].dtype == np.float32


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_storage_passes_shrink_tables_and_keep_results_close():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((1, 16, 8, 8), dtype=np.float32)
    model = tiny_graph(table, rng.standard_normal((16, 4, 3, 3), dtype=np.float32))
    x = rng.standard_normal((1, 4, 8, 8), dtype=np.float32)
    stored = q.store_tables_fp16(q.int8_conv_weights(model), min_elements=512)
    kinds = {i.name: i.data_type for i in stored.graph.initializer}
    assert kinds["w__int8"] == onnx.TensorProto.INT8 and kinds["table__fp16"] == onnx.TensorProto.FLOAT16
    assert stored.ByteSize() < 0.5 * model.ByteSize()
    expected = _run(model, x)
    np.testing.assert_allclose(_run(stored, x), expected, atol=0.02 * np.abs(expected).max())  # INT8: ~1 % of range


def test_activation_products_are_the_matmuls_without_a_weight():
    model = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["a", "b"], ["c"], name="scores"),
         onnx.helper.make_node("MatMul", ["c", "w"], ["d"], name="projection")],
        "g", [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [2, 2]) for n in "ab"],
        [onnx.helper.make_tensor_value_info("d", onnx.TensorProto.FLOAT, [2, 2])],
        [numpy_helper.from_array(np.eye(2, dtype=np.float32), "w")]))
    assert q.activation_products(model) == ["scores"]
    assert q.nodes_matching(model, ["proj"]) == ["projection"]
