"""Timing helpers: statistics by hand, and a prefetcher that keeps order and loses nothing."""

from __future__ import annotations

import math
import threading
import time

import pytest

from facecompress.run.latency import busy_models, latency_rows
from facecompress.run.timing import paired_speedup, prefetch, spread, summarize, time_calls


def test_summarize_by_hand():
    stats = summarize(list(range(1, 21)))
    assert stats == {"median_ms": 10.5, "p90_ms": 18.1, "mean_ms": 10.5, "n": 20}
    assert summarize([])["n"] == 0


def test_p90_is_left_out_below_twenty_runs():
    """Ten runs make "p90" the second-largest value: no tail estimate, so none is reported."""
    stats = summarize([1, 2, 3, 4, 10])
    assert (stats["median_ms"], stats["mean_ms"], stats["n"]) == (3.0, 4.0, 5) and math.isnan(stats["p90_ms"])


def test_time_calls_warms_up_first():
    calls = []
    timings = time_calls(lambda: calls.append(1), warmup=3, repeats=4)
    assert len(calls) == 7 and len(timings) == 4 and all(t >= 0 for t in timings)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_prefetch_keeps_order_and_runs_ahead_in_another_thread(depth):
    threads = set()

    def square(x):
        threads.add(threading.get_ident())
        return x * x

    out = [(item, result) for item, result, _ in prefetch(square, range(20), depth=depth)]
    assert out == [(i, i * i) for i in range(20)]
    assert threads and threading.get_ident() not in threads


def test_prefetch_propagates_errors():
    def fail_on_three(x):
        if x == 3:
            raise ValueError("bad image 3")
        return x

    seen = []
    with pytest.raises(ValueError, match="bad image 3"):
        for item, _, _ in prefetch(fail_on_three, range(6)):
            seen.append(item)
    assert seen == [0, 1, 2]


def test_speedups_are_paired_per_round_and_a_busy_machine_is_flagged():
    """Load that comes and goes hits every model of a round alike: the paired ratio ignores it, the spread shows it."""
    load = iter([1, 1, 1, 8, 8, 8, 1, 1, 1, 1] * 10)  # rounds 2 and 3 (of 5 per cycle) run on a busy machine
    current = {"factor": 1}

    def model(ms: float):
        def call():
            time.sleep(ms * current["factor"] / 1000)
        return call

    def reference():
        current["factor"] = next(load)  # the reference opens each round in turn order; load set per call
        model(4)()

    rows = latency_rows({"original": reference, "fast": model(2)}, {"original": "original", "fast": "original"},
                        rounds=10, warmup=0,
                        context={"original": {}, "fast": {}})
    by_model = {row["model"]: row for row in rows}
    assert by_model["original"]["speedup"] == 1.0
    assert 1.6 < by_model["fast"]["speedup"] < 2.5
    assert busy_models(rows) and all(row["busy"] for row in rows)
    assert len({row["timing_set"] for row in rows}) == 1


def test_spread_and_paired_speedup_by_hand():
    assert spread([10.0] * 5) == 0.0
    assert paired_speedup([4.0, 40.0, 4.0], [2.0, 20.0, 1.0]) == 2.0  # the median of 2, 2, 4
