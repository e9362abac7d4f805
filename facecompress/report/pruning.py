"""What the pruning rows say: unstructured zeros buy no speed on this runtime; channel pruning does, and what
recovery gives back, the same pruned network before and after recovery side by side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..compress.channel_recipe import RECOVERED
from ..core.artifacts import reference_of
from ..core.rows import is_default

SPARSE_LABEL = "sparse weights: no speed-up on this runtime"
CHANNEL_COLUMNS = ["pruned network", "channels removed", "GFLOPs", "speed-up", "Easy / Medium / Hard before recovery",
                   "after recovery", "after + static INT8 (speed-up)", "after + searched INT8 (speed-up)", "FP32 original",
                   "recovery"]
INT8_COLUMNS = {"static-qdq-int8": "after + static INT8 (speed-up)", "int8-budget": "after + searched INT8 (speed-up)"}


def _ap(row: pd.Series | None) -> str:
    if row is None or not np.isfinite(row["wider_hard"]):
        return "-"
    return " / ".join(f"{row[k]:.3f}" for k in ("wider_easy", "wider_medium", "wider_hard"))


def _speed(row: pd.Series | None) -> str:
    return f"{row['speedup']:.2f}x" if row is not None and np.isfinite(row["speedup"]) else "-"


def _recovery(entry: dict) -> str:
    """Steps done of those planned, the time, and the images, as the manifest recorded them."""
    facts = entry.get("channel_pruning", {}).get("recovery")
    if not facts:
        return "not run (--recovery-minutes 0)"
    capped = ", capped by --recovery-minutes" if facts["capped"] else ""
    return (f"{facts['steps_done']}/{facts['steps_planned']} steps in {facts['seconds'] / 60:.1f} min{capped}, "
            f"{facts['images']}")


def _child(get, variants: dict, parent: str, method: str) -> str:
    """Accuracy and speed-up of the variant made from `parent` by `method` (an INT8 conversion), or '-'."""
    name = next((n for n, e in variants.items() if e.get("parent") == parent and e.get("method") == method), None)
    row = get(name) if name else None
    return f"{_ap(row)} ({_speed(row)})" if row is not None else "-"


def _models(table: pd.DataFrame, method: str) -> list[str]:
    """The default-runtime rows of `method` (other runtimes' rows of a variant repeat its method)."""
    return [m for m in table.loc[table["method"] == method, "model"] if is_default(m)]


def channel_rows(table: pd.DataFrame, variants: dict) -> list[dict[str, str]]:
    """One row per channel-pruned network: its counts and speed, its accuracy before and after recovery
    (a network whose unrecovered twin was skipped still gets its row)."""
    rows = table.set_index("model")
    get = lambda name: rows.loc[name] if name in rows.index else None  # noqa: E731
    recovered_ones = [m.removesuffix(RECOVERED) for m in _models(table, "channel-l1-recovered")]
    found = []
    for name in dict.fromkeys(_models(table, "channel-l1") + recovered_ones):
        recovered = name + RECOVERED
        before, after = get(name), get(recovered)
        known = before if before is not None else after
        channels = {**variants.get(recovered, {}), **variants.get(name, {})}.get("channel_pruning", {})
        removed = (f"{1 - channels['channels_after'] / channels['channels_before']:.0%}"
                   if channels.get("channels_before") else "-")
        found.append({"pruned network": name, "channels removed": removed, "GFLOPs": f"{known['flops'] / 1e9:.2f}",
                      "speed-up": _speed(after if after is not None else before),
                      "Easy / Medium / Hard before recovery": _ap(before), "after recovery": _ap(after),
                      **{column: _child(get, variants, recovered, method) for method, column in INT8_COLUMNS.items()},
                      "FP32 original": _ap(get(reference_of(known["family"]))),
                      "recovery": _recovery(variants.get(recovered, {}))})
    return found


def sparse_line(table: pd.DataFrame) -> str | None:
    """The unstructured rows named for what they are, with the speed-ups measured for them."""
    rows = table[(table["method"] == "unstructured-l1") & table["model"].map(is_default)]
    if rows.empty:
        return None
    speeds = ", ".join(f"{m} {s:.2f}x" if np.isfinite(s) else f"{m} -" for m, s in zip(rows["model"], rows["speedup"]))
    return (f"Unstructured pruning (unstructured-l1: {speeds}): {SPARSE_LABEL}. Its zeros are stored and multiplied "
            "like any other weight; only the zstd column shrinks. Channel pruning (channel-l1) removes whole "
            "channels, which the runtime does skip.")
