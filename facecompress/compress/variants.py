"""The variants one run produces: what each is, what it is made from, and which of them a run visits.

A `Spec` is a recipe: name, file, method, parameters, the PyTorch model it came from and the ONNX file it was
converted from. `plan` lists the recipes of a variant set, parents first; `builder.Builder` carries them out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.errors import InputError
from . import quantization
from .channel_recipe import RECOVERED, Recipe
from .manifest import PRECISION_SUFFIX, PRECISION_TAG, file_name, intact, percent, torch_name, variant_name

EXPORTS = ("export-fp32", "unstructured-l1", "structured", "channel-l1",
           "channel-l1-recovered")  # methods that write a model's FP32 ONNX file


@dataclass(frozen=True)
class Settings:
    """Every knob of the variant set (each has a command-line flag in inference.py)."""

    prune: tuple[float, ...] = (0.01, 0.3, 0.4)
    structured: tuple[float, ...] = (0.5,)
    study: bool = False  # also FP16, the pruned models' INT8 and the structured models' static INT8
    weight_type: str = "s8"
    reduce_range: bool = True
    dynamic_keep_float: tuple[str, ...] = ()
    static_keep_float: tuple[str, ...] = ()
    per_channel: bool = True
    activation_type: str = "u8"
    fp16_tables: bool = True
    skip: tuple[str, ...] = ()
    accuracy_budget: float = 1.0  # AP points of label-free agreement the int8_budget search may lose
    search_methods: tuple[str, ...] = ("minmax",)  # calibration methods the search tries (a study: all three)
    search_scopes: tuple[str, ...] = ("all",)  # a study adds "conv": convolutions and matrix products only
    search_images: int = 8  # check images the search measures agreement on, apart from the calibration ones
    isa: str = ""  # the CPU's instruction sets the INT8 settings were chosen for (compress.isa)
    int8_basis: str = ""  # why those settings: measured here, or ONNX Runtime's guidance
    nncf: bool = False  # also NNCF's INT8 of the original, plain and accuracy-controlled (in a study too)
    channel: tuple[float, ...] = ()  # ONNX-only families: shares of convolution channels removed (a study: 25, 50 %)
    recovery: Recipe | None = None  # how channel-pruned models are recovered; None: only the unrecovered ones
    reconstruction_images: int = 24  # recovery-image windows the least-squares refit of each convolution reads


@dataclass(frozen=True)
class Spec:
    """One variant's recipe; `params` go into the manifest verbatim, so they must be JSON values."""

    name: str
    file: str
    method: str
    params: dict = field(hash=False)
    torch_model: str
    parent: str | None = None


def _dynamic_params(settings: Settings) -> dict:
    """Parameters of every dynamic INT8 variant."""
    return {"kernels": "U8S8" if settings.weight_type == "s8" else "U8U8", "reduce_range": settings.reduce_range,
            "op_types": list(quantization.DYNAMIC_OPS), "conv": "weight-only INT8, float compute",
            "keep_float": list(settings.dynamic_keep_float),
            "fp16_tables": settings.fp16_tables, "pre_process": "onnxruntime quant_pre_process", "isa": settings.isa}


def _static_params(settings: Settings, calibration_images: int) -> dict:
    """Parameters of every static QDQ variant."""
    return {"format": "QDQ", "per_channel": settings.per_channel, "activations": settings.activation_type.upper(),
            "weights": settings.weight_type.upper(), "reduce_range": settings.reduce_range,
            "op_types": list(quantization.QUANT_OPS), "matmul_const_b_only": True, "isa": settings.isa,
            "keep_float": list(settings.static_keep_float), "calibration": "minmax",
            "calibration_images": calibration_images, "fp16_tables": settings.fp16_tables,
            "pre_process": "onnxruntime quant_pre_process"}


def _budget_params(settings: Settings, calibration_images: int) -> dict:
    """Parameters of the accuracy-aware INT8 search (what it tries; what it found goes into the entry)."""
    static = _static_params(settings, calibration_images)
    return {**{k: static[k] for k in ("format", "per_channel", "activations", "weights", "reduce_range",
                                      "keep_float", "calibration_images", "fp16_tables")},
            "budget_points": settings.accuracy_budget, "methods": list(settings.search_methods),
            "scopes": list(settings.search_scopes), "check_images": settings.search_images,
            "agreement": "AP@0.5 against the FP32 file's detections scoring >= 0.5, label-free",
            "isa": settings.isa, "int8_basis": settings.int8_basis}


def _nncf_params(calibration_images: int) -> dict:
    """What nncf.quantize is called with (NNCF's defaults, named)."""
    return {"backend": "nncf onnx", "preset": "performance (nncf default)", "target_device": "ANY",
            "fast_bias_correction": True, "subset_size": "every calibration image", "format": "QDQ",
            "calibration_images": calibration_images, "pre_process": "onnxruntime quant_pre_process"}


def _nncf_accuracy_params(settings: Settings, calibration_images: int) -> dict:
    """What nncf.quantize_with_accuracy_control is called with: the int8_budget search's budget and check images."""
    return {**_nncf_params(calibration_images), "max_drop_points": settings.accuracy_budget, "drop_type": "absolute",
            "max_iterations": 32, "check_images": settings.search_images,
            "validation": "AP@0.5 against the FP32 file's detections scoring >= 0.5, label-free"}


