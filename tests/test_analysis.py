"""analyze_results.py and facecompress.report.results: the table against the CSVs, findings, budget edge cases, inputs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analyze_results
from facecompress.core.artifacts import SCHEMA
from facecompress.report.findings import pareto_front, pick, recommend
from facecompress.report.results import comparison_table, load_results
from facecompress.report.text import HEADERS, budget_lines, deploy_line, untrained_deploy_line
from facecompress.data.dataset import open_dataset
from facecompress.evaluation.submission import prediction_path, write_prediction_file
from facecompress.evaluation.accuracy import accuracy_row, image_rows
from facecompress.data.wider import read_mat_ground_truth

THRESHOLD = 0.5
# model -> (share of faces found, false positives per image, seed); original_pytorch repeats the original
DETECTORS = {"original_pytorch": (1.0, 1, 0), "original": (1.0, 1, 0), "quantized": (0.9, 2, 1),
             "pruned_30": (0.75, 1, 2), "structured_50_int8": (0.5, 3, 3)}
SIZES = {"original": 100e6, "quantized": 25e6, "pruned_30": 100e6, "structured_50_int8": 16e6}
LATENCY_MS = {"original_pytorch": 120.0, "original": 100.0, "quantized": 50.0, "pruned_30": 95.0,
              "structured_50_int8": 30.0}
METHODS = {"original": "export-fp32", "quantized": "dynamic-int8", "pruned_30": "unstructured-l1",
           "structured_50_int8": "dynamic-int8"}


def synthetic_predictions(dataset, found: float, false_positives: int, seed: int) -> dict[str, np.ndarray]:
    """Detections on a share of the real faces (scores above the threshold) plus a few misplaced boxes."""
    rng = np.random.default_rng(seed)
    predictions = {}
    for annotation in dataset.present:
        faces = annotation.faces.astype(np.float64)
        hits = faces[rng.random(len(faces)) < found]
        misses = np.column_stack([rng.uniform(0, 600, (false_positives, 2)), np.full((false_positives, 2), 40.0)])
        boxes = np.vstack([hits, misses])
        scores = np.concatenate([rng.uniform(0.6, 0.95, len(hits)), rng.uniform(0.2, 0.7, false_positives)])
        predictions[annotation.name] = np.column_stack([boxes, scores])
    return predictions


def manifest_for(names: list[str], provenance: str) -> dict:
    """A manifest carrying the facts analysis reads."""
    variants = {n: {"file": f"{n}.onnx", "bytes": SIZES[n], "compressed_bytes": SIZES[n] * 0.8,
                    "parameters": 26e6 if "structured" not in n else 16e6, "nonzero": 25e6, "sparsity": 0.04,
                    "flops": 31.7e9, "method": METHODS[n], "family": "rfdetr"} for n in names}
    header = {"provenance": provenance, "model": "RF-DETR nano at 384 px", "model_variant": "nano", "resolution": 384}
    return {"schema": SCHEMA, "families": {"rfdetr": header}, "variants": variants}


def timing_rows(names: list[str]) -> list[dict]:
    """Every phase per model; only inference_fixed_input is the latency."""
    return [{"model": n, "phase": phase, "median_ms": LATENCY_MS[n] * factor, "p90_ms": LATENCY_MS[n] * factor * 1.1,
             "mean_ms": LATENCY_MS[n] * factor, "n": 10}
            for n in names for phase, factor in (("preprocess", 0.2), ("inference", 1.3),
                                                 ("inference_fixed_input", 1.0))]


def write_results(root: Path, images: Path, split: Path, provenance: str = "checkpoint best.pth",
                  limit: int | None = None, models: list[str] | None = None,
                  described: str | None = None) -> tuple[Path, Path]:
    """models/ and results/ as inference.py and benchmark.py would leave them, scored by the package itself.

    `described` replaces the dataset's own description, to stand for a real WIDER FACE run.
    """
    names = models or list(DETECTORS)
    dataset = open_dataset(images, split, limit)
    ground_truth = read_mat_ground_truth(split)
    predictions = {n: synthetic_predictions(dataset, *DETECTORS[n]) for n in names}
    results = root / "results"
    for name, per_image in predictions.items():
        for image, dets in per_image.items():
            write_prediction_file(prediction_path(results / "predictions" / name, image), image, dets)
    reference = predictions.get("original")
    context = {"provenance": provenance, "dataset": described or dataset.describe()}
    accuracy = [{**accuracy_row(n, predictions[n], None if n == "original" else reference, dataset, ground_truth,
                                THRESHOLD), **context} for n in names]
    pd.DataFrame(accuracy).to_csv(results / "accuracy.csv", index=False)
    pd.DataFrame([r for n in names for r in image_rows(n, predictions[n], dataset, THRESHOLD)]).to_csv(
        results / "benchmark_results.csv", index=False)
    pd.DataFrame(timing_rows(names)).to_csv(results / "timing_results.csv", index=False)
    run = {"images": str(images), "split": str(split), "limit": limit, "threshold": THRESHOLD,
           "provenance": {"rfdetr": provenance}, "dataset": context["dataset"]}
    (results / "run.json").write_text(json.dumps(run))
    models_dir = root / "models"
    models_dir.mkdir()
    variants = [n for n in names if n in SIZES]
    (models_dir / "manifest.json").write_text(json.dumps(manifest_for(variants, provenance)))
    return models_dir, results


REAL = "WIDER FACE val, partial (8 of 3226 images, 145 faces)"


@pytest.fixture
def made(tmp_path, sample_dataset) -> tuple[Path, Path]:
    """Results of a trained checkpoint on (what stands for) WIDER FACE: findings are presented as advice."""
    return write_results(tmp_path, *sample_dataset, described=REAL)


def run(models: Path, results: Path, *extra: str) -> None:
    analyze_results.main(["--models", str(models), "--results", str(results), *extra])


def printed_table(out: str) -> dict[str, dict[str, str]]:
    """The console table parsed back: model -> header -> cell (no cell holds a space)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["model", "method"])
    rows = {}
    for line in lines[start + 2:]:
        if not line.strip():
            break
        cells = line.split()
        assert len(cells) == len(HEADERS), line
        rows[cells[0]] = dict(zip(HEADERS, cells))
    return rows


