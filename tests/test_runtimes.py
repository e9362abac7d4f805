"""A second CPU runtime beside ONNX Runtime: OpenVINO rows, their precision read back, BF16 only where the CPU has it.

- Agreement: OpenVINO and ONNX Runtime give the same outputs, in the graph's order, on a tiny ONNX model.
- Precision: a row labelled with one precision that compiled to another is refused, never run mislabelled.
- Rows: names round-trip to (variant, runtime, precision); BF16 rows appear only with avx512_bf16 / amx_bf16
  in the (faked) cpuinfo, and only for each family's original and INT8 files; an IR file is never given to
  ONNX Runtime.
- The stage end to end, on a tiny SCRFD-layout graph built here: OpenVINO rows beside the ONNX Runtime ones,
  their predictions cached apart (one runtime's files are never read for another's), and a runtime that
  cannot be imported skipped with one line while the run goes on.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

import benchmark
import inference
from facecompress.core.artifacts import predictions_dir
from facecompress.core.errors import InputError
from facecompress.core.rows import Row, parse_row, variant_of
from facecompress.run.cache import row_key
from facecompress.run.openvino import OpenVinoRunner, checked_precision, compile_config
from facecompress.run.runtimes import bf16_reason, planned_rows
from facecompress.run.sessions import OnnxRunner
from facecompress.run.timing import cpu_flags, cpu_isa, has_bf16

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32  # the tiny SCRFD graph's input side: strides 8, 16 and 32 give 16, 4 and 1 locations
NO_BF16 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni\n"
WITH_BF16 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n"


def tiny_scrfd() -> onnx.ModelProto:
    """A graph of SCRFD's layout (per stride a score [1, N, 1] and a box [1, N, 4]) at 32 px, random weights."""
    rng = np.random.default_rng(0)
    nodes, weights, outputs = [], [], []
    for stride in (8, 16, 32):
        for kind, channels, activation in (("score", 1, "Sigmoid"), ("bbox", 4, "Relu")):
            name = f"{kind}_{stride}"
            weight = rng.standard_normal((channels, 3, stride, stride)).astype(np.float32) * 0.05
            shape = np.array([1, (SIZE // stride) ** 2, channels], np.int64)
            weights += [numpy_helper.from_array(weight, f"w_{name}"), numpy_helper.from_array(shape, f"s_{name}")]
            nodes += [helper.make_node("Conv", ["input.1", f"w_{name}"], [f"c_{name}"], strides=[stride, stride],
                                       kernel_shape=[stride, stride]),
                      helper.make_node(activation, [f"c_{name}"], [f"a_{name}"]),
                      helper.make_node("Transpose", [f"a_{name}"], [f"t_{name}"], perm=[0, 2, 3, 1]),
                      helper.make_node("Reshape", [f"t_{name}", f"s_{name}"], [name])]
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, int(shape[1]), channels]))
    x = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, SIZE, SIZE])
    graph = helper.make_graph(nodes, "tiny_scrfd", [x], outputs, weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny_scrfd.onnx"
    onnx.save(tiny_scrfd(), path)
    return path


@pytest.fixture(scope="module")
def two_runtimes(tiny_file, sample_dataset, tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """(models, results, data flags): the tiny graph's original and static INT8, benchmarked in both runtimes."""
    root = tmp_path_factory.mktemp("runtimes")
    images, split = sample_dataset
    data = ["--images", str(images), "--split", str(split), "--limit", "3"]
    inference.main(["--detector", "scrfd", "--onnx", str(tiny_file), "--only", "scrfd_original", "scrfd_static_int8",
                    "--calibration-images", "2", "--parity-images", "1", "--out", str(root / "models"), *data])
    benchmark.main(["--models", str(root / "models"), "--out", str(root / "results"), "--repeats", "3", "--warmup",
                    "1", "--threads", "1", "--runtime", "onnxruntime", "openvino", *data])
    return root / "models", root / "results", data


def test_openvino_and_onnxruntime_agree_on_a_tiny_model(tiny_file):
    batch = np.random.default_rng(1).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    expected = OnnxRunner(tiny_file, threads=1).run(batch)
    runner = OpenVinoRunner(tiny_file, threads=1, precision="fp32")
    got = runner.run(batch)
    assert runner.precision == "fp32" and runner.threads == 1
    assert [a.shape for a in got] == [a.shape for a in expected]  # the graph's order: score, box, score, box, ...
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_an_fp32_row_sets_f32_explicitly_and_a_mismatch_is_refused():
    assert compile_config("fp32", 2) == {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                                         "INFERENCE_NUM_THREADS": 2}
    assert checked_precision("fp32", "f32") == "fp32" and checked_precision("bf16", "bf16") == "bf16"
    with pytest.raises(InputError, match="labelled fp32 to bf16"):
        checked_precision("fp32", "bf16")  # what OpenVINO's default does to an FP32 file on a CPU with BF16
    with pytest.raises(InputError, match="not one of"):
        compile_config("int4", None)


def test_a_bf16_row_is_read_back_from_the_compiled_model(tiny_file):
    """Where this CPU has BF16 the row compiles to it; where not, OpenVINO silently compiles FP32 and it is refused."""
    if has_bf16():
        assert OpenVinoRunner(tiny_file, threads=1, precision="bf16").precision == "bf16"
    else:
        with pytest.raises(InputError, match=f"{tiny_file}: OpenVINO compiled a row labelled bf16 to f32"):
            OpenVinoRunner(tiny_file, threads=1, precision="bf16")


@pytest.mark.parametrize("row, name", [(Row("scrfd_static_int8"), "scrfd_static_int8"),
                                       (Row("scrfd_static_int8", "openvino"), "scrfd_static_int8@openvino"),
                                       (Row("scrfd_original", "openvino", "bf16"), "scrfd_original@openvino-bf16"),
                                       (Row("original", "openvino", "bf16"), "original@openvino-bf16")])
def test_row_names_round_trip(row, name):
    assert row.name == name and parse_row(name) == row and variant_of(name) == row.variant


def test_cpu_flags_come_from_the_cpuinfo_text():
    assert cpu_flags(WITH_BF16) >= {"avx512_bf16", "amx_tile"} and has_bf16(WITH_BF16) and not has_bf16(NO_BF16)
    assert cpu_isa(WITH_BF16) == "avx2 avx512f amx_tile avx512_bf16"
    assert cpu_isa("") == "unknown" and not has_bf16("")


def manifest() -> dict:
    """The facts row planning reads: family, method, file."""
    entries = {"scrfd_original": ("export-fp32", "scrfd.onnx"), "scrfd_static_int8": ("static-qdq-int8", "s.onnx"),
               "scrfd_pruned_30": ("unstructured-l1", "p.onnx"), "scrfd_nncf_int8": ("nncf-int8", "n.xml")}
    return {"variants": {n: {"family": "scrfd", "method": m, "file": f} for n, (m, f) in entries.items()}}


def test_bf16_rows_only_where_the_cpu_has_bf16_and_only_for_originals_and_int8():
    variants = list(manifest()["variants"])
    rows, skipped = planned_rows(variants, manifest(), ["onnxruntime", "openvino"], cpuinfo=WITH_BF16)
    assert rows == ["scrfd_original", "scrfd_original@openvino", "scrfd_original@openvino-bf16",
                    "scrfd_static_int8", "scrfd_static_int8@openvino", "scrfd_static_int8@openvino-bf16",
                    "scrfd_pruned_30", "scrfd_pruned_30@openvino",
                    "scrfd_nncf_int8@openvino", "scrfd_nncf_int8@openvino-bf16"]
    assert list(skipped) == ["scrfd_nncf_int8@onnxruntime"] and "IR file" in skipped["scrfd_nncf_int8@onnxruntime"]
    rows, skipped = planned_rows(variants, manifest(), ["onnxruntime", "openvino"], cpuinfo=NO_BF16)
    assert not [r for r in rows if r.endswith("-bf16")]
    assert skipped["bf16"] == bf16_reason(NO_BF16) and "\n" not in skipped["bf16"] and "avx512_bf16" in skipped["bf16"]
    assert bf16_reason(WITH_BF16) is None


def test_both_runtimes_are_rows_of_their_own_timed_against_onnxruntime_fp32(two_runtimes):
    _, results, _ = two_runtimes
    accuracy = pd.read_csv(results / "accuracy.csv").set_index("model")
    rows = ["scrfd_original", "scrfd_original@openvino", "scrfd_static_int8", "scrfd_static_int8@openvino"]
    assert list(accuracy.index) == rows
    assert list(accuracy["runtime"]) == ["onnxruntime", "openvino"] * 2
    assert set(accuracy["inference_precision"]) == {"fp32"}
    fixed = pd.read_csv(results / "timing_results.csv").query("phase == 'inference_fixed_input'").set_index("model")
    assert sorted(fixed.index) == sorted(rows) and fixed.at["scrfd_original", "speedup"] == 1.0
    assert list(fixed.loc[rows, "runtime"]) == ["onnxruntime", "openvino"] * 2
    assert fixed.loc["scrfd_original@openvino", "inference_precision"] == "fp32"  # read back from the compiled model
    assert fixed.loc["scrfd_original@openvino", "runtime_version"] == __import__("openvino").__version__.split("-")[0]
    # OpenVINO FP32 and ONNX Runtime FP32 find the same faces: AP within 0.2 points on these images
    for setting in ("wider_easy", "wider_medium", "wider_hard", "ap50"):
        assert accuracy.at["scrfd_original@openvino", setting] == pytest.approx(accuracy.at["scrfd_original", setting],
                                                                                 abs=2e-3)


def test_one_runtimes_cached_predictions_are_never_read_for_another(two_runtimes, tmp_path):
    models, results, data = two_runtimes
    manifest = json.loads((models / "manifest.json").read_text())
    assert row_key("scrfd_original", manifest, 0.01) != row_key("scrfd_original@openvino", manifest, 0.01)
    out = tmp_path / "results"
    shutil.copytree(results, out)
    planted = predictions_dir(out, "scrfd_original@openvino")
    shutil.rmtree(planted)
    shutil.copytree(predictions_dir(out, "scrfd_original"), planted)  # ONNX Runtime's files, key and all
    for file in planted.rglob("*.txt"):
        file.write_text(file.read_text().splitlines()[0] + "\n0\n")  # marked: no detections at all
    benchmark.main(["--models", str(models), "--out", str(out), "--repeats", "2", "--warmup", "0", "--threads", "1",
                    "--runtime", "openvino", "--only", "scrfd_original", *data])
    assert json.loads((planted / "MODEL.json").read_text())["key"]["runtime"].startswith("openvino ")
    files = sorted(planted.rglob("*.txt"))
    assert len(files) == 3 and all(int(f.read_text().splitlines()[1]) > 0 for f in files)  # predicted anew
    expected = sorted(predictions_dir(results, "scrfd_original@openvino").rglob("*.txt"))
    assert [f.read_text() for f in files] == [f.read_text() for f in expected]


def test_a_runtime_that_cannot_be_imported_is_skipped_with_one_line(two_runtimes, tmp_path):
    models, _, data = two_runtimes
    out = tmp_path / "results"
    argv = ["--models", str(models), "--out", str(out), "--repeats", "2", "--warmup", "0", "--runtime", "onnxruntime",
            "openvino", *data]
    code = f"import sys; sys.modules['openvino'] = None; import benchmark; benchmark.main({argv!r})"  # not installed
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    skips = [line for line in done.stdout.splitlines() if "openvino" in line and "skipped" in line]
    assert len(skips) == 1
    assert skips[0].startswith("--runtime openvino: skipped, the openvino package cannot be imported")
    assert list(pd.read_csv(out / "accuracy.csv")["model"]) == ["scrfd_original", "scrfd_static_int8"]
    assert json.loads((out / "run.json").read_text())["skipped_rows"]["openvino"] == skips[0]


def test_nncf_variants_are_qdq_files_both_runtimes_run_with_their_budget_recorded(tiny_file, sample_dataset, tmp_path):
    images, split = sample_dataset
    inference.main(["--detector", "scrfd", "--onnx", str(tiny_file), "--nncf", "--only", "scrfd_nncf_int8",
                    "scrfd_nncf_accuracy_int8", "--accuracy-budget", "0.5", "--search-images", "2",
                    "--calibration-images", "2", "--parity-images", "1", "--images", str(images), "--split",
                    str(split), "--limit", "6", "--out", str(tmp_path)])
    variants = json.loads((tmp_path / "manifest.json").read_text())["variants"]
    plain, controlled = variants["scrfd_nncf_int8"], variants["scrfd_nncf_accuracy_int8"]
    assert (plain["method"], controlled["method"]) == ("nncf-int8", "nncf-int8-accuracy")
    assert plain["parent"] == controlled["parent"] == "scrfd_original"
    assert controlled["params"]["max_drop_points"] == 0.5 and len(controlled["nncf"]["check_images"]) == 2
    assert controlled["nncf"]["drop_points"] <= 0.5 and controlled["nncf"]["within_budget"] is True
    assert plain["nncf"]["quantizers"] >= controlled["nncf"]["quantizers"]  # accuracy control only reverts
    assert plain["nncf"]["quantizers"] > 0
    batch = np.random.default_rng(2).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    for entry in (plain, controlled):
        model = onnx.load(str(tmp_path / entry["file"]))
        assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) == entry["nncf"]["quantizers"]
        ours, theirs = OnnxRunner(tmp_path / entry["file"], 1).run(batch), OpenVinoRunner(
            tmp_path / entry["file"], 1).run(batch)
        assert [a.shape for a in ours] == [a.shape for a in theirs]
