"""One run of the variant set: the images it uses, the manifest header, and the Builder that turns a recipe
into a file in `models/` plus its manifest entry, caching what several variants share.

The builder is generic: what is family-specific (making the FP32 file and the pruned ones, counting
parameters and FLOPs, checking parity) comes from the family's model source, and the images from the
family's own preprocessing.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from ..core.artifacts import FLAGSHIP, reference_of
from ..core.errors import InputError
from ..data.calibration import spread
from ..data.dataset import Dataset, iter_images
from ..data.wider import ImageAnnotation
from ..detectors.family import Family
from ..core.atomic import write_csv
from ..run.sessions import make_session, run_onnx
from . import nncf_int8, quantization
from .manifest import file_facts, versions
from .qdq_graph import qdq_counts
from .search import CheckImages, Int8Search, SearchSpace, write_chosen
from .variants import EXPORTS, Settings, Spec

SPARSITY_NOTE = ("unstructured zeros are stored densely: file size and ONNX Runtime speed are unchanged; "
                 "only compressed_bytes (zstd) shows the saving")
ENTRY_FACTS = ("family", "model", "source", "provenance", "model_variant", "resolution", "input_size")
FP16_NOTE = "half the bytes, but on a CPU ONNX Runtime runs FP16 slower than FP32 (Cast nodes, few FP16 kernels)"


def manifest_header(family_facts: dict, dataset: str, calibration: list[str], parity: list[str]) -> dict:
    """Run-wide facts of a manifest; when any differs from the file's, its entries are stale and dropped."""
    return {**family_facts, "dataset": dataset, "calibration_images": calibration, "parity_images": parity}


def spread_over_events(annotations: Sequence[ImageAnnotation], seed: int) -> list[ImageAnnotation]:
    """All `annotations`, ordered so that any first N cover as many events as they can; the same for the same seed.

    WIDER lists its images event by event, so its first images are all one event (parade): calibrating,
    ranking channels or checking parity on them would see one kind of scene.
    """
    return spread(annotations, lambda annotation: annotation.event, seed)


def split_inputs(annotations: Sequence[ImageAnnotation], calibration: int, parity: int,
                 seed: int = 0) -> tuple[list, list]:
    """(calibration, parity) images spread over events, disjoint when there are enough.

    Parity always gets its `parity` images; calibration takes up to `calibration` of the rest, or, if none
    is left, of all images (overlapping parity) rather than none.
    """
    if not annotations:
        raise InputError("no readable image to calibrate on or to check parity with")
    ordered = spread_over_events(annotations, seed)
    checking = ordered[:parity]
    calibrating = ordered[parity:][:calibration] or ordered[:calibration]
    return calibrating, checking


def load_inputs(dataset: Dataset, family: Family, calibration: int, parity: int,
                skip_unreadable: bool = False, seed: int = 0) -> tuple[list, list]:
    """(name, input, image size) for calibration and for parity, chosen with `seed`, decoding only those images.

    `calibration` may be 0 (the calibration images then come from a folder of their own).
    """
    calibrating, checking = split_inputs(dataset.present, calibration, parity, seed)
    wanted = {a.name: a for a in calibrating + checking}
    arrays = {a.name: (family.preprocess(image), image.size)
              for a, image in iter_images(replace(dataset, present=tuple(wanted.values())), skip_unreadable)}
    pairs = tuple([(a.name, *arrays[a.name]) for a in group if a.name in arrays] for group in (calibrating, checking))
    if not pairs[1] or (calibration and not pairs[0]):
        raise InputError("no readable image left to calibrate on or to check parity with")
    return pairs


