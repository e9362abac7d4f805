"""The Ray prediction pass: the serial loop's files byte for byte, resume, unreadable images, a worker that dies."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from conftest import skip_or_fail
from facecompress.core.artifacts import header_of, predictions_dir, read_manifest
from facecompress.core.errors import InputError
from facecompress.data.dataset import open_dataset
from facecompress.data.images import load_rgb
from facecompress.detectors import family_for
from facecompress.evaluation.submission import prediction_path
from facecompress.run.cache import missing
from facecompress.run.loop import SCORE_FLOOR, run_images
from facecompress.run.sessions import OnnxRunner

VARIANTS = ("original", "quantized")


@pytest.fixture(scope="module")
def distributed():
    """A local two-CPU Ray cluster for the module; skipped where Ray is not installed, but never in CI."""
    try:
        import ray
    except ImportError as err:
        skip_or_fail(f"ray cannot be imported ({err}); `pip install -r requirements.txt`")
    from facecompress.run import distributed

    distributed.start_ray(None, 2)
    yield distributed
    ray.shutdown()


@pytest.fixture(scope="module")
def setup(tiny_models, sample_dataset):
    """(manifest, models folder, four sample images)."""
    manifest = read_manifest(tiny_models / "manifest.json")
    return manifest, tiny_models, open_dataset(*sample_dataset, limit=4)


def serial(setup, name: str, out: Path) -> Path:
    """The serial loop's prediction folder of `name` over the four images: the reference the Ray pass must match."""
    manifest, models, dataset = setup
    folder = predictions_dir(out, name)
    run_images(OnnxRunner(models / manifest["variants"][name]["file"]), family_for(header_of(manifest, name)),
               dataset, list(dataset.present), folder, name, SCORE_FLOOR)
    return folder


def files(folder: Path) -> dict[str, bytes]:
    """Every prediction file under a folder, by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.txt"))}


def payloads(distributed, setup, names: tuple[str, ...] = VARIANTS) -> dict[str, tuple[bytes, dict]]:
    """What the driver sends: each variant's ONNX bytes and family header."""
    manifest, models, _ = setup
    return {name: distributed.model_payload(manifest, name, models) for name in names}


def test_ray_files_equal_the_serial_loop(distributed, setup, tmp_path):
    _, _, dataset = setup
    summary = distributed.predict_on_ray(payloads(distributed, setup), {n: list(dataset.present) for n in VARIANTS},
                                         dataset, tmp_path / "ray", SCORE_FLOOR, workers=2)
    assert summary["per_model"] == {n: 4 for n in VARIANTS} and summary["images"] == 8
    assert summary["workers"] == 2 and summary["threads"] == 1 and summary["images_per_s"] > 0
    for name in VARIANTS:
        expected = files(serial(setup, name, tmp_path / "serial"))
        assert len(expected) == 4
        assert files(predictions_dir(tmp_path / "ray", name)) == expected


def test_resume_schedules_only_the_missing_images(distributed, setup, tmp_path):
    _, _, dataset = setup
    folder = predictions_dir(tmp_path, "original")
    done, rest = dataset.present[:2], dataset.present[2:]
    for annotation in done:  # a file the pass must not touch: it would be overwritten if scheduled again
        prediction_path(folder, annotation.name).parent.mkdir(parents=True, exist_ok=True)
        prediction_path(folder, annotation.name).write_text("kept\n")
    todo = {"original": missing(dataset.present, folder)}
    assert todo["original"] == list(rest)
    summary = distributed.predict_on_ray(payloads(distributed, setup, ("original",)), todo, dataset, tmp_path,
                                         SCORE_FLOOR, workers=2)
    assert summary["per_model"] == {"original": 2}
    assert all(prediction_path(folder, a.name).read_text() == "kept\n" for a in done)
    expected = files(serial(setup, "original", tmp_path / "serial"))
    fresh = [str(prediction_path(Path(), a.name)) for a in rest]
    assert {k: v for k, v in files(folder).items() if k in fresh} == {k: expected[k] for k in fresh}


