"""Fixed-input latency of every model a run timed, interleaved in rounds: each ratio from the same rounds.

Timing one model after another lets load that comes and goes decide the ratios (a busy minute once made a
3x variant read 10x). Here round i of every model runs back to back, each speed-up is the median of the
per-round ratios to the reference, and the spread of the rounds says whether the machine was busy.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from ..core.artifacts import LATENCY_PHASE
from .timing import BUSY_SPREAD, paired_speedup, spread, summarize, time_interleaved


def latency_rows(calls: dict[str, Callable[[], object]], references: dict[str, str], rounds: int, warmup: int,
                 context: dict[str, dict]) -> list[dict]:
    """One fixed-input row per model: median, p90, speed-up over its reference and spread, from shared rounds."""
    milliseconds = {name: [1000 * s for s in seconds]
                    for name, seconds in time_interleaved(calls, rounds, warmup).items()}
    timing_set = time.strftime("%Y-%m-%dT%H:%M:%S")

    def speedup(name: str) -> float:
        base = milliseconds.get(references.get(name))
        return round(paired_speedup(base, milliseconds[name]), 3) if base else math.nan

    return [{"model": name, "phase": LATENCY_PHASE, **summarize(values),
             "images_per_s": round(1000 * len(values) / sum(values), 3), "speedup": speedup(name),
             "spread": round(spread(values), 3), "busy": spread(values) > BUSY_SPREAD,
             "timing_set": timing_set, **context[name]} for name, values in milliseconds.items()]


def busy_models(rows: list[dict]) -> list[str]:
    """Models whose timed rounds spread beyond BUSY_SPREAD of their median: their milliseconds are inflated."""
    return [row["model"] for row in rows if row.get("phase") == LATENCY_PHASE and row.get("busy") is True]
