"""benchmark.py end to end on tiny models: predictions, the three CSVs, resumability, and the accuracy layer."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import benchmark
from facecompress.core.checksums import sha256_file
from facecompress.core.errors import InputError
from facecompress.run.cache import cache_key
from facecompress.data.dataset import open_dataset
from facecompress.evaluation.submission import prediction_path, read_prediction_dir
from facecompress.evaluation.accuracy import agreement_confidence

MODELS = ["original_pytorch", "original", "quantized"]


def test_outputs_exist_with_one_row_per_model_and_image(tiny_results, sample_dataset):
    names = [a.name for a in open_dataset(*sample_dataset, limit=4).present]
    per_image = pd.read_csv(tiny_results / "benchmark_results.csv")
    assert sorted(per_image["model"].unique()) == sorted(MODELS)
    assert len(per_image) == len(MODELS) * 4 and set(per_image["image"]) == set(names)
    accuracy = pd.read_csv(tiny_results / "accuracy.csv")
    assert list(accuracy["model"]) == MODELS
    assert accuracy["provenance"].eq("untrained (seed 0)").all() and accuracy["family"].eq("rfdetr").all()
    assert accuracy["dataset"].str.startswith("generated sample").all()
    timing = pd.read_csv(tiny_results / "timing_results.csv")
    assert set(timing["phase"]) == {"preprocess", "inference", "postprocess", "inference_fixed_input", "image_loop"}
    assert (timing.groupby("model").size() == 5).all() and (timing["median_ms"] > 0).all()
    for model in MODELS:
        assert len(read_prediction_dir(tiny_results / "predictions" / model)) == 4


def test_csv_counts_agree_with_the_prediction_files(tiny_results):
    per_image = pd.read_csv(tiny_results / "benchmark_results.csv")
    accuracy = pd.read_csv(tiny_results / "accuracy.csv").set_index("model")
    for model in MODELS:
        rows = per_image[per_image["model"] == model]
        predictions = read_prediction_dir(tiny_results / "predictions" / model)
        for row in rows.itertuples():
            assert row.detections == int(np.sum(predictions[row.image][:, 4] >= row.threshold))
            assert row.tp + row.fn == row.faces
        assert accuracy.loc[model, "tp"] == rows["tp"].sum() and accuracy.loc[model, "fn"] == rows["fn"].sum()


def test_pytorch_and_onnx_original_write_the_same_detections(tiny_results):
    torch_rows = read_prediction_dir(tiny_results / "predictions" / "original_pytorch")
    onnx_rows = read_prediction_dir(tiny_results / "predictions" / "original")
    for name, dets in onnx_rows.items():
        assert dets.shape == torch_rows[name].shape
        np.testing.assert_allclose(dets[:, 4], torch_rows[name][:, 4], atol=1e-4)


def test_restart_only_runs_missing_images(tiny_results, tiny_models, sample_dataset, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(tiny_results, out)
    images, split = sample_dataset
    victim = prediction_path(out / "predictions" / "quantized", open_dataset(images, split).present[2].name)
    victim.unlink()
    untouched = prediction_path(out / "predictions" / "original", open_dataset(images, split).present[0].name)
    stamp = untouched.stat().st_mtime_ns
    benchmark.main(["--images", str(images), "--split", str(split), "--models", str(tiny_models),
                    "--out", str(out), "--limit", "4", "--no-torch", "--repeats", "1", "--warmup", "0"])
    assert victim.is_file() and untouched.stat().st_mtime_ns == stamp
    timing = pd.read_csv(out / "timing_results.csv")
    assert timing.query("model == 'quantized' and phase == 'inference'")["n"].item() == 1
    assert timing.query("model == 'original' and phase == 'inference'")["n"].item() == 4  # kept from before


def test_missing_manifest_is_a_one_line_error(tmp_path, sample_dataset, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--images", str(sample_dataset[0]), "--split", str(sample_dataset[1]),
                        "--models", str(tmp_path), "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    assert "run `python inference.py` first" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_unknown_only_name(tiny_models, sample_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--images", str(sample_dataset[0]), "--split", str(sample_dataset[1]),
                        "--models", str(tiny_models), "--out", str(tmp_path), "--only", "nope"])
    assert "--only nope: not in the manifest" in capsys.readouterr().err


def test_agreement_confidence_falls_back_for_untrained_scores():
    confident = {"a": np.array([[0, 0, 1, 1, 0.9], [0, 0, 1, 1, 0.1]])}
    assert agreement_confidence(confident, 0.5) == (0.5, "score >= 0.5")
    weak = {"a": np.column_stack([np.zeros((150, 4)), np.linspace(0.2, 0.01, 150)]),
            "b": np.column_stack([np.zeros((3, 4)), [0.3, 0.2, 0.1]])}
    confidence, rule = agreement_confidence(weak, 0.5)
    assert "top 100" in rule
    assert confidence == pytest.approx(np.median([np.linspace(0.2, 0.01, 150)[99], 0.1]))


def bench(sample_dataset, models, out, *extra: str) -> None:
    images, split = sample_dataset
    benchmark.main(["--images", str(images), "--split", str(split), "--models", str(models), "--out", str(out),
                    "--limit", "4", "--repeats", "2", "--warmup", "0", *extra])


def test_only_narrows_the_run_but_every_cached_model_stays_in_the_tables(tiny_results, tiny_models,
                                                                         sample_dataset, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(tiny_results, out)
    victim = prediction_path(out / "predictions" / "quantized", open_dataset(*sample_dataset).present[1].name)
    victim.unlink()
    bench(sample_dataset, tiny_models, out, "--only", "quantized")
    accuracy = pd.read_csv(out / "accuracy.csv")
    assert list(accuracy["model"]) == MODELS
    assert accuracy.set_index("model")["agreement_ap50"].notna()[["original_pytorch", "quantized"]].all()
    assert len(pd.read_csv(out / "benchmark_results.csv")) == len(MODELS) * 4
    timing = pd.read_csv(out / "timing_results.csv")
    assert set(timing["model"]) == set(MODELS)
    assert timing.query("model == 'quantized' and phase == 'inference'")["n"].item() == 1  # only what ran


def test_latency_is_paired_with_the_reference_and_names_the_cpu(tiny_results):
    timing = pd.read_csv(tiny_results / "timing_results.csv")
    fixed = timing.query("phase == 'inference_fixed_input'").set_index("model")
    assert fixed.loc["original", "speedup"] == 1.0 and fixed["speedup"].gt(0).all()
    assert fixed["timing_set"].nunique() == 1  # every model timed in the same rounds
    assert fixed["cpu_isa"].astype(str).str.len().gt(0).all() and "cpu" in fixed


def test_a_corrupt_model_file_is_a_one_line_error_and_the_others_still_run(tiny_models, sample_dataset, tmp_path,
                                                                        capsys):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    broken = next(models.glob("*-int8.onnx"))
    broken.write_bytes(broken.read_bytes()[:1000])
    with pytest.raises(SystemExit) as exit_info:
        bench(sample_dataset, models, tmp_path / "results", "--no-torch")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert f"{broken}: sha256 differs from the manifest" in err
    assert list(pd.read_csv(tmp_path / "results" / "accuracy.csv")["model"]) == ["original"]


def test_inference_says_why_it_rebuilds_a_damaged_file(tiny_models, sample_dataset, tmp_path, caplog):
    import inference

    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    broken = next(models.glob("*-int8.onnx"))
    broken.write_bytes(b"not onnx")
    images, split = sample_dataset
    inference.main(["--detector", "rfdetr", "--images", str(images), "--split", str(split), "--out", str(models),
                    "--resolution", "64", "--prune", "--structured", "--skip", "static_int8", "fp16", "--limit", "4",
                    "--calibration-images", "2", "--parity-images", "1"])
    assert "quantized: file missing or changed since it was built" in caplog.text
    assert "original: " not in caplog.text  # the intact original is reused, not rebuilt


def test_unreadable_images_leave_the_scored_set_and_are_listed(tiny_models, sample_dataset, tmp_path):
    images, split = tmp_path / "images", tmp_path / "split"
    shutil.copytree(sample_dataset[0], images)
    shutil.copytree(sample_dataset[1], split)
    first = open_dataset(images, split).present[0].name
    (images / first).write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "results"
    bench((images, split), tiny_models, out, "--no-torch", "--skip-unreadable")
    accuracy = pd.read_csv(out / "accuracy.csv")
    assert (accuracy["images"] == 3).all() and accuracy["dataset"].str.contains("1 unreadable image").all()
    assert first not in set(pd.read_csv(out / "benchmark_results.csv")["image"])
    assert json.loads((out / "run.json").read_text())["skipped_images"] == [first]


def test_a_manifest_of_another_schema_is_refused(tiny_models, sample_dataset, tmp_path, capsys):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    manifest = json.loads((models / "manifest.json").read_text())
    (models / "manifest.json").write_text(json.dumps({**manifest, "schema": 0}))
    with pytest.raises(SystemExit) as exit_info:
        bench(sample_dataset, models, tmp_path / "results")
    assert exit_info.value.code == 2 and "schema 0" in capsys.readouterr().err


def test_the_reference_rows_cache_follows_the_checkpoint_file(tmp_path):
    checkpoint = tmp_path / "best.pth"
    checkpoint.write_bytes(b"weights one")
    header = {"resolution": 64, "provenance": "checkpoint best.pth (sha256 …)",
              "source": {"kind": "checkpoint", "path": str(checkpoint), "sha256": sha256_file(checkpoint)}}
    manifest = {"families": {"rfdetr": header}, "variants": {}}
    key = cache_key("original_pytorch", manifest, 0.01)
    assert key["sha256"] == sha256_file(checkpoint)
    checkpoint.write_bytes(b"weights two")  # same name, same provenance string, other weights
    with pytest.raises(InputError, match="changed since the manifest was made"):
        cache_key("original_pytorch", manifest, 0.01)


def test_a_run_stopped_before_its_timings_times_them_next_time(tiny_results, tiny_models, sample_dataset, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(tiny_results, out)
    (out / "timing_results.csv").write_text("\n")  # killed while writing: nothing a reader can use
    bench(sample_dataset, tiny_models, out)
    fixed = pd.read_csv(out / "timing_results.csv").query("phase == 'inference_fixed_input'")
    assert set(fixed["model"]) == set(MODELS) and fixed["timing_set"].nunique() == 1
    bench(sample_dataset, tiny_models, out)  # nothing changed: nothing timed again
    again = pd.read_csv(out / "timing_results.csv").query("phase == 'inference_fixed_input'")
    assert list(again["timing_set"]) == list(fixed["timing_set"])


def test_a_damaged_reference_leaves_its_speedups_unmeasured_not_the_run_stopped(tiny_models, tiny_results,
                                                                                sample_dataset, tmp_path, capsys):
    models, out = tmp_path / "models", tmp_path / "results"
    shutil.copytree(tiny_models, models)
    shutil.copytree(tiny_results, out)
    (models / "rfdetr-nano.onnx").write_bytes(b"damaged")
    prediction_path(out / "predictions" / "quantized", open_dataset(*sample_dataset).present[0].name).unlink()
    with pytest.raises(SystemExit) as exit_info:
        bench(sample_dataset, models, out, "--only", "quantized")
    assert exit_info.value.code == 2 and "rfdetr-nano.onnx: sha256 differs" in capsys.readouterr().err
    assert list(pd.read_csv(out / "accuracy.csv")["model"]) == MODELS
    fixed = pd.read_csv(out / "timing_results.csv").query("phase == 'inference_fixed_input'").set_index("model")
    assert np.isnan(fixed.loc["quantized", "speedup"]) and fixed.loc["quantized", "median_ms"] > 0


def test_an_unreadable_image_without_the_flag_stops_the_run_with_one_line(tiny_models, sample_dataset, tmp_path,
                                                                          capsys):
    images, split = tmp_path / "images", tmp_path / "split"
    shutil.copytree(sample_dataset[0], images)
    shutil.copytree(sample_dataset[1], split)
    broken = open_dataset(images, split).present[1].name
    (images / broken).write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(SystemExit) as exit_info:
        bench((images, split), tiny_models, tmp_path / "results", "--no-torch")
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2 and len(errors) == 1 and broken in errors[0] and "unreadable image" in errors[0]
    assert not (tmp_path / "results" / "accuracy.csv").exists()  # no table that would count it as skipped
