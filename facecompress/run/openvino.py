"""OpenVINO on the CPU: a variant's file compiled at a precision that is set explicitly and read back.

On a CPU with BF16 (AVX512_BF16, AMX) OpenVINO compiles an FP32 file to BF16 unless told otherwise, and where
a CPU lacks BF16 it compiles a BF16 request to FP32 without a word. So every runner sets
`INFERENCE_PRECISION_HINT` from its row's label and refuses to run when the compiled model reports another.
`openvino` is imported when a runner is made, never by a stage that does not ask for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.errors import InputError

HINTS = {"fp32": "f32", "bf16": "bf16"}  # a row's precision label -> OpenVINO's element type name
DEVICE = "CPU"


def checked_precision(label: str, compiled: str) -> str:
    """The row's label, once the compiled model's precision (OpenVINO's type name) is shown to be it."""
    if HINTS.get(label) != compiled:
        raise InputError(f"OpenVINO compiled a row labelled {label} to {compiled} (INFERENCE_PRECISION_HINT read "
                         "back from the compiled model); its timings and detections would be mislabelled")
    return label


def compile_config(precision: str, threads: int | None) -> dict:
    """Latency hint, the precision set explicitly (never OpenVINO's default), ONNX Runtime's thread count."""
    if precision not in HINTS:
        raise InputError(f"OpenVINO precision {precision}: not one of {', '.join(HINTS)}")
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": HINTS[precision]}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


class OpenVinoRunner:
    """One row's compiled model: a preprocessed batch in, the outputs out in the file's output order."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, precision: str = "fp32",
                 label: str | None = None):
        """`path` is an ONNX file or an OpenVINO IR `.xml`; `label` is what a load error names (default: the file)."""
        import openvino as ov

        label = label or str(path)
        config = compile_config(precision, threads)
        try:
            core = ov.Core()
            self.compiled = core.compile_model(core.read_model(str(Path(path))), DEVICE, config)
        except RuntimeError as err:  # OpenVINO raises RuntimeError for files it cannot read or compile
            detail = (str(err).strip().splitlines() or ["no detail"])[0]
            raise InputError(f"{label}: OpenVINO cannot compile it for {DEVICE} ({detail})") from None
        compiled = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        try:
            self.precision = checked_precision(precision, compiled)
        except InputError as err:
            raise InputError(f"{label}: {err}") from None
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        self.outputs = list(self.compiled.outputs)  # the model's results in the file's output order
        self.request = self.compiled.create_infer_request()

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The outputs for one preprocessed batch, copied (the request reuses its buffers on the next call)."""
        results = self.request.infer({0: batch})
        return [np.array(results[output]) for output in self.outputs]
