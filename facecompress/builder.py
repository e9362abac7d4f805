"""One run of the variant set: the images it uses, the manifest header, and the Builder that turns a recipe
into a file in `models/` plus its manifest entry, caching what several variants share.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from torch import nn

from . import pruning, quantization
from .baseline import Baseline
from .dataset import Dataset, iter_images
from .errors import InputError
from .manifest import file_facts, versions
from .model_stats import FLOPS_METHOD, count_flops, count_parameters
from .onnx_export import INPUT_NAME, export_onnx, export_ready
from .parity import METHOD as PARITY_METHOD
from .parity import compare, torch_outputs
from .preprocessing import preprocess
from .runtime import make_session, run_onnx
from .variants import EXPORTS, Settings, Spec

SPARSITY_NOTE = ("unstructured zeros are stored densely: file size and ONNX Runtime speed are unchanged; "
                 "only compressed_bytes (zstd) shows the saving")
FP16_NOTE = "half the bytes, but on a CPU ONNX Runtime runs FP16 slower than FP32 (Cast nodes, few FP16 kernels)"


def manifest_header(baseline: Baseline, dataset: str, calibration: list[str], parity: list[str]) -> dict:
    """Run-wide facts of a manifest; when any differs from the file's, its entries are stale and dropped."""
    side = baseline.resolution
    return {"provenance": baseline.provenance, "source": baseline.source, "model_variant": baseline.variant,
            "resolution": side, "num_classes": baseline.num_classes,
            "input": {"name": INPUT_NAME, "shape": [1, 3, side, side], "dtype": "float32",
                      "preprocess": "RGB / 255, bilinear resize without antialias to R x R, ImageNet mean/std "
                                    "(as rfdetr predict)"},
            "outputs": {"dets": "[1, Q, 4] normalised cx, cy, w, h", "labels": "[1, Q, C+1] raw logits"},
            "unstructured_targets": pruning.target_names(baseline.net), "dataset": dataset,
            "calibration_images": calibration, "parity_images": parity, "parity_method": PARITY_METHOD,
            "flops_method": FLOPS_METHOD, "counts": "parameters, non-zeros and FLOPs are those of the PyTorch model "
                                                    "a file came from (torch_model)"}


def split_inputs(inputs: list, calibration: int, parity: int) -> tuple[list, list]:
    """The last `parity` inputs check parity; up to `calibration` of the others calibrate (all, if none is left)."""
    if not inputs:
        raise InputError("no readable image to calibrate on or to check parity with")
    checking = inputs[-parity:]
    calibrating = inputs[:-parity][:calibration] or inputs[:calibration]
    return calibrating, checking


def load_inputs(dataset: Dataset, resolution: int, calibration: int, parity: int,
                skip_unreadable: bool = False) -> tuple[list, list]:
    """(name, input) pairs for calibration and for parity, decoding only the images those use."""
    calibrating, checking = split_inputs(list(dataset.present), calibration, parity)
    wanted = {a.name: a for a in calibrating + checking}
    arrays = {a.name: preprocess(image, resolution)
              for a, image in iter_images(replace(dataset, present=tuple(wanted.values())), skip_unreadable)}
    pairs = tuple([(a.name, arrays[a.name]) for a in group if a.name in arrays] for group in (calibrating, checking))
    if not all(pairs):
        raise InputError("no readable image left to calibrate on or to check parity with")
    return pairs