@pytest.fixture
def corrupt(setup, tmp_path):
    """The four images copied, the second one truncated: (dataset over the copies, the broken image's name)."""
    _, _, dataset = setup
    images = tmp_path / "images"
    for annotation in dataset.present:
        (images / annotation.name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dataset.image_path(annotation), images / annotation.name)
    broken = dataset.present[1]
    data = (images / broken.name).read_bytes()
    (images / broken.name).write_bytes(data[:len(data) // 3])
    return replace(dataset, images_dir=images), broken.name


def test_unreadable_image_stops_the_pass_with_the_serial_message(distributed, setup, corrupt, tmp_path):
    dataset, broken = corrupt
    with pytest.raises(InputError) as serial_error:
        load_rgb(dataset.images_dir / broken)
    with pytest.raises(InputError) as ray_error:
        distributed.predict_on_ray(payloads(distributed, setup, ("original",)), {"original": list(dataset.present)},
                                   dataset, tmp_path / "out", SCORE_FLOOR, workers=2)
    assert str(ray_error.value) == str(serial_error.value)
    assert str(ray_error.value).startswith(f"{dataset.images_dir / broken}: unreadable image (")
    assert "\n" not in str(ray_error.value)


def test_unreadable_image_skipped_gets_no_file(distributed, setup, corrupt, tmp_path):
    dataset, broken = corrupt
    summary = distributed.predict_on_ray(payloads(distributed, setup, ("original",)),
                                         {"original": list(dataset.present)}, dataset, tmp_path / "out", SCORE_FLOOR,
                                         skip_unreadable=True, workers=2)
    folder = predictions_dir(tmp_path / "out", "original")
    assert summary["skipped"] == [broken] and summary["per_model"] == {"original": 3}
    assert [a.name for a in missing(dataset.present, folder)] == [broken]


def test_a_model_the_workers_cannot_load_is_one_line(distributed, setup, tmp_path):
    _, _, dataset = setup
    broken = {"original": (b"not an onnx file", payloads(distributed, setup, ("original",))["original"][1])}
    with pytest.raises(InputError, match="^original: ONNX Runtime cannot load it") as error:
        distributed.predict_on_ray(broken, {"original": list(dataset.present)}, dataset, tmp_path, SCORE_FLOOR,
                                   workers=2)
    assert "\n" not in str(error.value) and type(error.value) is InputError


class Crashing:
    """Stands in for the worker class: its process dies on the first batch any worker gets, then it behaves."""

    marker = ""  # set by the test; travels with the class, which is pickled by value

    def __init__(self, threads: int):
        from facecompress.run.distributed import Predictor

        self.inner = Predictor(threads)

    def predict(self, *args):
        if not Path(self.marker).exists():
            Path(self.marker).touch()
            os._exit(1)
        return self.inner.predict(*args)


def test_a_worker_that_dies_is_retried_and_every_file_written_once(distributed, setup, tmp_path, monkeypatch):
    import ray

    _, _, dataset = setup
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import the tests
    marker = tmp_path / "crashed"
    monkeypatch.setattr(Crashing, "marker", str(marker))
    monkeypatch.setattr(distributed, "Predictor", Crashing)
    summary = distributed.predict_on_ray(payloads(distributed, setup, ("original",)),
                                         {"original": list(dataset.present)}, dataset, tmp_path / "ray", SCORE_FLOOR,
                                         workers=2)
    assert marker.exists() and summary["per_model"] == {"original": 4}
    assert files(predictions_dir(tmp_path / "ray", "original")) == files(serial(setup, "original", tmp_path / "s"))


def test_benchmark_engine_ray_gives_the_serial_tables(distributed, tiny_models, tiny_results, sample_dataset,
                                                      tmp_path):
    """benchmark.py --engine ray: the same prediction files and accuracy.csv as the serial run, latency timed here."""
    import benchmark

    images, split = sample_dataset
    out = tmp_path / "results"
    benchmark.main(["--images", str(images), "--split", str(split), "--models", str(tiny_models), "--out", str(out),
                    "--limit", "4", "--repeats", "2", "--warmup", "1", "--engine", "ray", "--workers", "2"])
    for name in ("original", "quantized", "original_pytorch"):
        assert files(out / "predictions" / name) == files(tiny_results / "predictions" / name), name
    columns = ["model", "precision", "recall", "f1", "ap50", "wider_easy", "wider_medium", "wider_hard",
               "agreement_ap50"]
    assert pd.read_csv(out / "accuracy.csv")[columns].equals(pd.read_csv(tiny_results / "accuracy.csv")[columns])
    timing = pd.read_csv(out / "timing_results.csv")
    assert timing.query("phase == 'distributed_pass'")["n"].item() == 8  # two variants x four images, on Ray
    assert set(timing.query("phase == 'inference_fixed_input'")["model"]) == {"original_pytorch", "original",
                                                                              "quantized"}
