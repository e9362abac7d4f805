"""train.py on the CPU: a few real training steps on generated scenes, and pruned weights that stay pruned."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import train
from facecompress.detectors.rfdetr.loading import load_baseline, load_detector
from facecompress.data.dataset import iter_images, open_dataset
from facecompress.detectors.rfdetr.preprocessing import preprocess
from facecompress.detectors.rfdetr.pruning import prunable_weights, prune_unstructured, target_sparsity
from facecompress.train.finetune import BEST_CHECKPOINT, TrainSettings, publish
from facecompress.train.finetune import train as run_trainer
from facecompress.train.recovery import attach_masks, make_permanent
from facecompress.detectors.rfdetr.decoding import decode
from facecompress.detectors.rfdetr.reference import TorchRunner

RESOLUTION = 64


def common_args(sample_dataset, tmp_path) -> list[str]:
    images, split = sample_dataset
    return ["--sample", "1", "--sample-dir", str(tmp_path / "scenes"), "--untrained", "--resolution", str(RESOLUTION),
            "--batch-size", "2", "--images", str(images), "--split", str(split), "--limit", "2",
            "--coco-dir", str(tmp_path / "coco"), "--out", str(tmp_path / "models")]


def detects(checkpoint, sample_dataset) -> None:
    """The checkpoint loads the way inference.py loads it and gives finite, scored face boxes."""
    baseline = load_baseline(checkpoint=checkpoint)
    assert (baseline.resolution, baseline.num_classes, baseline.source["kind"]) == (RESOLUTION, 1, "checkpoint")
    _, image = next(iter_images(open_dataset(*sample_dataset, limit=1)))
    boxes, logits = TorchRunner(baseline.net, RESOLUTION).run(preprocess(image, RESOLUTION))
    found = decode(boxes[0], logits[0], image.size)
    assert len(found) > 0 and np.isfinite(found.xyxy).all() and np.isfinite(found.confidence).all()


@pytest.fixture(scope="module")
def finetuned(sample_dataset, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("finetune")
    train.main(common_args(sample_dataset, tmp_path) + ["--epochs", "1", "--grad-accum", "1", "--workers", "0",
                                                         "--no-multi-scale", "--runs", str(tmp_path / "runs")])
    return tmp_path / "models"


def test_finetune_writes_a_loadable_checkpoint_with_its_record(finetuned, sample_dataset):
    checkpoint = finetuned / f"face-rfdetr-nano-{RESOLUTION}.pth"
    record = json.loads((finetuned / f"face-rfdetr-nano-{RESOLUTION}.train.json").read_text())
    assert record["started_from"] == "start: untrained (seed 0)" and record["resolution"] == RESOLUTION
    assert math.isfinite(record["final_metrics"]["train/loss"]) and record["final_metrics"]["train/loss"] > 0
    counts = record["data"]["counts"]
    assert counts["train"]["kept"] > 0 and counts["val"]["images"] == 2
    assert record["data"]["train"].startswith("generated scenes, not WIDER FACE")
    assert record["rfdetr_training_config"]["train_config"]["epochs"] == 1
    detects(checkpoint, sample_dataset)


def test_recovery_keeps_pruned_weights_at_zero(sample_dataset, tmp_path):
    train.main(common_args(sample_dataset, tmp_path) + ["--recover", "0.3", "--steps", "2"])
    name = f"face-rfdetr-nano-{RESOLUTION}-pruned30-recovered"
    summary = json.loads((tmp_path / "models" / f"{name}.recovery.json").read_text())
    assert all(math.isfinite(summary[k]) for k in ("loss_first", "loss_last", "median_step_seconds"))
    assert set(summary["accuracy"]) == {"baseline", "pruned", "recovered"}
    assert summary["accuracy"]["recovered"]["images"] == 2 and "not WIDER FACE" in summary["data"]["val"]

    recovered = load_baseline(checkpoint=tmp_path / "models" / f"{name}.pth").net
    pruned = prune_unstructured(load_baseline(seed=0, resolution=RESOLUTION).net, 0.3)  # the pruned_30 variant
    changed = 0
    for (_, before, attr), (_, after, _) in zip(prunable_weights(pruned), prunable_weights(recovered)):
        old, new = getattr(before, attr), getattr(after, attr)
        assert torch.all(new[old == 0] == 0)  # every weight pruned_30 zeroed is still exactly zero
        changed += int((new != old).sum())
    assert changed > 0  # and training moved the others
    zeros, elements = target_sparsity(recovered)
    assert zeros / elements == pytest.approx(0.3, abs=1e-6)
    detects(tmp_path / "models" / f"{name}.pth", sample_dataset)


def test_masks_match_inference_pruning_and_survive_a_backward_pass():
    model, _, _ = load_detector(resolution=RESOLUTION, seed=0)
    net = model.model.model
    reference = prune_unstructured(net, 0.4)
    targets, handles = attach_masks(net, 0.4)
    for _ in range(2):  # a second pass would reuse a stale out_proj weight and fail without the extra hook
        boxes = net.train()(torch.rand(1, 3, RESOLUTION, RESOLUTION))["pred_boxes"]
        boxes.sum().backward()
    make_permanent(targets, handles)
    for (_, expected, attr), (_, got, _) in zip(prunable_weights(reference), prunable_weights(net)):
        assert torch.equal(getattr(expected, attr) == 0, getattr(got, attr) == 0)


def test_recover_refuses_a_coco_start_and_bad_amounts(sample_dataset, tmp_path, capsys):
    for extra in (["--recover", "0.3"], ["--recover", "1.5", "--untrained"]):
        with pytest.raises(SystemExit) as exit_info:
            train.main(["--images", str(sample_dataset[0]), "--split", str(sample_dataset[1]), *extra])
        assert exit_info.value.code == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_missing_training_images_is_one_clear_error(sample_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.main(["--untrained", "--images", str(sample_dataset[0]), "--split", str(sample_dataset[1]),
                    "--train-images", str(tmp_path / "nowhere"), "--resolution", str(RESOLUTION)])
    assert "facecompress.data.download --train" in capsys.readouterr().err


class FakeDetector:
    """rfdetr's detector as `finetune.train` drives it: its trainer raises `stop`, writes `writes`, or does nothing."""

    def __init__(self, stop: type[BaseException] | None = None, writes: bytes | None = None):
        self.stop, self.writes = stop, writes

    def train(self, output_dir: str, **settings) -> None:
        if self.stop:
            raise self.stop
        if self.writes is not None:
            (Path(output_dir) / BEST_CHECKPOINT).write_bytes(self.writes)


