"""A small untrained RF-DETR Nano and tiny ONNX graphs shared by the model tests.

The detector is built once per test process (about 2 s): every function under test copies it, none mutates it.
128 px is the smallest side that keeps every stage quick; it must be a multiple of 32 (patch 16 x 2 windows).
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from facecompress.detectors.rfdetr.loading import Baseline, load_baseline

RESOLUTION = 128


@functools.cache
def small_baseline() -> Baseline:
    """Untrained RF-DETR Nano at 128 px, seed 0."""
    return load_baseline(resolution=RESOLUTION, seed=0)


def random_inputs(count: int, seed: int = 0) -> list[np.ndarray]:
    """Normalised-looking [1, 3, R, R] inputs."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, 3, RESOLUTION, RESOLUTION), dtype=np.float32) for _ in range(count)]


def tiny_graph(table: np.ndarray, conv_weight: np.ndarray) -> onnx.ModelProto:
    """y = Conv(x, conv_weight) + table: one float table and one convolution, for the storage passes."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, conv_weight.shape[1], 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Add", ["c", "table"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "tiny", [x], [y], [numpy_helper.from_array(conv_weight, "w"),
                                                       numpy_helper.from_array(table, "table")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
