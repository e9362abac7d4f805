"""Honest latency figures: warm-up first, perf_counter, median and p90 rather than a lone mean."""

from __future__ import annotations

import platform
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


P90_MIN_RUNS = 20  # below this a "p90" is one of the two largest values, not a tail estimate: left out
BUSY_SPREAD = 0.25  # rounds whose 10th-90th percentile range exceeds this share of their median: the CPU was shared
INT8_ISA = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")  # what INT8 speed rides on
BF16_ISA = ("avx512_bf16", "amx_bf16")  # either one gives a runtime BF16 kernels for the float operators


def summarize(milliseconds: Iterable[float]) -> dict[str, float]:
    """Median, p90 (from P90_MIN_RUNS runs up, NaN below) and mean of a set of timings, rounded when the row is built."""
    values = np.asarray(list(milliseconds), dtype=np.float64)
    if values.size == 0:
        return {"median_ms": float("nan"), "p90_ms": float("nan"), "mean_ms": float("nan"), "n": 0}
    p90 = round(float(np.percentile(values, 90)), 3) if values.size >= P90_MIN_RUNS else float("nan")
    return {"median_ms": round(float(np.median(values)), 3), "p90_ms": p90,
            "mean_ms": round(float(values.mean()), 3), "n": int(values.size)}


def time_calls(call: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Milliseconds of `repeats` calls after `warmup` untimed ones (first calls pay for allocation and caching)."""
    for _ in range(warmup):
        call()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def time_interleaved(calls: dict[str, Callable[[], object]], rounds: int = 15,
                     warmup: int = 3) -> dict[str, list[float]]:
    """Seconds per call of each model, interleaved so that background load hits every model alike.

    After `warmup` untimed calls each, one timed call per model per round, the order rotating every
    round so no model always runs right after a slow one. Round i of every model is comparable.
    """
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times


def paired_speedup(reference: list[float], candidate: list[float]) -> float:
    """Median over rounds of reference time / candidate time: each ratio from one round, as load was then."""
    return float(np.median(np.asarray(reference) / np.asarray(candidate)))



def spread(values: list[float]) -> float:
    """10th-90th percentile range of timed runs as a share of their median: how much the load moved."""
    low, middle, high = np.percentile(values, [10, 50, 90])
    return float((high - low) / middle) if middle > 0 else float("nan")


def latency_ms(seconds: list[float]) -> dict[str, float]:
    """Median and 90th percentile in milliseconds of timings given in seconds."""
    stats = summarize(1000 * np.asarray(seconds))
    return {"median_ms": stats["median_ms"], "p90_ms": stats["p90_ms"]}


def timed(call: Callable[[T], R], item: T) -> tuple[R, float]:
    """`call(item)` and the milliseconds it took."""
    start = time.perf_counter()
    result = call(item)
    return result, (time.perf_counter() - start) * 1000


def prefetch(call: Callable[[T], R], items: Iterable[T], depth: int = 2) -> Iterator[tuple[T, R, float]]:
    """Yield (item, call(item), ms) in order while a worker thread prepares the next `depth` items.

    Decoding and resizing release the GIL, so the next image is ready when the network finishes the
    current one: the image loop then runs at nearly the bare network's rate.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: list = []
        for item in items:
            pending.append((item, pool.submit(timed, call, item)))
            if len(pending) > depth:
                first, future = pending.pop(0)
                yield (first, *future.result())
        for item, future in pending:
            yield (item, *future.result())


def read_cpuinfo() -> str:
    """This machine's /proc/cpuinfo, or '' where there is none (another OS)."""
    try:
        with open("/proc/cpuinfo") as info:
            return info.read()
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The instruction-set flags of the first processor in `cpuinfo` text (default: this machine's)."""
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.split(":", 1)[1].split()) if ":" in line else set()


def has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU reports BF16 instructions (AVX512_BF16 or AMX): a BF16 row is worth making only then."""
    return bool(cpu_flags(cpuinfo) & set(BF16_ISA))


def cpu_isa(cpuinfo: str | None = None) -> str:
    """The INT8- and BF16-relevant instruction sets the CPU reports (AVX2, AVX-512, VNNI, AMX, BF16): what an INT8
    or BF16 speed-up rides on."""
    flags = cpu_flags(cpuinfo)
    if not flags:
        return "unknown"
    found = [flag for flag in INT8_ISA + BF16_ISA if flag in flags]
    return " ".join(found) if found else "none of " + "/".join(INT8_ISA + BF16_ISA)


def cpu_model() -> str:
    """The processor's marketing name (what a reader compares against), falling back to the architecture."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