class Builder:
    """One run's shared state: baseline, images, output folder, and caches of what several variants share."""

    def __init__(self, baseline: Baseline, out: Path, specs: list[Spec], parity_inputs: list[np.ndarray],
                 calibration_inputs: list[np.ndarray], settings: Settings, command: str):
        self.baseline, self.out, self.settings, self.command = baseline, Path(out), settings, command
        self.specs = {s.name: s for s in specs}
        self.parity_inputs, self.calibration_inputs = parity_inputs, calibration_inputs
        self._torch: dict[str, nn.Module] = {"original": baseline.net}
        self._stats: dict[str, dict] = {}
        self._references: dict[str, list] = {}
        self._preprocessed: dict[str, Path] = {}
        self._importance: dict | None = None
        self._scratch = tempfile.TemporaryDirectory(prefix="facecompress-")

    def close(self) -> None:
        """Remove the scratch folder of pre-processed files."""
        self._scratch.cleanup()

    def _export_spec(self, name: str) -> Spec:
        """The spec that exports PyTorch model `name` (it carries the pruning parameters)."""
        return next(s for s in self.specs.values() if s.torch_model == name and s.method in EXPORTS)

    def importance(self) -> dict:
        """Head and channel scores of the original on the calibration images, shared by every structured ratio."""
        if self._importance is None:
            self._importance = pruning.structured_importance(self._torch["original"], self.baseline.resolution,
                                                             self.calibration_inputs)
        return self._importance

    def torch_model(self, name: str) -> nn.Module:
        """The PyTorch model `name`, pruned from the original on first use."""
        if name not in self._torch:
            spec = self._export_spec(name)
            if spec.method == "unstructured-l1":
                self._torch[name] = pruning.prune_unstructured(self._torch["original"], spec.params["amount"])
            else:
                self._torch[name] = pruning.prune_structured(self._torch["original"], spec.params["ratio"],
                                                             self.importance())
        return self._torch[name]

    def torch_stats(self, name: str) -> dict:
        """Parameters, non-zeros, sparsity and FLOPs of a PyTorch model as exported, plus what pruning left."""
        if name not in self._stats:
            net, method = self.torch_model(name), self._export_spec(name).method
            total, nonzero = count_parameters(export_ready(net, self.baseline.resolution))
            stats = {"parameters": total, "nonzero": nonzero, "sparsity": round(1 - nonzero / total, 6),
                     "flops": count_flops(net, self.baseline.resolution)}
            if method == "unstructured-l1":
                zeros, elements = pruning.target_sparsity(net)
                stats["pruned_layers"] = {"count": len(pruning.prunable_weights(net)), "elements": elements,
                                          "zeros": zeros, "sparsity": round(zeros / elements, 6)}
            elif method == "structured":
                stats["backbone_widths"] = pruning.block_widths(net)
            self._stats[name] = stats
        return self._stats[name]

    def reference(self, name: str) -> list:
        """PyTorch outputs of model `name` on the parity images."""
        if name not in self._references:
            self._references[name] = torch_outputs(self.torch_model(name), self.baseline.resolution,
                                                   self.parity_inputs)
        return self._references[name]

    def preprocessed(self, name: str) -> Path:
        """ONNX Runtime's pre-quantization pass over variant `name`'s file, done once per run."""
        if name not in self._preprocessed:
            path = Path(self._scratch.name) / f"{name}.pre.onnx"
            quantization.preprocess(self.out / self.specs[name].file, path)
            self._preprocessed[name] = path
        return self._preprocessed[name]

    def write(self, spec: Spec) -> None:
        """Produce the spec's ONNX file in the output folder."""
        path, s = self.out / spec.file, self.settings
        if spec.method in EXPORTS:
            export_onnx(self.torch_model(spec.torch_model), self.baseline.resolution, path)
        elif spec.method == "dynamic-int8":
            quantization.quantize_dynamic_int8(self.preprocessed(spec.parent), path, weight_type=s.weight_type,
                                               reduce_range=s.reduce_range, keep_float=s.dynamic_keep_float,
                                               fp16_tables=s.fp16_tables)
        elif spec.method == "static-qdq-int8":
            quantization.quantize_static_qdq(self.preprocessed(spec.parent), path, self.calibration_inputs,
                                             per_channel=s.per_channel, activation_type=s.activation_type,
                                             weight_type=s.weight_type, reduce_range=s.reduce_range,
                                             keep_float=s.static_keep_float, fp16_tables=s.fp16_tables)
        elif spec.method == "fp16":
            quantization.convert_fp16(self.out / self.specs[spec.parent].file, path)
        else:
            raise ValueError(f"unknown method {spec.method}")

    def entry(self, spec: Spec) -> dict:
        """The manifest entry of a written variant: file facts, counts, parity and provenance."""
        path = self.out / spec.file
        candidate = run_onnx(make_session(path), self.parity_inputs)
        entry = {"name": spec.name, **file_facts(path, self.out), "method": spec.method, "params": spec.params,
                 "parent": spec.parent, "torch_model": spec.torch_model, "source": self.baseline.source,
                 "provenance": self.baseline.provenance,
                 "model_variant": self.baseline.variant, "resolution": self.baseline.resolution,
                 **self.torch_stats(spec.torch_model),
                 "parity": compare(self.reference(spec.torch_model), candidate),
                 "command": self.command, "versions": versions()}
        if spec.method == "unstructured-l1":
            entry["note"] = SPARSITY_NOTE
        elif spec.method == "fp16":
            entry["note"] = FP16_NOTE
        return entry

    def build(self, spec: Spec) -> dict:
        """Write one variant and measure it; `seconds` covers both."""
        start = time.perf_counter()
        self.write(spec)
        entry = self.entry(spec)
        entry["seconds"] = round(time.perf_counter() - start, 1)
        return entry


SUMMARY_COLUMNS = ["variant", "MB", "% fp32", "zstd MB", "params M", "nonzero M", "sparsity %", "GFLOPs",
                   "max|dbox|", "max|dlogit|", "top-k %", "s", ""]


def summary_rows(variants: dict, status: dict[str, str]) -> list[dict]:
    """One printable row per variant in `status` (built or reused), sizes also as % of the FP32 original.

    `top-k %` is the share of the PyTorch model's top-100 detections the ONNX file also ranks top-100.
    """
    original = variants.get("original", {}).get("bytes")
    rows = []
    for name, how in status.items():
        e = variants[name]
        parity = e["parity"]
        rows.append({"variant": name, "MB": f"{e['bytes'] / 1e6:.1f}",
                     "% fp32": f"{100 * e['bytes'] / original:.1f}" if original else "",
                     "zstd MB": f"{e['compressed_bytes'] / 1e6:.1f}", "params M": f"{e['parameters'] / 1e6:.2f}",
                     "nonzero M": f"{e['nonzero'] / 1e6:.2f}", "sparsity %": f"{100 * e['sparsity']:.1f}",
                     "GFLOPs": f"{e['flops'] / 1e9:.1f}", "max|dbox|": f"{parity['max_abs_boxes']:.2g}",
                     "max|dlogit|": f"{parity['max_abs_logits']:.2g}",
                     "top-k %": f"{100 * parity['top_k_overlap']:.0f}",
                     "s": f"{e['seconds']:.0f}", "": how})
    return rows
