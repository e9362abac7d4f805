"""The accuracy-aware INT8 search, the regions it may keep float, and the QDQ counts, on tiny ONNX graphs.

The tiny detector's head carries a score channel beside a channel of constant 1e4: quantized as one tensor,
its scale (about 40) rounds every score to 0, so full INT8 finds no face and only a float head recovers them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
import supervision as sv
from onnx import TensorProto, helper, numpy_helper

from facecompress.compress import quantization
from facecompress.compress.qdq_graph import float_regions, qdq_counts
from facecompress.compress.search import CheckImages, Int8Search, SearchSpace

GRID, CELL = 8, 4  # an 8 x 8 score map, each cell a 4-pixel box of a 32 x 32 image


def tiny_detector(outlier: float = 1e4, sigmoids: int = 1) -> onnx.ModelProto:
    """input [1,3,8,8] -> stem Conv -> Sigmoid -> head Conv (channel 0: 1e4 + s, channel 1: the score 4 s - 2)."""
    stem = np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1)
    head = np.array([[1, 0, 0], [4, 0, 0]], np.float32).reshape(2, 3, 1, 1)
    nodes = [helper.make_node("Conv", ["input", "stem_w"], ["stem"], name="stem_conv"),
             *[helper.make_node("Sigmoid", [f"stem{'_sigmoid' * i}"], [f"stem{'_sigmoid' * (i + 1)}"],
                                name=f"sigmoid_{i}") for i in range(sigmoids)],
             helper.make_node("Conv", [f"stem{'_sigmoid' * sigmoids}", "head_w", "head_b"], ["scores"], name="head_conv")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, GRID, GRID])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2, GRID, GRID])],
                              [numpy_helper.from_array(stem, "stem_w"), numpy_helper.from_array(head, "head_w"),
                               numpy_helper.from_array(np.array([outlier, -2], np.float32), "head_b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@dataclass(frozen=True)
class TinyFamily:
    """Decodes the tiny detector's channel 1 as one box per cell (no NMS: the boxes never overlap)."""

    name: str = "tiny"
    input_name: str = "input"

    def decode(self, outputs, image_size, floor):
        scores = np.asarray(outputs[0])[0, 1]
        rows, cols = np.nonzero(scores > floor)
        xyxy = np.column_stack([cols * CELL, rows * CELL, cols * CELL + CELL, rows * CELL + CELL]).astype(float)
        return sv.Detections(xyxy=xyxy.reshape(-1, 4), confidence=scores[rows, cols].astype(np.float32))


def inputs(count: int, seed: int) -> list[np.ndarray]:
    """Uniform pixels in [0, 1] with a rare bright outlier, which MinMax takes whole and Percentile clips."""
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(0, 1, (1, 3, GRID, GRID)).astype(np.float32) for _ in range(count)]
    arrays[0][0, 2, 0, 0] = 50.0
    return arrays


@pytest.fixture()
def tiny_source(tmp_path):
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_detector(), str(path))
    return path


def search(tiny_source, tmp_path, budget: float = 1.0, scopes=("conv",)) -> Int8Search:
    check = inputs(6, seed=1)
    work = tmp_path / "work"
    work.mkdir()
    return Int8Search(tiny_source, TinyFamily(), inputs(8, seed=0),
                      CheckImages(tuple(f"check_{i}" for i in range(6)), tuple(check), ((32, 32),) * 6),
                      budget, SearchSpace(methods=("minmax",), scopes=scopes, rounds=2),
                      {"per_channel": True, "reduce_range": True}, work)


