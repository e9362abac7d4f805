"""Shared fixtures: the real WIDER FACE files beside the repository, and a generated sample."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

WIDER_REAL = Path(__file__).resolve().parents[2] / "shared" / "wider_real"


def skip_or_fail(message: str) -> None:
    """Skip where a resource is legitimately absent (a user's clone, an offline machine), but fail in CI, which has it."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def wider_real() -> Path:
    """The real WIDER val files kept beside the repository; skip without them, but fail in CI, which has them."""
    if not (WIDER_REAL / "wider_face_split" / "wider_face_val_bbx_gt.txt").is_file():
        skip_or_fail(f"real WIDER FACE files not found at {WIDER_REAL} (only present beside the project's own "
                     "checkout)")
    return WIDER_REAL


@pytest.fixture(scope="session")
def weights_cache(tmp_path_factory) -> Path:
    """One cache folder for the session, so each published archive is downloaded once."""
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory) -> tuple[Path, Path]:
    """(images, split) folders holding the embedded generated sample, made once per test session."""
    from facecompress.data.sample import generate

    root = tmp_path_factory.mktemp("sample")
    images, split = root / "WIDER_val" / "images", root / "wider_face_split"
    generate(images, split, seed=0, per_event=2)
    return images, split


@pytest.fixture(scope="session")
def tiny_models(sample_dataset, tmp_path_factory) -> Path:
    """models/ made by inference.py at 64 px from the generated sample: the original and its dynamic INT8."""
    import inference

    out = tmp_path_factory.mktemp("models")
    images, split = sample_dataset
    inference.main(["--detector", "rfdetr", "--images", str(images), "--split", str(split), "--out", str(out),
                    "--resolution", "64", "--only", "original", "quantized", "--limit", "4", "--calibration-images", "2",
                    "--parity-images", "1"])
    return out


@pytest.fixture(scope="session")
def tiny_results(sample_dataset, tiny_models, tmp_path_factory) -> Path:
    """results/ made by benchmark.py over four sample images."""
    import benchmark

    out = tmp_path_factory.mktemp("results")
    images, split = sample_dataset
    benchmark.main(["--images", str(images), "--split", str(split), "--models", str(tiny_models), "--out", str(out),
                    "--limit", "4", "--repeats", "2", "--warmup", "1"])
    return out
