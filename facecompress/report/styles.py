"""The one model -> colour and marker mapping that every plot and visualization uses.

Colours identify a model; markers say its numeric precision (circle FP32, square dynamic INT8, triangle
static INT8, diamond FP16), so a glance tells a quantized point from its parent. Colours are handed out
in a canonical order of the names (reference first, then by family, amount and precision), so the same
list of models gets the same colours whichever stage draws it and in whatever order it lists them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from ..core.artifacts import REFERENCE, TORCH_ROW

GROUND_TRUTH = "#ffffff"  # boxes of annotated faces; no model gets white
# tab10 without its grey, then tab20's light shades without theirs: 18 colours distinct from black and grey
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")
MARKERS = {"fp32": "o", "int8": "s", "static_int8": "^", "fp16": "D"}
FIXED = {REFERENCE: ("#000000", "o"), TORCH_ROW: ("#7f7f7f", "X")}
_FAMILIES = ("original", "pruned", "structured")
_ORIGINAL_BASED = {REFERENCE, "quantized", "static_int8", "fp16"}
_AMOUNT = re.compile(r"^(pruned|structured)_(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Style:
    """How one model is drawn everywhere."""

    colour: str
    marker: str


def precision_of(name: str) -> str:
    """'fp32', 'int8', 'static_int8' or 'fp16', read from the manifest's naming scheme."""
    if name.endswith("static_int8"):
        return "static_int8"
    if name.endswith("_int8") or name == "quantized":
        return "int8"
    if name.endswith("fp16"):
        return "fp16"
    return "fp32"


def _family(name: str) -> tuple[int, float]:
    """(family rank, amount): original-based 0, pruned 1, structured 2, anything else last."""
    match = _AMOUNT.match(name)
    if match:
        return _FAMILIES.index(match.group(1)), float(match.group(2))
    return (0 if name in _ORIGINAL_BASED else len(_FAMILIES)), 0.0


def sort_key(name: str) -> tuple:
    """Canonical order: references, then original-based, pruned, structured (by amount), then precision."""
    return (name not in FIXED, *_family(name), list(MARKERS).index(precision_of(name)), name)


def model_styles(names: Iterable[str]) -> dict[str, Style]:
    """A distinct colour per model (cycling past 18 non-reference models) and its precision's marker."""
    ordered = sorted(set(names), key=sort_key)
    others = [n for n in ordered if n not in FIXED]
    styles = {n: Style(*FIXED[n]) for n in ordered if n in FIXED}
    styles.update({n: Style(PALETTE[i % len(PALETTE)], MARKERS[precision_of(n)]) for i, n in enumerate(others)})
    return styles
