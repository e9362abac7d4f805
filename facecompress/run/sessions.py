"""ONNX Runtime sessions on the CPU, the one way every stage runs a variant's file."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort


def make_session(path: str | os.PathLike, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session with full graph optimisation; `threads=None` (or 0) lets ONNX Runtime use every core."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or 0
    options.log_severity_level = 3  # its constant-folding notices about FP16 kernels are expected, not errors
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session: ort.InferenceSession, inputs: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Every output, in the graph's order, for each preprocessed input."""
    name = session.get_inputs()[0].name
    return [session.run(None, {name: array}) for array in inputs]


class OnnxRunner:
    """One variant's session: a preprocessed batch in, the graph's outputs out."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.session = make_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs for one preprocessed batch."""
        return self.session.run(None, {self.input_name: batch})
