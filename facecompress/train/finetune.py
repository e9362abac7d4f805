"""Make the face baseline: WIDER FACE as COCO, rfdetr's own trainer, the best checkpoint published to models/.

RF-DETR publishes no face checkpoint, so the pipeline's baseline has to be trained. `train()` is rfdetr's
PyTorch Lightning loop (augmentation, EMA, its COCO evaluation, best-checkpoint selection); this module
only prepares its inputs and moves its result to where `inference.py --checkpoint` expects it, with the
settings and dataset counts beside it.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core import atomic
from ..train.coco import Filters, write_split
from ..data.wider import ImageAnnotation

BEST_CHECKPOINT = "checkpoint_best_total.pth"  # what rfdetr's trainer keeps as its best weights (EMA or not)
RECOMMENDED_RESOLUTION = 640  # see README: at 384 px half of WIDER's medium faces are narrower than one patch


@dataclass(frozen=True)
class TrainSettings:
    """The knobs train.py passes to rfdetr's `train()` (all recorded beside the checkpoint)."""

    epochs: int = 30
    batch_size: int = 8
    grad_accum_steps: int = 2
    lr: float = 1e-4
    device: str = "cuda"
    num_workers: int = 2
    multi_scale: bool = True
    seed: int = 0


def convert(splits: dict[str, tuple[list[ImageAnnotation], Path]], root: Path, filters: Filters) -> dict:
    """Write each split ('train', 'val': annotations and image folder) under `root`; counts per split."""
    return {split: dict(write_split(annotations, images, root, split, filters))
            for split, (annotations, images) in splits.items()}


def last_metrics(run_dir: Path) -> dict:
    """The last value of each metric in rfdetr's metrics.csv (losses, validation mAP)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    merged: dict = {}
    for row in rows:  # Lightning writes train and val metrics on separate rows of the same epoch
        merged.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return merged


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """(inode, mtime in ns, size) of `path`, or None when absent: a file written anew since has another."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def train(model, dataset_dir: Path, run_dir: Path, resolution: int, settings: TrainSettings) -> tuple[Path, float]:
    """Run rfdetr's trainer; return its best checkpoint and the wall seconds it took.

    A previous run's best checkpoint in `run_dir` is left in place, so a run stopped early (Ctrl-C) loses
    nothing, but it never passes for this run's: unless the trainer wrote the file anew, this is an error.
    """
    best = run_dir / BEST_CHECKPOINT
    previous = file_identity(best)
    start = time.perf_counter()
    model.train(dataset_dir=str(dataset_dir), output_dir=str(run_dir), resolution=resolution,
                epochs=settings.epochs, batch_size=settings.batch_size, grad_accum_steps=settings.grad_accum_steps,
                lr=settings.lr, device=settings.device, num_workers=settings.num_workers,
                multi_scale=settings.multi_scale, seed=settings.seed, tensorboard=False, progress_bar="tqdm")
    if file_identity(best) in (None, previous):
        stale = " (the one there is a previous run's)" if previous else ""
        raise RuntimeError(f"{run_dir}: rfdetr's trainer finished without writing {BEST_CHECKPOINT}{stale}")
    return best, time.perf_counter() - start


def publish(checkpoint: Path, models_dir: Path, name: str, record: dict) -> Path:
    """Copy the checkpoint to `models/<name>.pth` and its record to `<name>.train.json`, each atomically."""
    target = models_dir / f"{name}.pth"
    with atomic.atomic_path(target) as tmp:
        shutil.copyfile(checkpoint, tmp)
    atomic.write_text(models_dir / f"{name}.train.json", json.dumps(record, indent=1, sort_keys=True) + "\n")
    return target


def training_record(source: str, resolution: int, settings: TrainSettings, data: dict, run_dir: Path,
                    seconds: float) -> dict:
    """Everything needed to reproduce and judge a fine-tune: what it started from, on what, how, and how long.

    `data` says which datasets (WIDER or generated), the face filters and the faces kept and dropped.
    """
    config = run_dir / "training_config.json"
    return {"started_from": source, "resolution": resolution, "settings": asdict(settings), "data": data,
            "wall_seconds": round(seconds, 1),
            "final_metrics": last_metrics(run_dir),
            "rfdetr_training_config": json.loads(config.read_text()) if config.is_file() else None}
