"""The one model -> colour and marker mapping that every plot and visualization uses.

Colours identify a model; markers say its numeric precision (circle FP32, square dynamic INT8, triangle
static INT8, diamond FP16), so a glance tells a quantized point from its parent. Where rows of several runtimes
are drawn together (the latency plot), a row keeps its variant's colour and its marker says the runtime
(`RUNTIME_MARKERS`), half-filled when the runtime computes the float operators in BF16. Colours are handed out
in a canonical order of the names (reference first, then by family, amount and precision), so the same
list of models gets the same colours whichever stage draws it and in whatever order it lists them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from ..core.artifacts import FLAGSHIP, REFERENCE, TORCH_ROW, row_columns
from ..core.rows import variant_of

GROUND_TRUTH = "#ffffff"  # boxes of annotated faces; no model gets white
# The flagship's: tab10, tab20's light shades and tab20b's dark ones, without grey, green and orange (the other
# detectors' colour families): 20 colours distinct from black, grey and each other, enough for the full study.
PALETTE = ("#1f77b4", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#aec7e8", "#ff9896", "#c5b0d5",
           "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#393b79", "#843c39", "#7b4173", "#5254a3", "#ad494a",
           "#a55194", "#bd9e39")
# Every other detector in one colour family, its FP32 original in the darkest shade, so a glance tells detectors
# apart: 24 shades each, enough for a family's full study set (21 variants with the NNCF and channel-pruned ones).
SHADES = {"scrfd": ("#00441b", "#238b45", "#74c476", "#006d2c", "#41ab5d", "#a1d99b", "#2ca25f", "#c7e9c0",
                    "#005a32", "#31a354", "#78c679", "#004529", "#1b7837", "#5aae61", "#0e5c2f", "#8fd18f",
                    "#00381a", "#3b9a5a", "#66bd63", "#0b6b3a", "#4dac6f", "#b7e2b1", "#1e8449", "#97d59a"),
          "centerface": ("#7f2704", "#d94801", "#fd8d3c", "#a63603", "#f16913", "#fdae6b", "#e6550d", "#fdd0a2",
                         "#8c2d04", "#cc4c02", "#fe9929", "#662506", "#b35806", "#e08214", "#fdb863", "#993404",
                         "#6b2a05", "#c2410c", "#f4a261", "#9a3b0a", "#ee7a30", "#fcc08a", "#d8640f", "#feb24c")}
OTHER_SHADES = ("#3f007d", "#6a51a3", "#9e9ac8", "#54278f", "#807dba", "#bcbddc", "#4a1486", "#756bb1",
                "#dadaeb", "#2d004b", "#8073ac", "#b2abd2")
MARKERS = {"fp32": "o", "int8": "s", "static_int8": "^", "fp16": "D"}
RUNTIME_MARKERS = {"onnxruntime": "o", "openvino": "P", "torch": "X"}  # P: a plus, unlike every precision marker
PRECISION_FILLS = {"fp32": "full", "bf16": "left"}
FIXED = {REFERENCE: ("#000000", "o"), TORCH_ROW: ("#7f7f7f", "X")}
_FAMILIES = ("original", "pruned", "structured", "channel")
STATIC_INT8 = ("static_int8", "int8_budget", "nncf_int8", "nncf_accuracy_int8")  # static QDQ files, however searched
_ORIGINAL_BASED = {REFERENCE, "quantized", "fp16", *STATIC_INT8}
_AMOUNT = re.compile(r"^(pruned|structured|channel)_(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Style:
    """How one model is drawn everywhere."""

    colour: str
    marker: str
    fill: str = "full"  # matplotlib's fillstyle


def precision_of(name: str) -> str:
    """'fp32', 'int8', 'static_int8' or 'fp16' of the file, read from the manifest's naming scheme."""
    name = variant_of(name)
    if name.endswith(STATIC_INT8):
        return "static_int8"
    if name.endswith("_int8") or name == "quantized":
        return "int8"
    if name.endswith("fp16"):
        return "fp16"
    return "fp32"


def _family(name: str) -> tuple[int, float]:
    """(family rank, amount): original-based 0, pruned 1, structured 2, channel-pruned 3, anything else last."""
    match = _AMOUNT.match(name)
    if match:
        return _FAMILIES.index(match.group(1)), float(match.group(2))
    return (0 if name in _ORIGINAL_BASED else len(_FAMILIES)), 0.0


def sort_key(name: str) -> tuple:
    """Canonical order: references, then original-based, pruned, structured (by amount), then precision, each
    variant's runtime rows after it."""
    variant = variant_of(name)
    return (variant not in FIXED, *_family(variant), list(MARKERS).index(precision_of(name)), variant, name)


def _flagship_styles(names: Iterable[str]) -> dict[str, Style]:
    """A distinct colour per model (cycling past the palette) and its precision's marker."""
    ordered = sorted(set(names), key=sort_key)
    others = [n for n in ordered if n not in FIXED]
    styles = {n: Style(*FIXED[n]) for n in ordered if n in FIXED}
    styles.update({n: Style(PALETTE[i % len(PALETTE)], MARKERS[precision_of(n)]) for i, n in enumerate(others)})
    return styles


def _family_styles(family: str, names: Iterable[str]) -> dict[str, Style]:
    """One detector's models in shades of its colour, its original first (darkest), markers by precision."""
    shades = SHADES.get(family, OTHER_SHADES)
    short = {name: name[len(family) + 1:] for name in names}  # 'scrfd_pruned_30' -> 'pruned_30'
    ordered = sorted(short, key=lambda name: sort_key(short[name]))
    return {n: Style(shades[i % len(shades)], MARKERS[precision_of(short[n])]) for i, n in enumerate(ordered)}


def model_styles(names: Iterable[str], families: Mapping[str, str] | None = None) -> dict[str, Style]:
    """Every model's colour and marker; `families` maps a model to its detector (absent: the flagship's)."""
    families = families or {}
    grouped: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        grouped.setdefault(families.get(name, FLAGSHIP), []).append(name)
    styles = _flagship_styles(grouped.pop(FLAGSHIP, []))
    for family, members in grouped.items():
        styles.update(_family_styles(family, members))
    return styles


def runtime_styles(names: Iterable[str], styles: Mapping[str, Style]) -> dict[str, Style]:
    """Each row in its variant's colour, its marker the runtime's and half-filled at BF16: for plots of rows of
    several runtimes, where the colour says the variant and the shape says where it ran."""
    marked = {}
    for name in names:
        columns = row_columns(name)
        marked[name] = Style(styles[variant_of(name)].colour if variant_of(name) in styles else styles[name].colour,
                             RUNTIME_MARKERS.get(columns["runtime"], "*"),
                             PRECISION_FILLS.get(columns["inference_precision"], "none"))
    return marked
