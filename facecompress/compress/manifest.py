"""`models/manifest.json`: the one list of variants later stages read, with the file facts each entry records.

Names come from `variant_name` and `file_name` (and, for channel-pruned networks, from the same
PRECISION_SUFFIX and PRECISION_TAG tables in `variants`), so the short key (`pruned_30_int8`) and the file
(`rfdetr-nano-prune30-int8.onnx`) never drift apart.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from importlib import metadata
from pathlib import Path

import onnx
import zstandard

from ..core.artifacts import SCHEMA, read_manifest
from ..core.atomic import write_text
from ..core.checksums import sha256_file

log = logging.getLogger(__name__)

ZSTD_LEVEL = 9  # general-purpose compression, the only place unstructured sparsity saves bytes
PRECISION_SUFFIX = {"fp32": "", "int8": "_int8", "int8-static": "_static_int8", "int8-budget": "_int8_budget",
                    "nncf-int8": "_nncf_int8", "nncf-int8-accuracy": "_nncf_accuracy_int8",
                    "fp16": "_fp16"}
PRECISION_TAG = {"fp32": "", "int8": "-int8", "int8-static": "-int8-static", "int8-budget": "-int8-budget",
                 "nncf-int8": "-nncf-int8", "nncf-int8-accuracy": "-nncf-accuracy-int8",
                 "fp16": "-fp16"}
LIBRARIES = ("torch", "torchvision", "rfdetr", "onnx", "onnxruntime", "numpy", "zstandard")


def percent(fraction: float) -> str:
    """0.3 -> '30', 0.015 -> '1.5': the number in variant names."""
    return f"{round(fraction * 100, 4):g}"


def torch_name(prune: float | None = None, structured: float | None = None) -> str:
    """Short name of a PyTorch model: 'original', 'pruned_30' or 'structured_50'."""
    if prune is not None:
        return f"pruned_{percent(prune)}"
    if structured is not None:
        return f"structured_{percent(structured)}"
    return "original"


def variant_name(prune: float | None = None, structured: float | None = None, precision: str = "fp32") -> str:
    """The manifest key; the original's INT8 and FP16 keep the issue's names 'quantized', 'static_int8', 'fp16'."""
    base = torch_name(prune, structured)
    if base == "original" and precision != "fp32":
        return {"int8": "quantized", "int8-static": "static_int8", "int8-budget": "int8_budget", "fp16": "fp16",
                "nncf-int8": "nncf_int8", "nncf-int8-accuracy": "nncf_accuracy_int8"}[precision]
    return base + PRECISION_SUFFIX[precision]


def file_name(stem: str, prune: float | None = None, structured: float | None = None,
              precision: str = "fp32") -> str:
    """'rfdetr-nano.onnx', 'rfdetr-nano-prune30-int8.onnx', 'rfdetr-nano-struct50-int8-static.onnx', ...

    `stem` names the family and size ('rfdetr-nano'); the rest names the recipe.
    """
    tag = ""
    if prune is not None:
        tag = f"-prune{percent(prune)}"
    elif structured is not None:
        tag = f"-struct{percent(structured)}"
    return f"{stem}{tag}{PRECISION_TAG[precision]}.onnx"


def onnx_files(path: str | os.PathLike) -> list[Path]:
    """The ONNX file plus any external-data files its initializers point to."""
    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    locations = {entry.value for init in model.graph.initializer
                 if init.data_location == onnx.TensorProto.EXTERNAL
                 for entry in init.external_data if entry.key == "location"}
    return [path] + sorted(path.parent / location for location in locations)


def compressed_bytes(paths: list[Path], level: int = ZSTD_LEVEL) -> int:
    """Bytes after zstd: a dense file hides zeros from the disk, but a compressor squeezes them out."""
    compressor = zstandard.ZstdCompressor(level=level)
    return sum(len(compressor.compress(p.read_bytes())) for p in paths)


def file_facts(path: str | os.PathLike, root: str | os.PathLike) -> dict:
    """Files (relative to `root`), bytes on disk, zstd bytes and sha256 of an ONNX variant."""
    files = onnx_files(path)
    return {"file": os.path.relpath(files[0], root), "files": [os.path.relpath(f, root) for f in files],
            "bytes": sum(f.stat().st_size for f in files),
            "compressed_bytes": compressed_bytes(files), "compression": f"zstd level {ZSTD_LEVEL}",
            "sha256": sha256_file(files[0])}


def versions() -> dict:
    """Versions of Python and the libraries that shape the files."""
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def new_manifest() -> dict:
    """An empty manifest: no family, no variant."""
    return {"schema": SCHEMA, "families": {}, "variants": {}}


def current_manifest(path: str | os.PathLike, family: str, header: dict) -> dict:
    """The manifest at `path` with `family`'s header set; its variants kept only if made from the same header.

    Entries made from another checkpoint, seed, resolution or image set would be silently wrong next to new
    ones; other families' entries are left as they are. A manifest of another schema starts over.
    """
    manifest = read_manifest(path)
    if manifest is None or manifest.get("schema") != SCHEMA:
        manifest = new_manifest()
    old = manifest["families"].get(family)
    stale = [key for key, value in header.items() if old is not None and old.get(key) != value]
    if stale:
        log.info("%s: %s was made with different %s; its variants start over", path, family, ", ".join(stale))
        manifest["variants"] = {n: e for n, e in manifest["variants"].items() if e.get("family") != family}
    manifest["families"][family] = header
    return manifest


def write_manifest(path: str | os.PathLike, manifest: dict) -> None:
    """Write the manifest atomically, so a reader never sees half of it."""
    write_text(path, json.dumps(manifest, indent=2) + "\n")


def record_skipped(path: str | os.PathLike, skipped: dict[str, str], built: list[str]) -> None:
    """Keep under "skipped_families" each family a run left out and why, so the reports can say it.

    An earlier run's skip stays listed until a run builds that family.
    """
    manifest = read_manifest(path)
    earlier = {name: why for name, why in manifest.get("skipped_families", {}).items() if name not in built}
    manifest["skipped_families"] = {**earlier, **skipped}
    write_manifest(path, manifest)


def intact(entry: dict, root: str | os.PathLike) -> bool:
    """True when every file of an entry exists and the main one still has the recorded sha256."""
    root = Path(root)
    if not all((root / f).is_file() for f in entry.get("files", [])):
        return False
    return sha256_file(root / entry["file"]) == entry.get("sha256")