class Builder:
    """One run's shared state: the family's model source, images, output folder, and pre-processed files."""

    def __init__(self, models, header: dict, out: Path, specs: list[Spec], calibration_inputs: list[np.ndarray],
                 settings: Settings, command: str, family: Family | None = None, check: CheckImages | None = None):
        """`family` and `check` (images the INT8 search measures agreement on) are needed by int8-budget only."""
        self.models, self.header, self.out = models, header, Path(out)
        self.settings, self.command = settings, command
        self.specs = {s.name: s for s in specs}
        self.calibration_inputs = calibration_inputs
        self.family, self.check = family, check
        self._preprocessed: dict[str, Path] = {}
        self._searched: dict[str, dict] = {}
        self._nncf: dict[str, dict] = {}  # what NNCF reported of each variant it made, for the entry
        self._scratch = tempfile.TemporaryDirectory(prefix="facecompress-")

    def close(self) -> None:
        """Remove the scratch folder of pre-processed files."""
        self._scratch.cleanup()

    def _export_spec(self, name: str) -> Spec:
        """The spec that exports model `name` (it carries the pruning parameters)."""
        return next(s for s in self.specs.values() if s.torch_model == name and s.method in EXPORTS)

    def _model(self, name: str) -> tuple[str, str, dict]:
        """(name, method, params) that make model `name`, as the family's model source takes them."""
        spec = self._export_spec(name)
        return name, spec.method, spec.params

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
            self.models.export(*self._model(spec.torch_model), path)
        elif spec.method == "dynamic-int8":
            quantization.quantize_dynamic_int8(self.preprocessed(spec.parent), path, weight_type=s.weight_type,
                                               reduce_range=s.reduce_range, keep_float=s.dynamic_keep_float,
                                               fp16_tables=s.fp16_tables)
        elif spec.method == "static-qdq-int8":
            quantization.quantize_static_qdq(self.preprocessed(spec.parent), path, self.calibration_inputs,
                                             per_channel=s.per_channel, activation_type=s.activation_type,
                                             weight_type=s.weight_type, reduce_range=s.reduce_range,
                                             keep_float=s.static_keep_float, fp16_tables=s.fp16_tables)
        elif spec.method == "int8-budget":
            self._searched[spec.name] = self.search(spec, path)
        elif spec.method == "nncf-int8":
            self._nncf[spec.name] = nncf_int8.quantize(self.preprocessed(spec.parent), path, self.calibration_inputs)
        elif spec.method == "nncf-int8-accuracy":
            self._nncf[spec.name] = nncf_int8.quantize_with_accuracy_control(
                self.preprocessed(spec.parent), path, self.calibration_inputs, self.family, self.check,
                spec.params["max_drop_points"], spec.params["max_iterations"])
        elif spec.method == "fp16":
            quantization.convert_fp16(self.out / self.specs[spec.parent].file, path)
        else:
            raise ValueError(f"unknown method {spec.method}")

    def search(self, spec: Spec, path: Path) -> dict:
        """Run the accuracy-aware INT8 search for `spec`, write its choice to `path` and its trace beside it;
        what it found, for the manifest entry."""
        if self.family is None or self.check is None:
            raise ValueError("int8-budget needs the family and the check images")
        s, p = self.settings, spec.params
        workdir = Path(self._scratch.name) / spec.name
        workdir.mkdir(exist_ok=True)
        options = {"per_channel": s.per_channel, "activation_type": s.activation_type, "weight_type": s.weight_type,
                   "reduce_range": s.reduce_range, "keep_float": s.static_keep_float, "fp16_tables": s.fp16_tables}
        space = SearchSpace(tuple(p["methods"]), tuple(p["scopes"]))
        untrained = " (untrained)" if "untrained" in self.header.get("provenance", "") else ""
        search = Int8Search(self.preprocessed(spec.parent), self.family, self.calibration_inputs, self.check,
                            p["budget_points"], space, options, workdir, label=self.family.name + untrained)
        chosen = search.run()
        write_chosen(chosen, path)
        trace = path.with_suffix(".search.csv")
        write_csv(trace, [t.row() for t in search.trials])
        return {"search": {"trace": trace.name, "chosen_step": chosen.step, "method": chosen.method,
                           "scope": chosen.scope, "float_regions": list(chosen.float_regions),
                           "float_nodes": list(chosen.float_nodes), "agreement_ap50": chosen.agreement_ap50,
                           "agreement_baseline": round(search.baseline, 6), "drop_points": chosen.drop_points,
                           "within_budget": chosen.within_budget, "search_speedup": chosen.speedup,
                           "trials": len(search.trials), "check_images": list(self.check.names)}}

    def entry(self, spec: Spec) -> dict:
        """The manifest entry of a written variant: file facts, counts, parity and provenance."""
        path = self.out / spec.file
        model = self._model(spec.torch_model)
        candidate = run_onnx(make_session(path), self.models.parity_inputs)
        source = self.out / self._export_spec(spec.torch_model).file
        entry = {"name": spec.name, **file_facts(path, self.out), "method": spec.method, "params": spec.params,
                 "parent": spec.parent, "torch_model": spec.torch_model,
                 **{k: self.header[k] for k in ENTRY_FACTS if k in self.header},
                 **self.models.stats(*model, source), "parity": self.models.parity(*model, candidate),
                 "command": self.command, "versions": versions()}
        if spec.method in ("static-qdq-int8", "int8-budget"):
            entry["qdq"] = qdq_counts(onnx.load(str(path)))
        entry.update(self._nncf.get(spec.name, {}))
        entry.update(self._searched.get(spec.name, {}))
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
                   "max|dbox|", "max|dlogit|", "max|dscore|", "top-k %", "s", ""]


def summary_rows(variants: dict, status: dict[str, str]) -> list[dict]:
    """One printable row per variant in `status` (built or reused), sizes also as % of the FP32 original.

    `top-k %` is the share of the reference's top-100 detections the file reproduces: the PyTorch model's for
    RF-DETR (max |dlogit|), the family's FP32 file's for an ONNX-only family (max |dscore|).
    """
    rows = []
    for name, how in status.items():
        e = variants[name]
        parity = e["parity"]
        original = variants.get(reference_of(e.get("family", FLAGSHIP)), {}).get("bytes")
        rows.append({"variant": name, "MB": f"{e['bytes'] / 1e6:.1f}",
                     "% fp32": f"{100 * e['bytes'] / original:.1f}" if original else "",
                     "zstd MB": f"{e['compressed_bytes'] / 1e6:.1f}", "params M": f"{e['parameters'] / 1e6:.2f}",
                     "nonzero M": f"{e['nonzero'] / 1e6:.2f}", "sparsity %": f"{100 * e['sparsity']:.1f}",
                     "GFLOPs": f"{e['flops'] / 1e9:.1f}", "max|dbox|": f"{parity['max_abs_boxes']:.2g}",
                     "max|dlogit|": f"{parity['max_abs_logits']:.2g}" if "max_abs_logits" in parity else "-",
                     "max|dscore|": f"{parity['max_abs_scores']:.2g}" if "max_abs_scores" in parity else "-",
                     "top-k %": f"{100 * parity['top_k_overlap']:.0f}",
                     "s": f"{e['seconds']:.0f}", "": how})
    return rows