def _lineage(stem: str, settings: Settings, calibration_images: int, export_params: dict[str, dict], prefix: str,
             prune: float | None = None, structured: float | None = None) -> list[Spec]:
    """The FP32 file of one model followed by its INT8 (and, in a study, FP16) conversions.

    `export_params` holds, per export method, the family's own facts about it (scope, opset, exporter);
    `prefix` starts every name of a family other than the flagship ('scrfd_').
    """
    base = prefix + torch_name(prune, structured)

    def spec(precision: str, method: str, params: dict, parent: str | None = None) -> Spec:
        return Spec(prefix + variant_name(prune, structured, precision),
                    file_name(stem, prune, structured, precision), method, params, base, parent)

    if prune is not None:
        export = spec("fp32", "unstructured-l1", {"amount": prune, **export_params["unstructured-l1"]})
    elif structured is not None:
        export = spec("fp32", "structured", {"ratio": structured, **export_params["structured"],
                                             "importance_images": calibration_images})
    else:
        export = spec("fp32", "export-fp32", export_params["export-fp32"])
    original = prune is None and structured is None
    lineage = [export]
    if prune is None or settings.study:
        lineage.append(spec("int8", "dynamic-int8", _dynamic_params(settings), export.name))
    if original or (structured is not None and settings.study):
        lineage.append(spec("int8-static", "static-qdq-int8", _static_params(settings, calibration_images),
                            export.name))
    if original:
        lineage.append(spec("int8-budget", "int8-budget", _budget_params(settings, calibration_images), export.name))
    if original and (settings.study or settings.nncf):
        lineage += [spec("nncf-int8", "nncf-int8", _nncf_params(calibration_images), export.name),
                    spec("nncf-int8-accuracy", "nncf-int8-accuracy",
                         _nncf_accuracy_params(settings, calibration_images), export.name)]
    if original and settings.study:
        lineage.append(spec("fp16", "fp16", {"keep_io_types": True, "op_block_list": "onnxruntime default"},
                            export.name))
    return lineage


def _channel_lineage(stem: str, settings: Settings, calibration_images: int, export_params: dict[str, dict],
                     prefix: str, ratio: float) -> list[Spec]:
    """A channel-pruned model before recovery, and (with a recovery recipe) after it with its static INT8 and
    the INT8 the accuracy-aware search picks for it (its budget is against the recovered FP32 file)."""
    base, tag = f"channel_{percent(ratio)}", f"-channel{percent(ratio)}"
    pruned = Spec(prefix + base, f"{stem}{tag}.onnx", "channel-l1", {"ratio": ratio, **export_params["channel-l1"]},
                  prefix + base)
    if settings.recovery is None or "channel-l1-recovered" not in export_params:
        return [pruned]
    name, file = f"{prefix}{base}{RECOVERED}", f"{stem}{tag}-recovered"
    recipe = {"ratio": ratio, **export_params["channel-l1-recovered"], "recovery": asdict(settings.recovery),
              "reconstruction_images": settings.reconstruction_images}

    def spec(precision: str, method: str, params: dict, parent: str | None) -> Spec:
        return Spec(name + PRECISION_SUFFIX[precision], f"{file}{PRECISION_TAG[precision]}.onnx", method, params,
                    name, parent)

    return [pruned, spec("fp32", "channel-l1-recovered", recipe, None),
            spec("int8-static", "static-qdq-int8", _static_params(settings, calibration_images), name),
            spec("int8-budget", "int8-budget", _budget_params(settings, calibration_images), name)]


def plan(stem: str, settings: Settings, calibration_images: int, export_params: dict[str, dict],
         prefix: str = "", methods: tuple[str, ...] | None = None) -> list[Spec]:
    """Every variant of the set, each parent before its children, minus `settings.skip`.

    A family without a structured or channel export (`export_params` has none) gets no such variant, and only
    the family's `methods` (all when None) are planned, with what is made from them.
    """
    specs = _lineage(stem, settings, calibration_images, export_params, prefix)
    for amount in settings.prune:
        specs += _lineage(stem, settings, calibration_images, export_params, prefix, prune=amount)
    for ratio in settings.structured if "structured" in export_params else ():
        specs += _lineage(stem, settings, calibration_images, export_params, prefix, structured=ratio)
    for ratio in settings.channel if "channel-l1" in export_params else ():
        specs += _channel_lineage(stem, settings, calibration_images, export_params, prefix, ratio)
    kept: list[Spec] = []
    for spec in specs:  # parents come first, so a child of a dropped parent is dropped too
        if (methods is None or spec.method in methods) and (spec.parent is None or spec.parent in
                                                            {k.name for k in kept} | set(settings.skip)):
            kept.append(spec)
    kept = [s for s in kept if s.name not in settings.skip]
    orphans = sorted(s.name for s in kept if s.parent in settings.skip)
    if orphans:
        raise InputError(f"--skip: {', '.join(orphans)} are converted from a skipped variant; skip them too")
    return kept


def with_ancestors(specs: list[Spec], names: list[str]) -> list[Spec]:
    """The named specs plus every spec they are converted from, in plan order."""
    by_name = {s.name: s for s in specs}
    wanted: set[str] = set()
    for name in names:
        while name is not None and name not in wanted:
            wanted.add(name)
            name = by_name[name].parent
    return [s for s in specs if s.name in wanted]


def select(specs: list[Spec], only: list[str] | None) -> list[Spec]:
    """The specs to visit: all, or those of the `only` names that are among them, with their parents.

    `only` may name other families' variants too (the caller checks every name against every family).
    """
    if not only:
        return specs
    return with_ancestors(specs, [name for name in only if name in {s.name for s in specs}])


def rebuild_reason(entry: dict | None, spec: Spec, root: Path) -> str | None:
    """Why a variant must be built (not built yet, another recipe, a damaged file), or None to reuse it."""
    if entry is None:
        return "new"
    if (entry.get("method"), entry.get("params"), entry.get("parent")) != (spec.method, spec.params, spec.parent):
        return "recipe changed"
    if not intact(entry, root):
        return "file missing or changed since it was built"
    return None