def test_table_numbers_match_the_csvs(made, capsys):
    run(*made)
    table = printed_table(capsys.readouterr().out)
    models, results = made
    accuracy = pd.read_csv(results / "accuracy.csv").set_index("model")
    timing = pd.read_csv(results / "timing_results.csv").query("phase == 'inference_fixed_input'").set_index("model")
    manifest = json.loads((models / "manifest.json").read_text())["variants"]
    assert list(table) == list(DETECTORS)
    for name, cells in table.items():
        median = timing.loc[name, "median_ms"]
        assert float(cells["median ms"]) == pytest.approx(median, abs=0.05)
        assert float(cells["p90 ms"]) == pytest.approx(timing.loc[name, "p90_ms"], abs=0.05)
        assert float(cells["speed-up"].rstrip("x")) == pytest.approx(timing.loc["original", "median_ms"] / median,
                                                                    abs=0.005)
        for header, column in (("P", "precision"), ("R", "recall"), ("F1", "f1"), ("AP50", "ap50"),
                               ("Easy", "wider_easy"), ("Medium", "wider_medium"), ("Hard", "wider_hard")):
            assert float(cells[header]) == pytest.approx(accuracy.loc[name, column], abs=0.0005), (name, header)
        if name in manifest:
            assert float(cells["MB"]) == pytest.approx(manifest[name]["bytes"] / 1e6, abs=0.05)
            assert float(cells["smaller"].rstrip("x")) == pytest.approx(
                manifest["original"]["bytes"] / manifest[name]["bytes"], abs=0.005)
            assert cells["method"] == manifest[name]["method"]
        else:
            assert cells["MB"] == cells["smaller"] == "-"
    assert table["original"]["agree"] == "ref"
    assert float(table["quantized"]["agree"]) == pytest.approx(accuracy.loc["quantized", "agreement_ap50"], abs=5e-4)


def test_summary_holds_the_same_table_and_findings(made, capsys):
    run(*made)
    out = capsys.readouterr().out
    summary = (made[1] / "summary.md").read_text()
    for name, cells in printed_table(out).items():
        assert "| " + " | ".join(cells[h] for h in HEADERS) + " |" in summary
    for line in out.splitlines():
        if line.startswith(("Most accurate", "Smallest", "Fastest", "Pareto", "Budget", "Recommendation")):
            assert f"- {line}" in summary


def test_findings_from_the_data(made, capsys):
    run(*made)
    out = capsys.readouterr().out
    # the synthetic original finds every face: most accurate; structured_50_int8 is smallest and fastest
    assert "Most accurate (WIDER Hard AP): original (" in out
    assert "Smallest on disk: structured_50_int8 (" in out
    assert "Fastest (median latency): structured_50_int8 (" in out
    assert "Pareto-optimal, size vs WIDER Hard AP: structured_50_int8, quantized, original" in out
    assert "UNTRAINED" not in out and "GENERATED" not in out and "llustrative" not in out


