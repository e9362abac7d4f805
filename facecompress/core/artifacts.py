"""The folder contract between stages: what each writes under models/ and results/, and the special row names.

Every stage reads the previous stage's artifacts by these names only, so that a stage re-run alone finds
what the one before it wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import InputError
from .rows import parse_row, variant_of

MANIFEST = "manifest.json"  # models/: the one list of variants later stages read
SCHEMA = 2  # 2: several detector families, each with its header under "families"
PREDICTIONS = "predictions"  # results/predictions/<model>/<event>/<stem>.txt, WIDER submission format
CACHE_INFO = "MODEL.json"  # beside a model's predictions: what made them
IMAGES_CSV, ACCURACY_CSV, TIMING_CSV, RUN_JSON = "benchmark_results.csv", "accuracy.csv", "timing_results.csv", "run.json"
SUMMARY = "summary.md"

FLAGSHIP = "rfdetr"  # its variants keep the bare names; another family's carry its name first ("scrfd_quantized")
REFERENCE = "original"  # the FP32 ONNX file every ratio and every agreement of a family is taken against
TORCH_ROW = "original_pytorch"  # benchmark.py's PyTorch reference row of the flagship (no file of its own)

LATENCY_PHASE = "inference_fixed_input"  # fixed preprocessed input after warm-up: the model alone
LOOP_PHASE = "image_loop"  # the whole loop's rate, decoding and writing included


def model_name(family: str, name: str) -> str:
    """A family's variant name as every table shows it: 'quantized' for the flagship, 'scrfd_quantized' otherwise."""
    return name if family == FLAGSHIP else f"{family}_{name}"


def reference_of(family: str) -> str:
    """The name of a family's FP32 original."""
    return model_name(family, REFERENCE)


def family_of(manifest: dict, name: str) -> str:
    """The family a variant, a runtime's row of one, or the flagship's PyTorch reference row belongs to."""
    return FLAGSHIP if name == TORCH_ROW else manifest["variants"][variant_of(name)]["family"]


def row_columns(name: str) -> dict:
    """The runtime and float precision a result row's name says (the PyTorch reference row runs in torch)."""
    row = parse_row(name)
    return {"runtime": "torch" if name == TORCH_ROW else row.runtime, "inference_precision": row.precision}


def header_of(manifest: dict, name: str) -> dict:
    """The run-wide facts of the family that made variant `name`."""
    return manifest["families"][family_of(manifest, name)]


def predictions_dir(results: str | os.PathLike, model: str) -> Path:
    """Where one model's cached prediction files live."""
    return Path(results) / PREDICTIONS / model


def load_manifest(models: str | os.PathLike) -> dict:
    """The compression stage's manifest for a later stage, or a one-line error saying what to run.

    A manifest of another schema would fail later on a missing key: it is refused here instead.
    """
    path = Path(models) / MANIFEST
    manifest = read_manifest(path)
    if manifest is None or not manifest["variants"]:
        raise InputError(f"{path}: no variants yet; run `python inference.py` first")
    if manifest.get("schema") != SCHEMA:
        raise InputError(f"{path}: written by another version of facecompress (schema {manifest.get('schema')}, "
                         f"this one reads {SCHEMA}); run `python inference.py --force`")
    return manifest


def read_manifest(path: str | os.PathLike) -> dict | None:
    """The manifest at `path`, or None when there is none yet; without importing onnx, so reports stay light."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); delete it or pass --force") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("variants"), dict):
        raise InputError(f"{path}: not a facecompress manifest (no 'variants' table)")
    return manifest