def quantized(model: onnx.ModelProto, node_name: str) -> bool:
    """Whether the node reads its activation through a DequantizeLinear (ONNX Runtime then runs it in INT8)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    node = next(n for n in model.graph.node if n.name == node_name)
    return producers.get(node.input[0]) is not None and producers[node.input[0]].op_type == "DequantizeLinear"


def test_the_sensitive_head_is_kept_float_and_the_rest_stays_int8(tiny_source, tmp_path):
    run = search(tiny_source, tmp_path)
    chosen = run.run()
    full = run.trials[0]
    assert full.stage == "full" and full.drop_points > 50  # every score rounded away
    assert [t.stage for t in run.trials] == ["full", "bound", "sensitivity", "sensitivity", "greedy"]
    greedy = run.trials[-1]  # the head, most harmful alone, is the one region kept float
    assert greedy.within_budget and greedy.float_nodes == ("head_conv",)
    model = onnx.load(greedy.file)
    assert not quantized(model, "head_conv") and quantized(model, "stem_conv")
    assert chosen.within_budget and "head_conv" in chosen.float_nodes  # the faster of greedy and bound


def test_an_insensitive_graph_stays_int8_throughout(tmp_path):
    source = tmp_path / "calm.onnx"
    onnx.save(tiny_detector(outlier=0.0), str(source))
    chosen = search(source, tmp_path).run()
    assert chosen.stage == "full" and chosen.float_nodes == () and chosen.within_budget


def test_an_unreachable_budget_gives_the_most_agreeing_trial_flagged(tiny_source, tmp_path):
    run = search(tiny_source, tmp_path, budget=-1.0)
    chosen = run.run()
    assert [t.stage for t in run.trials] == ["full", "bound"]  # every region float is outside it too: stop
    assert not chosen.within_budget
    assert chosen.agreement_ap50 == max(t.agreement_ap50 for t in run.trials)


def test_regions_are_the_stem_the_heads_and_each_upsampling_step():
    model = tiny_detector()
    regions = {r.name: r.nodes for r in float_regions(model)}
    assert regions == {"stem": ("stem_conv",), "head scores": ("head_conv",)}


def test_qdq_counts_see_islands_left_float(tmp_path):
    source, out = tmp_path / "two.onnx", tmp_path / "q.onnx"
    onnx.save(tiny_detector(sigmoids=2), str(source))
    quantization.quantize_static_qdq(source, out, inputs(4, 0), op_types=("Conv",), fp16_tables=False)
    conv_only = qdq_counts(onnx.load(str(out)))
    quantization.quantize_static_qdq(source, out, inputs(4, 0), op_types=None, fp16_tables=False)
    everything = qdq_counts(onnx.load(str(out)))
    assert conv_only["float_islands"] == 1 and conv_only["float_nodes"] == 2  # two Sigmoids between INT8 convs
    assert everything["float_islands"] == 0 and everything["qdq_pairs"] == conv_only["qdq_pairs"] + 1


def test_each_calibration_method_is_the_one_run_and_its_ranges_are_reused(tiny_source, tmp_path):
    for method, (member, _) in quantization.CALIBRATIONS.items():
        cache, out = tmp_path / f"{method}.json", tmp_path / f"{method}.onnx"
        quantization.quantize_static_qdq(tiny_source, out, inputs(8, 0), calibration=method, ranges_cache=cache)
        assert json.loads(cache.read_text())["calibration_method"]["value"] == str(member())
        stamp = cache.stat().st_mtime_ns
        quantization.quantize_static_qdq(tiny_source, out, inputs(8, 5), calibration=method, ranges_cache=cache)
        assert cache.stat().st_mtime_ns == stamp  # other images, same cached ranges: calibration ran once
    minmax, percentile = (_input_scale(tmp_path / f"{m}.onnx") for m in ("minmax", "percentile"))
    assert percentile < minmax  # the rare bright pixel: MinMax stretches the scale to it, Percentile clips it


def _input_scale(path) -> float:
    return float(next(numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer
                      if i.name == "input_scale"))


def test_both_scopes_search_with_their_own_calibrated_ranges(tiny_source, tmp_path):
    """The every-operator scope needs ranges the conv-only calibration never takes: each scope calibrates its own."""
    run = search(tiny_source, tmp_path, scopes=("conv", "all"))
    chosen = run.run()
    assert {t.scope for t in run.trials} == {"conv", "all"} and chosen.within_budget
    assert sorted(p.name for p in (tmp_path / "work").glob("ranges-*.json")) == ["ranges-minmax-all.json",
                                                                                  "ranges-minmax-conv.json"]
