"""The summary's pruning section: unstructured rows labelled for what they buy, each channel-pruned network
shown before and after recovery side by side, with its static INT8 and its family's original."""

from __future__ import annotations

import math

import pandas as pd

from facecompress.report.pruning import SPARSE_LABEL, channel_rows, sparse_line
from facecompress.report.text import pruning_parts


def _row(model: str, method: str, hard: float, speedup: float, flops: float = 4e9) -> dict:
    return {"model": model, "method": method, "family": "scrfd", "flops": flops, "speedup": speedup,
            "wider_easy": hard + 0.1, "wider_medium": hard + 0.05, "wider_hard": hard}


TABLE = pd.DataFrame([_row("scrfd_original", "export-fp32", 0.788, 1.0, 6.86e9),
                      _row("scrfd_pruned_30", "unstructured-l1", 0.77, 0.99),
                      _row("scrfd_channel_25", "channel-l1", 0.002, 1.40),
                      _row("scrfd_channel_25_recovered", "channel-l1-recovered", 0.55, 1.41),
                      _row("scrfd_channel_25_recovered_static_int8", "static-qdq-int8", 0.53, 1.9),
                      _row("scrfd_channel_25_recovered_int8_budget", "int8-budget", 0.545, 1.8),
                      _row("scrfd_channel_50", "channel-l1", 0.001, math.nan)])
RECOVERY = {"steps_done": 900, "steps_planned": 2400, "capped": True, "seconds": 480.0,
            "images": "calibration folder calibration/ (292 images)"}
VARIANTS = {"scrfd_channel_25": {"channel_pruning": {"channels_before": 2170, "channels_after": 1666}},
            "scrfd_channel_25_recovered": {"channel_pruning": {"recovery": RECOVERY}},
            "scrfd_channel_25_recovered_static_int8": {"parent": "scrfd_channel_25_recovered",
                                                       "method": "static-qdq-int8"},
            "scrfd_channel_25_recovered_int8_budget": {"parent": "scrfd_channel_25_recovered",
                                                       "method": "int8-budget"},
            "scrfd_channel_50": {}}


def test_each_channel_pruned_network_is_shown_before_and_after_recovery():
    first, second = channel_rows(TABLE, VARIANTS)
    assert first["pruned network"] == "scrfd_channel_25" and first["channels removed"] == "23%"
    assert first["Easy / Medium / Hard before recovery"].endswith("0.002")
    assert first["after recovery"] == "0.650 / 0.600 / 0.550" and first["speed-up"] == "1.41x"
    assert first["after + static INT8 (speed-up)"] == "0.630 / 0.580 / 0.530 (1.90x)"
    assert first["after + searched INT8 (speed-up)"] == "0.645 / 0.595 / 0.545 (1.80x)"
    assert second["after + static INT8 (speed-up)"] == second["after + searched INT8 (speed-up)"] == "-"
    assert first["FP32 original"].endswith("0.788")
    assert first["recovery"] == "900/2400 steps in 8.0 min, capped by --recovery-minutes, " + RECOVERY["images"]
    assert (second["after recovery"], second["speed-up"], second["recovery"]) == (
        "-", "-", "not run (--recovery-minutes 0)")


def test_unstructured_rows_are_labelled_with_their_measured_speed_up():
    line = sparse_line(TABLE)
    assert SPARSE_LABEL in line and "scrfd_pruned_30 0.99x" in line
    assert sparse_line(TABLE[TABLE["method"] != "unstructured-l1"]) is None
    parts = pruning_parts(TABLE, VARIANTS)
    assert parts[0] == "## Pruning" and "| scrfd_channel_25 |" in parts[2]
    assert pruning_parts(TABLE[TABLE["method"] == "export-fp32"], {}) == []


def test_other_runtimes_rows_add_no_network_and_a_skipped_twin_keeps_its_recovered_row():
    others = pd.DataFrame([_row("scrfd_channel_25@openvino", "channel-l1", 0.002, 1.5),
                           _row("scrfd_pruned_30@openvino", "unstructured-l1", 0.77, 1.0)])
    with_others = pd.concat([TABLE, others], ignore_index=True)
    assert [r["pruned network"] for r in channel_rows(with_others, VARIANTS)] == ["scrfd_channel_25", "scrfd_channel_50"]
    assert "@openvino" not in sparse_line(with_others)
    alone = TABLE[TABLE["model"] != "scrfd_channel_25"]
    row = next(r for r in channel_rows(alone, VARIANTS) if r["pruned network"] == "scrfd_channel_25")
    assert (row["Easy / Medium / Hard before recovery"], row["after recovery"]) == ("-", "0.650 / 0.600 / 0.550")
