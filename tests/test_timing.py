"""Timing helpers: statistics by hand, and a prefetcher that keeps order and loses nothing."""

from __future__ import annotations

import threading

import pytest

from facecompress.run.timing import prefetch, summarize, time_calls


def test_summarize_by_hand():
    stats = summarize([1, 2, 3, 4, 10])
    assert stats == {"median_ms": 3.0, "p90_ms": 7.6, "mean_ms": 4.0, "n": 5}
    assert summarize([])["n"] == 0


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