@pytest.fixture
def previous_run(tmp_path) -> tuple[Path, Path]:
    """A run folder holding the previous run's best checkpoint (an hour old) and its copy published to models/."""
    best = tmp_path / "runs" / BEST_CHECKPOINT
    best.parent.mkdir()
    best.write_bytes(b"previous run")
    os.utime(best, (best.stat().st_atime - 3600, best.stat().st_mtime - 3600))
    return best, publish(best, tmp_path / "models", "face", {"run": 1})


def test_interrupted_run_keeps_the_previous_best_checkpoint(previous_run, tmp_path):
    best, published = previous_run
    with pytest.raises(KeyboardInterrupt):
        run_trainer(FakeDetector(stop=KeyboardInterrupt), tmp_path / "coco", best.parent, RESOLUTION, TrainSettings())
    assert best.read_bytes() == published.read_bytes() == b"previous run"


def test_previous_best_never_passes_for_this_runs(previous_run, tmp_path):
    best, _ = previous_run
    with pytest.raises(RuntimeError, match="previous run's"):
        run_trainer(FakeDetector(), tmp_path / "coco", best.parent, RESOLUTION, TrainSettings())
    written, _ = run_trainer(FakeDetector(writes=b"this run"), tmp_path / "coco", best.parent, RESOLUTION,
                             TrainSettings())
    assert written.read_bytes() == b"this run"
