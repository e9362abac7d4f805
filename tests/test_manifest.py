"""Manifest names, file facts and the rules that keep entries honest across re-runs."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from facecompress.compress.manifest import (compressed_bytes, current_manifest, file_facts, file_name, intact,
                                            variant_name, write_manifest)
from facecompress.core.artifacts import read_manifest
from facecompress.core.checksums import sha256_file
from facecompress.core.errors import InputError
from model_fixtures import tiny_graph


@pytest.mark.parametrize("prune, structured, precision, name, file", [
    (None, None, "fp32", "original", "rfdetr-nano.onnx"),
    (None, None, "int8", "quantized", "rfdetr-nano-int8.onnx"),
    (None, None, "int8-static", "static_int8", "rfdetr-nano-int8-static.onnx"),
    (None, None, "fp16", "fp16", "rfdetr-nano-fp16.onnx"),
    (0.01, None, "fp32", "pruned_1", "rfdetr-nano-prune1.onnx"),
    (0.3, None, "int8", "pruned_30_int8", "rfdetr-nano-prune30-int8.onnx"),
    (0.015, None, "fp32", "pruned_1.5", "rfdetr-nano-prune1.5.onnx"),
    (None, 0.5, "int8-static", "structured_50_static_int8", "rfdetr-nano-struct50-int8-static.onnx"),
])
def test_names_come_from_one_place(prune, structured, precision, name, file):
    assert variant_name(prune, structured, precision) == name
    assert file_name("rfdetr-nano", prune, structured, precision) == file


def _save(path, table, external=False):
    model = tiny_graph(table, np.ones((2, 1, 3, 3), np.float32))
    onnx.save(model, str(path), save_as_external_data=external, location=path.name + ".data", size_threshold=0)
    return path


def test_file_facts_count_external_data(tmp_path):
    table = np.zeros((1, 2, 8, 8), np.float32)
    single = file_facts(_save(tmp_path / "a.onnx", table), tmp_path)
    split = file_facts(_save(tmp_path / "b.onnx", table, external=True), tmp_path)
    assert single["files"] == ["a.onnx"] and single["bytes"] == (tmp_path / "a.onnx").stat().st_size
    assert split["files"] == ["b.onnx", "b.onnx.data"]
    assert split["bytes"] == sum((tmp_path / f).stat().st_size for f in split["files"])
    assert single["sha256"] == sha256_file(tmp_path / "a.onnx") and len(single["sha256"]) == 64


def test_zeros_cost_bytes_on_disk_but_not_after_compression(tmp_path):
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((1, 2, 256, 256)).astype(np.float32)
    sparse = np.where(rng.random(dense.shape) < 0.5, 0, dense).astype(np.float32)
    a, b = _save(tmp_path / "dense.onnx", dense), _save(tmp_path / "sparse.onnx", sparse)
    assert abs(a.stat().st_size - b.stat().st_size) < 100
    assert compressed_bytes([b]) < 0.75 * compressed_bytes([a])


def test_manifest_round_trip_and_staleness(tmp_path):
    path = tmp_path / "manifest.json"
    assert read_manifest(path) is None
    manifest = current_manifest(path, "rfdetr", {"provenance": "untrained (seed 0)", "resolution": 128})
    manifest["variants"]["original"] = {"name": "original", "family": "rfdetr"}
    write_manifest(path, manifest)
    manifest = current_manifest(path, "scrfd", {"provenance": "trained", "input_size": [640, 640]})
    manifest["variants"]["scrfd_original"] = {"name": "scrfd_original", "family": "scrfd"}
    write_manifest(path, manifest)
    assert read_manifest(path) == manifest
    assert current_manifest(path, "rfdetr", {"provenance": "untrained (seed 0)", "resolution": 128}) == manifest
    fresh = current_manifest(path, "rfdetr", {"provenance": "untrained (seed 1)", "resolution": 128})
    assert list(fresh["variants"]) == ["scrfd_original"]  # only the changed family starts over
    assert fresh["families"]["rfdetr"]["provenance"] == "untrained (seed 1)"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temporary file left behind


def test_a_manifest_of_another_schema_starts_over(tmp_path):
    path = tmp_path / "manifest.json"
    write_manifest(path, {"schema": 1, "provenance": "untrained (seed 0)", "variants": {"original": {}}})
    assert current_manifest(path, "rfdetr", {"provenance": "untrained (seed 0)"})["variants"] == {}


def test_corrupt_manifest_is_an_input_error(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_manifest(path)
    path.write_text(json.dumps({"variants": []}))
    with pytest.raises(InputError, match="not a facecompress manifest"):
        read_manifest(path)


def test_intact_notices_a_changed_or_missing_file(tmp_path):
    path = _save(tmp_path / "m.onnx", np.zeros((1, 2, 8, 8), np.float32))
    entry = file_facts(path, tmp_path)
    assert intact(entry, tmp_path)
    model = onnx.load(str(path))
    model.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.ones((1, 2, 8, 8), np.float32), "table"))
    onnx.save(model, str(path))
    assert not intact(entry, tmp_path)
    path.unlink()
    assert not intact(entry, tmp_path)
