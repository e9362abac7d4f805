"""ONNX Runtime sessions on the CPU, the one way every stage runs a variant's file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..core.checksums import sha256_file
from ..core.errors import InputError


def make_session(model: str | os.PathLike | bytes, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session with full graph optimisation; `threads=None` (or 0) lets ONNX Runtime use every core.

    `model` is the ONNX file or its bytes (a worker on another machine gets the bytes, not the path).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or 0
    options.log_severity_level = 3  # its constant-folding notices about FP16 kernels are expected, not errors
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_onnx(session: ort.InferenceSession, inputs: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Every output, in the graph's order, for each preprocessed input."""
    name = session.get_inputs()[0].name
    return [session.run(None, {name: array}) for array in inputs]


def check_file(entry: dict, root: str | os.PathLike) -> Path:
    """A manifest entry's ONNX file, refused with one line when it is missing or no longer the file recorded."""
    path = Path(root) / entry["file"]
    absent = [f for f in entry.get("files", [entry["file"]]) if not (Path(root) / f).is_file()]
    if absent:
        raise InputError(f"{Path(root) / absent[0]}: missing; run `python inference.py --only {entry['name']}`")
    if sha256_file(path) != entry["sha256"]:
        raise InputError(f"{path}: sha256 differs from the manifest (corrupt, truncated or replaced); "
                         f"run `python inference.py --only {entry['name']}`")
    return path


class OnnxRunner:
    """One variant's session: a preprocessed batch in, the graph's outputs out."""

    def __init__(self, model: str | os.PathLike | bytes, threads: int | None = None, label: str | None = None):
        """`model` is the file or its bytes; `label` is what a load error names (default: the file)."""
        label = label or str(model)
        try:
            self.session = make_session(model, threads)
        except Exception as err:  # ONNX Runtime raises its own types for unreadable or unsupported files
            raise InputError(f"{label}: ONNX Runtime cannot load it ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else 'no detail'})") from None
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs for one preprocessed batch."""
        return self.session.run(None, {self.input_name: batch})
