"""NNCF's post-training INT8 as variants of a trained family: the field's reference for "INT8 within a budget".

`nncf.quantize` (its default preset) and `nncf.quantize_with_accuracy_control` run on NNCF's ONNX backend, from
the same pre-processed FP32 file (opset 13, shapes inferred) and the same calibration images as the project's
own static INT8 and its accuracy-aware search. Each writes an ONNX QDQ file, which OpenVINO compiles to its
INT8 kernels and ONNX Runtime runs too, so ours and theirs are compared on the same runtime in both. (NNCF's
OpenVINO backend, which writes an IR file, works as well; an IR file is what ONNX Runtime cannot read.)
Accuracy control measures what the search measures: AP@0.5 of the candidate's detections against the FP32
file's confident ones on the check images, no label read, and reverts the operators that cost most to float
until the drop is within the budget.
"""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx

from ..core.atomic import atomic_path
from ..detectors.family import Family
from ..evaluation.metrics import agreement
from ..run.sessions import make_session
from .search import AGREEMENT_CONFIDENCE, AP_POINT, CheckImages, session_detections

log = logging.getLogger(__name__)

def _calibration(inputs: list[np.ndarray], input_name: str):
    """NNCF's view of the calibration images: one feed per preprocessed input."""
    import nncf

    return nncf.Dataset(inputs, lambda array: {input_name: array})


def _save(model: onnx.ModelProto, dst: str | os.PathLike) -> None:
    """Write NNCF's model atomically."""
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))


def quantize(src: str | os.PathLike, dst: str | os.PathLike, inputs: list[np.ndarray]) -> dict:
    """nncf.quantize of the FP32 file `src` into `dst`, calibrated on every one of `inputs`; its facts."""
    import nncf

    model = onnx.load(str(src))
    name = model.graph.input[0].name
    quantized = nncf.quantize(model, _calibration(inputs, name), subset_size=len(inputs))
    _save(quantized, dst)
    return {"nncf": {"version": metadata.version("nncf"), "quantizers": _quantizers(quantized)}}


class Agreement:
    """NNCF's validation function: label-free agreement with FP32 on the check images, pooled and per image.

    NNCF's ONNX backend ranks the operators to revert by the per-image values (it has no ranking by output
    distance), asking for one image at a time: the session of the model last seen is kept for those calls.
    """

    def __init__(self, fp32: onnx.ModelProto, family: Family, check: CheckImages, threads: int | None):
        self.family, self.check, self.threads = family, check, threads
        self._model, self._session = None, None
        self.reference = self.detections(fp32, check.names)
        self.baseline = float(agreement(self.reference, self.reference, AGREEMENT_CONFIDENCE).ap50)

    def detections(self, model: onnx.ModelProto, names) -> dict:
        """{image: N x 5} of `model` on the named check images, as the benchmark writes them."""
        if model is not self._model:
            self._model, self._session = model, make_session(model.SerializeToString(), self.threads)
        return session_detections(self._session, self.family, self.check, names)

    def __call__(self, model: onnx.ModelProto, names) -> tuple[float, list[float]]:
        """(agreement AP@0.5 over the images, each image's own; an image FP32 finds nothing on agrees fully)."""
        found = self.detections(model, list(names))
        pooled = agreement(found, {name: self.reference[name] for name in found}, AGREEMENT_CONFIDENCE).ap50
        each = [agreement({n: found[n]}, {n: self.reference[n]}, AGREEMENT_CONFIDENCE).ap50 for n in found]
        return float(pooled), [float(v) if np.isfinite(v) else 1.0 for v in each]


def quantize_with_accuracy_control(src: str | os.PathLike, dst: str | os.PathLike, inputs: list[np.ndarray],
                                   family: Family | None, check: CheckImages | None, budget_points: float,
                                   max_iterations: int, threads: int | None = None) -> dict:
    """nncf.quantize_with_accuracy_control of `src` into `dst`: at most `budget_points` of agreement lost, at most
    `max_iterations` operators reverted one after another; its facts."""
    if family is None or check is None:
        raise ValueError("NNCF's accuracy control needs the family and the check images")
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    model = onnx.load(str(src))
    name = model.graph.input[0].name
    validate = Agreement(model, family, check, threads)
    validation = nncf.Dataset(list(check.names), lambda image: {name: check.inputs[check.names.index(image)]})
    quantized = nncf.quantize_with_accuracy_control(
        model, _calibration(inputs, name), validation, validate, max_drop=budget_points * AP_POINT,
        drop_type=nncf.DropType.ABSOLUTE, subset_size=len(inputs),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(max_num_iterations=max_iterations))
    _save(quantized, dst)
    reached = validate(quantized, check.names)[0]
    drop = (validate.baseline - reached) / AP_POINT
    log.info("%s: NNCF accuracy control kept agreement %.4f of %.4f (budget %g points)", Path(dst).name, reached,
             validate.baseline, budget_points)
    return {"nncf": {"version": metadata.version("nncf"), "quantizers": _quantizers(quantized),
                     "agreement_ap50": round(reached, 6), "agreement_baseline": round(validate.baseline, 6),
                     "drop_points": round(drop, 3), "within_budget": bool(drop <= budget_points + 1e-9),
                     "check_images": list(check.names)}}


def _quantizers(model: onnx.ModelProto) -> int:
    """QuantizeLinear nodes in a model: what accuracy control's reverting leaves of NNCF's quantization."""
    return sum(node.op_type == "QuantizeLinear" for node in model.graph.node)