def test_budget_flag_changes_the_recommendation(made, capsys):
    results = load_results(*made)
    hard = comparison_table(results).set_index("model")["wider_hard"]
    drop = (hard["original"] - hard["quantized"]) / 0.01
    assert drop > 0
    run(*made, "--max-ap-drop", f"{drop + 0.01:.4f}")
    out = capsys.readouterr().out
    assert "Recommendation: smallest within budget: quantized (" in out
    run(*made, "--max-ap-drop", f"{drop - 0.01:.4f}")
    assert "Recommendation: smallest within budget: quantized (" not in capsys.readouterr().out


def test_untrained_on_generated_sample_is_labelled_illustrative(tmp_path, sample_dataset, capsys):
    run(*write_results(tmp_path, *sample_dataset, provenance="untrained (seed 0)"), "--max-ap-drop", "100")
    out = capsys.readouterr().out
    header = out.splitlines()[:4]
    assert "untrained (seed 0)" in header[0] and "generated sample" in header[0]
    assert any(line.startswith("UNTRAINED") for line in header)
    assert any(line.startswith("GENERATED SAMPLE") for line in header)
    assert "Illustrative only, not a real accuracy comparison: smallest within budget" in out
    assert "Recommendation:" not in out


def frame(rows: list[tuple]) -> pd.DataFrame:
    """A comparison table with the columns the findings use: (model, bytes, median_ms, wider_hard)."""
    table = pd.DataFrame(rows, columns=["model", "bytes", "median_ms", "wider_hard"])
    return table.assign(in_manifest=True)


def test_no_variant_within_budget():
    table = frame([("original", 100, 10, 0.80), ("quantized", 25, 5, 0.78), ("pruned_30", 100, 9, 0.70)])
    rec = recommend(table, "wider_hard", 1.0)
    assert rec.within == () and rec.smallest.model is None and rec.fastest.model is None
    assert rec.candidates == 2
    assert "keep original" in budget_lines(table, rec, illustrative=False)[-1]


def test_a_drop_of_exactly_the_budget_is_within():
    table = frame([("original", 100, 10, 0.80), ("quantized", 25, 5, 0.79)])
    assert recommend(table, "wider_hard", 1.0).within == ("quantized",)


def test_ties_on_size_go_to_the_more_accurate_then_the_faster():
    table = frame([("original", 100, 10, 0.80), ("a_int8", 25, 6, 0.795), ("b_int8", 25, 5, 0.799),
                   ("c_int8", 25, 4, 0.799)])
    rec = recommend(table, "wider_hard", 1.0)
    assert rec.smallest.model == "c_int8" and set(rec.smallest.ties) == {"a_int8", "b_int8"}
    assert rec.fastest.model == "c_int8" and rec.fastest.ties == ()
    exact = recommend(frame([("original", 100, 10, 0.8), ("x", 25, 5, 0.8), ("y", 25, 5, 0.8)]), "wider_hard", 1.0)
    assert exact.smallest.model == "x" and exact.smallest.ties == ("y",)  # all equal: table order


def test_only_a_variant_that_beats_the_original_is_picked():
    table = frame([("original", 100, 10, 0.80), ("quantized", 25, 12, 0.80), ("pruned_1", 100, 9, 0.80)])
    rec = recommend(table, "wider_hard", 1.0)
    assert rec.smallest.model == "quantized" and rec.fastest.model == "pruned_1"  # not the one that is slower
    slower = recommend(frame([("original", 100, 10, 0.80), ("quantized", 25, 12, 0.80)]), "wider_hard", 1.0)
    assert slower.fastest.model is None and slower.smallest.model == "quantized"
    lines = budget_lines(table.iloc[:2].assign(size_ratio=4.0, speedup=0.8), slower, illustrative=False)
    assert lines[-1].endswith("fastest within budget: none faster than original, keep it")


def test_a_single_model():
    alone = frame([("original", 100, 10, 0.80)])
    rec = recommend(alone, "wider_hard", 1.0)
    assert rec.candidates == 0 and rec.within == ()
    assert pick(alone, "bytes", "wider_hard").model == "original"
    assert pareto_front(alone, "bytes", "wider_hard") == ["original"]
    one = recommend(frame([("original", 100, 10, 0.80), ("quantized", 25, 5, 0.80)]), "wider_hard", 0.0)
    assert one.smallest.model == one.fastest.model == "quantized"


def test_no_reference_means_no_budget():
    table = frame([("quantized", 25, 5, 0.78)])
    rec = recommend(table, "wider_hard", 1.0)
    assert math.isnan(rec.floor) and rec.within == ()
    assert "benchmark.py --only original" in budget_lines(table, rec, illustrative=False)[0]


def test_unmeasured_values_are_left_out():
    table = frame([("original", 100, 10, 0.80), ("quantized", 25, math.nan, 0.80), ("fp16", 50, 9, math.nan)])
    rec = recommend(table, "wider_hard", 1.0)
    assert rec.within == ("quantized",) and rec.fastest.model is None
    assert pick(table, "median_ms", "wider_hard").model == "fp16"


