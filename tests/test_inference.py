"""inference.py end to end on the generated sample: interrupted, resumed, reused, rebuilt identically."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import inference  # noqa: E402
from facecompress.compress import builder  # noqa: E402
from facecompress.core.atomic import atomic_path  # noqa: E402
from facecompress.core.checksums import sha256_file  # noqa: E402

FP32_TOLERANCE = 1e-4
ENTRY_KEYS = {"name", "file", "files", "method", "params", "parent", "torch_model", "family", "source", "provenance",
              "model_variant",
              "resolution", "bytes", "compressed_bytes", "sha256", "parameters", "nonzero", "sparsity", "flops",
              "parity", "command", "versions", "seconds"}
SET = ["--detector", "rfdetr", "--study", "--prune", "0.3", "--structured", "0.5", "--skip", "structured_50_static_int8"]


def _args(sample_dataset, out, *extra) -> list[str]:
    images, split = sample_dataset
    return ["--images", str(images), "--split", str(split), "--limit", "3", "--calibration-images", "2",
            "--parity-images", "1", "--resolution", "128", "--out", str(out), *SET, *extra]


@pytest.fixture(scope="module")
def run(sample_dataset, tmp_path_factory):
    """Out folder and manifest after a run interrupted while writing fp16, then a resumed run, then a re-run."""
    out = tmp_path_factory.mktemp("models")
    real = builder.quantization.convert_fp16

    def interrupted(src, dst):
        with atomic_path(dst) as tmp:
            tmp.write_bytes(b"half a file")
            raise KeyboardInterrupt

    builder.quantization.convert_fp16 = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            inference.main(_args(sample_dataset, out))
    finally:
        builder.quantization.convert_fp16 = real
    after_interrupt = json.loads((out / "manifest.json").read_text())
    inference.main(_args(sample_dataset, out))
    resumed = json.loads((out / "manifest.json").read_text())
    inference.main(_args(sample_dataset, out))
    return out, after_interrupt, resumed, json.loads((out / "manifest.json").read_text())


def test_interrupted_run_leaves_only_whole_files(run):
    out, after_interrupt, _, _ = run
    assert list(after_interrupt["variants"]) == ["original", "quantized", "static_int8", "int8_budget"]
    assert not any(p.name.startswith(".") for p in out.iterdir())


def test_resumed_run_reuses_what_was_made_and_a_rerun_changes_nothing(run):
    _, after_interrupt, resumed, rerun = run
    for name, entry in after_interrupt["variants"].items():
        assert resumed["variants"][name] == entry
    assert rerun == resumed


def test_every_entry_is_complete_and_true(run):
    out, _, manifest, _ = run
    header = manifest["families"]["rfdetr"]
    assert header["provenance"] == "untrained (seed 0)" and header["resolution"] == 128
    assert set(manifest["variants"]) == {"original", "quantized", "static_int8", "int8_budget", "fp16", "pruned_30",
                                         "pruned_30_int8", "structured_50", "structured_50_int8"}
    for name, entry in manifest["variants"].items():
        assert ENTRY_KEYS <= set(entry), name
        assert entry["bytes"] == sum((out / f).stat().st_size for f in entry["files"])
        assert entry["sha256"] == sha256_file(out / entry["file"])
        assert entry["compressed_bytes"] < entry["bytes"] and entry["provenance"] == "untrained (seed 0)"
        assert entry["source"] == {"kind": "untrained", "seed": 0}
        assert "inference.py" in entry["command"] and entry["versions"]["onnxruntime"]
        assert entry["nonzero"] <= entry["parameters"]


def test_figures_match_the_recipes(run):
    variants_ = run[2]["variants"]
    original = variants_["original"]
    for name in ("original", "pruned_30", "structured_50"):
        assert variants_[name]["parity"]["top_k_agree"], name
        assert variants_[name]["parity"]["max_abs_logits"] < FP32_TOLERANCE, name
    assert abs(variants_["pruned_30"]["pruned_layers"]["sparsity"] - 0.3) < 0.001
    assert variants_["pruned_30"]["bytes"] == original["bytes"]
    assert variants_["pruned_30"]["compressed_bytes"] < 0.9 * original["compressed_bytes"]
    assert variants_["quantized"]["bytes"] <= 0.30 * original["bytes"]
    assert variants_["structured_50"]["parameters"] < original["parameters"]
    assert variants_["structured_50"]["flops"] < original["flops"]
    assert variants_["structured_50_int8"]["torch_model"] == "structured_50"
    assert variants_["pruned_30_int8"]["parent"] == "pruned_30"


def test_only_rebuilds_identically(run, sample_dataset, tmp_path):
    out, _, manifest, _ = run
    inference.main(_args(sample_dataset, out, "--only", "pruned_30"))
    rebuilt = json.loads((out / "manifest.json").read_text())["variants"]["pruned_30"]
    before = manifest["variants"]["pruned_30"]
    assert {k: v for k, v in rebuilt.items() if k not in ("seconds", "command")} == \
        {k: v for k, v in before.items() if k not in ("seconds", "command")}


def test_a_file_made_again_makes_again_what_is_converted_from_it(run, sample_dataset, capsys):
    out, _, manifest, _ = run
    (out / manifest["variants"]["pruned_30"]["file"]).unlink()
    capsys.readouterr()
    inference.main(_args(sample_dataset, out))
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert lines["pruned_30"].rstrip().endswith("rebuilt: file missing or changed since it was built")
    assert lines["pruned_30_int8"].rstrip().endswith("rebuilt: parent rebuilt")
    assert lines["structured_50_int8"].rstrip().endswith("reused")


@pytest.mark.parametrize("extra, message", [(["--only", "nonsense"], "--only nonsense"),
                                            (["--resolution", "100"], "multiple of 32")])
def test_bad_input_is_one_line_and_exit_2(sample_dataset, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        inference.main(_args(sample_dataset, tmp_path, *extra))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("error:") and message in err and "\n" not in err


def test_corrupt_checkpoint_is_one_line_and_exit_2(sample_dataset, tmp_path, capsys):
    bad = tmp_path / "checkpoint_best_total.pth"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(SystemExit) as exit_info:
        inference.main(_args(sample_dataset, tmp_path, "--checkpoint", str(bad)))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "not a readable PyTorch checkpoint" in err and "\n" not in err


def test_help_names_every_default(capsys):
    with pytest.raises(SystemExit):
        inference.parse_args(["--help"])
    text = capsys.readouterr().out
    assert "(default: models)" in text and "(default: [0.01, 0.3, 0.4])" in text and "--seed" in text


def test_bench_script_prints_the_three_targets(run, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_compression", Path(__file__).resolve().parent.parent
                                                  / "bench" / "bench_compression.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--models", str(run[0]), "--rounds", "1", "--warmup", "0", "--variants", "quantized",
                "structured_50_int8"])
    out = capsys.readouterr().out
    assert "speed-up (x)" in out and "INT8 bytes (%)" in out and "structured + INT8 bytes (%)" in out


def test_target_checks_read_sizes_from_the_manifest():
    from facecompress.compress.targets import target_checks

    variants_ = {"original": {"bytes": 1000}, "quantized": {"bytes": 250}, "structured_50_int8": {"bytes": 170}}
    rows = target_checks(variants_, {"original": [0.2, 0.2], "structured_50_int8": [0.1, 0.1]})
    assert [(r["value"], r["variant"], r["met"]) for r in rows] == [
        ("2.00", "structured_50_int8", "yes"), ("25.00", "quantized", "yes"), ("17.00", "structured_50_int8", "NO")]
