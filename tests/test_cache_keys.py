"""The prediction cache names what it depends on: each input changed in turn re-runs exactly the rows it affects.

A prediction file counts as re-made when its inode or modification time changed (files are written to a
temporary name and renamed, so a rewrite always gives a new inode).
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
from PIL import Image

import benchmark
from facecompress.core.checksums import sha256_file
from facecompress.data.dataset import open_dataset
from facecompress.detectors.rfdetr import family as rfdetr_family
from facecompress.run.cache import cache_key

ONNX_MODELS = ["original", "quantized"]


def stamps(results, names: list[str]) -> dict[tuple[str, str], tuple[int, int]]:
    """(inode, mtime) of every prediction file of `names`."""
    return {(name, str(path.relative_to(results / "predictions" / name))): (path.stat().st_ino, path.stat().st_mtime_ns)
            for name in names for path in (results / "predictions" / name).rglob("*.txt")}


def remade(before: dict, after: dict) -> set[tuple[str, str]]:
    """Prediction files written again (or newly) between two stamps."""
    return {key for key, stamp in after.items() if before.get(key) != stamp}


def rerun(tiny_results, tmp_path, images, split, models, *extra: str):
    """Copy the cached results, take their stamps, run benchmark.py again: (results folder, stamps before)."""
    out = tmp_path / "results"
    shutil.copytree(tiny_results, out)
    before = stamps(out, ONNX_MODELS)
    benchmark.main(["--images", str(images), "--split", str(split), "--models", str(models), "--out", str(out),
                    "--limit", "4", "--no-torch", "--repeats", "1", "--warmup", "0", *extra])
    return out, before


def test_an_unchanged_rerun_remakes_nothing(tiny_results, tiny_models, sample_dataset, tmp_path):
    out, before = rerun(tiny_results, tmp_path, *sample_dataset, tiny_models)
    assert before and not remade(before, stamps(out, ONNX_MODELS))


def test_new_pixels_under_the_same_name_rerun_exactly_that_image(tiny_results, tiny_models, sample_dataset,
                                                                 tmp_path):
    images, split = sample_dataset
    copied = tmp_path / "images"
    shutil.copytree(images, copied)
    victim = open_dataset(images, split, limit=4).present[1]
    picture = Image.open(copied / victim.name).convert("RGB")
    Image.eval(picture, lambda v: 255 - v).save(copied / victim.name, quality=95)  # same name, other pixels
    out, before = rerun(tiny_results, tmp_path, copied, split, tiny_models)
    changed = remade(before, stamps(out, ONNX_MODELS))
    assert changed == {(name, f"{victim.name[:-4]}.txt") for name in ONNX_MODELS}


def test_another_decoder_version_reruns_that_family(tiny_results, tiny_models, sample_dataset, tmp_path,
                                                    monkeypatch):
    monkeypatch.setattr(rfdetr_family, "DECODER_VERSION", rfdetr_family.DECODER_VERSION + 1)
    out, before = rerun(tiny_results, tmp_path, *sample_dataset, tiny_models)
    assert remade(before, stamps(out, ONNX_MODELS)) == set(before)


def test_another_thread_count_reruns_every_row(tiny_results, tiny_models, sample_dataset, tmp_path):
    out, before = rerun(tiny_results, tmp_path, *sample_dataset, tiny_models, "--threads", "1")
    assert remade(before, stamps(out, ONNX_MODELS)) == set(before)
    assert json.loads((out / "predictions" / "original" / "MODEL.json").read_text())["key"]["threads"] == 1


def test_another_model_file_reruns_only_that_model(tiny_results, tiny_models, sample_dataset, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    manifest = json.loads((models / "manifest.json").read_text())
    entry = manifest["variants"]["quantized"]
    shutil.copyfile(models / manifest["variants"]["original"]["file"], models / entry["file"])  # same name, other model
    entry["sha256"] = sha256_file(models / entry["file"])
    (models / "manifest.json").write_text(json.dumps(manifest))
    out, before = rerun(tiny_results, tmp_path, *sample_dataset, models)
    assert {name for name, _ in remade(before, stamps(out, ONNX_MODELS))} == {"quantized"}


def test_new_ground_truth_rescores_without_rerunning(tiny_results, tiny_models, sample_dataset, tmp_path):
    images, split = sample_dataset
    copied = tmp_path / "split"
    shutil.copytree(split, copied)
    mat = copied / "wider_hard_val.mat"
    mat.write_bytes(mat.read_bytes() + b"\0")  # other bytes, same boxes: the digest must follow the bytes
    out, before = rerun(tiny_results, tmp_path, images, copied, tiny_models)
    assert not remade(before, stamps(out, ONNX_MODELS))
    old = pd.read_csv(tiny_results / "accuracy.csv")["ground_truth_sha256"]
    new = pd.read_csv(out / "accuracy.csv")["ground_truth_sha256"]
    assert old.nunique() == new.nunique() == 1 and old[0] != new[0]
    assert json.loads((out / "run.json").read_text())["ground_truth"]["wider_hard_val.mat"] == sha256_file(mat)


def test_the_key_names_runtime_precision_threads_and_decoding(tiny_models):
    manifest = json.loads((tiny_models / "manifest.json").read_text())
    key = cache_key("original", manifest, 0.01)
    assert key["runtime"].startswith("onnxruntime ") and key["decoding"]["decoder"] == "rfdetr"
    assert key["decoding"]["resolution"] == 64
    others = [cache_key("original", manifest, 0.01, runtime="openvino"),
              cache_key("original", manifest, 0.01, precision="bf16"), cache_key("original", manifest, 0.01, 2),
              cache_key("original", manifest, 0.05)]
    assert all(other != key for other in others)