def test_pareto_front():
    table = frame([("big_good", 100, 10, 0.9), ("small_bad", 10, 1, 0.5), ("dominated", 50, 5, 0.4),
                   ("twin", 10, 1, 0.5), ("middle", 50, 5, 0.7)])
    assert pareto_front(table, "bytes", "wider_hard") == ["small_bad", "twin", "middle", "big_good"]
    assert pareto_front(table.iloc[:0], "bytes", "wider_hard") == []


def test_missing_manifest_and_results_name_the_command(tmp_path, made, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(tmp_path / "nowhere", made[1])
    assert exit_info.value.code == 2 and "run `python inference.py`" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        run(made[0], empty)
    assert exit_info.value.code == 2 and "run `python benchmark.py`" in capsys.readouterr().err


def test_a_variant_without_results_is_named_with_its_command(made, caplog, capsys):
    models, results = made
    manifest = json.loads((models / "manifest.json").read_text())
    manifest["variants"]["fp16"] = {**manifest["variants"]["quantized"], "method": "fp16", "bytes": 50e6}
    (models / "manifest.json").write_text(json.dumps(manifest))
    run(models, results)
    assert "fp16: in the manifest but has no accuracy results; run `python benchmark.py --only fp16`" in caplog.text
    cells = printed_table(capsys.readouterr().out)["fp16"]
    assert cells["MB"] == "50.0" and cells["median ms"] == cells["Hard"] == "-"


def test_help_gives_every_default(capsys):
    with pytest.raises(SystemExit):
        analyze_results.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--models", "--results", "--max-ap-drop", "--metric"):
        assert flag in text
    assert text.count("default:") == 4


def test_negative_budget_is_refused(capsys):
    with pytest.raises(SystemExit):
        analyze_results.parse_args(["--max-ap-drop", "-1"])
    assert "must be >= 0" in capsys.readouterr().err


def test_smoke_on_real_benchmark_output(tiny_models, tiny_results, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(tiny_results, results)
    run(tiny_models, results)
    out = capsys.readouterr().out
    assert set(printed_table(out)) == {"original_pytorch", "original", "quantized"}
    assert "Illustrative only" in out and (results / "summary.md").is_file()


def test_the_deploy_line_names_the_fastest_within_budget_with_its_labelled_drop_and_the_search_estimate():
    table = pd.DataFrame([("scrfd_original", 100, 10, 0.95, 0.94, 0.83, 1.0, 1.0, float("nan")),
                          ("scrfd_static_int8", 25, 6, 0.95, 0.94, 0.80, 4.0, 1.7, float("nan")),
                          ("scrfd_int8_budget", 25, 5, 0.94, 0.94, 0.825, 4.0, 2.0, 0.4)],
                         columns=["model", "bytes", "median_ms", "wider_easy", "wider_medium", "wider_hard",
                                  "size_ratio", "speedup", "search_drop"]).assign(in_manifest=True, family="scrfd")
    line = deploy_line(table, "scrfd", recommend(table, "wider_hard", 1.0, "scrfd"), illustrative=False)
    assert line.startswith("Deploy (scrfd): scrfd_int8_budget, 2.00x faster and 4.00x smaller than scrfd_original")
    assert "Easy / Medium / Hard -1.0 / +0.0 / -0.5 AP points" in line
    assert "estimated -0.4 points of agreement" in line and "against -0.5 Hard points measured" in line
    strict = recommend(table, "wider_hard", 0.1, "scrfd")
    assert "no compressed variant is faster within the budget" in deploy_line(table, "scrfd", strict, False)


def test_an_untrained_familys_deploy_line_is_judged_on_agreement_alone():
    table = pd.DataFrame([("original", 100, 10, 0.001, float("nan"), 1.0, 1.0, float("nan")),
                          ("int8_budget", 30, 5, 0.0, 0.62, 3.3, 2.0, 0.8)],
                         columns=["model", "bytes", "median_ms", "wider_hard", "agreement_ap50", "size_ratio",
                                  "speedup", "search_drop"]).assign(in_manifest=True, family="rfdetr")
    rec = recommend(table, "wider_hard", 1.0, "rfdetr")
    line = untrained_deploy_line(table, "rfdetr", rec)
    assert line.startswith("Deploy (rfdetr, UNTRAINED, judged on agreement with FP32 only")
    assert "int8_budget is within the 1-point budget (-0.8 points of agreement" in line and "2.00x faster" in line
    strict = recommend(table, "wider_hard", 0.5, "rfdetr")
    assert "is outside the 0.5-point budget" in untrained_deploy_line(table, "rfdetr", strict)
