"""The issue's compression targets, checked on a manifest and on latencies timed interleaved in one run."""

from __future__ import annotations

from ..run.timing import latency_ms, paired_speedup

SPEEDUP_TARGET = 2.0  # x the FP32 ONNX original, ONNX Runtime on this CPU, batch 1, all cores
INT8_TARGET = 26.0  # % of the original's bytes, dynamic INT8 of the original
STRUCTURED_INT8_TARGET = 16.0  # % of the original's bytes, structured pruning then INT8


def bench_rows(variants: dict, times: dict[str, list[float]]) -> list[dict]:
    """One row per timed variant: latency, speed-up over 'original', bytes as % of it, FLOPs."""
    base, base_bytes = times["original"], variants["original"]["bytes"]
    return [{"variant": name, **{k: f"{v:.1f}" for k, v in latency_ms(seconds).items()},
             "speed-up": f"{paired_speedup(base, seconds):.2f}",
             "bytes %": f"{100 * variants[name]['bytes'] / base_bytes:.1f}",
             "GFLOPs": f"{variants[name]['flops'] / 1e9:.1f}"} for name, seconds in times.items()]


def _check(target: str, value: float, variant: str | None, limit: float, at_least: bool) -> dict:
    """One target row; a missing variant (nan) never meets its target."""
    met = value >= limit if at_least else value <= limit
    return {"target": target, "value": f"{value:.2f}", "variant": variant or "-",
            "limit": f"{'>=' if at_least else '<='} {limit}", "met": "yes" if met else "NO"}


def target_checks(variants: dict, times: dict[str, list[float]]) -> list[dict]:
    """Best speed-up among the timed variants, dynamic INT8 bytes %, smallest structured INT8 bytes %."""
    base, base_bytes = times["original"], variants["original"]["bytes"]
    speedups = {n: paired_speedup(base, s) for n, s in times.items() if n != "original"}
    fastest = max(speedups, key=speedups.get, default=None)
    structured = [n for n in variants if n.startswith("structured_") and n.endswith("int8")]
    smallest = min(structured, key=lambda n: variants[n]["bytes"], default=None)

    def percent(name: str | None) -> float:
        return 100 * variants[name]["bytes"] / base_bytes if name in variants else float("nan")

    quantized = "quantized" if "quantized" in variants else None
    return [_check("speed-up (x)", speedups.get(fastest, float("nan")), fastest, SPEEDUP_TARGET, True),
            _check("INT8 bytes (%)", percent(quantized), quantized, INT8_TARGET, False),
            _check("structured + INT8 bytes (%)", percent(smallest), smallest, STRUCTURED_INT8_TARGET, False)]
