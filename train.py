"""Stage 0: make the face baseline by fine-tuning RF-DETR on WIDER FACE, or recover a pruned variant's accuracy.

Usage: python train.py [--weights coco | --checkpoint PATH | --untrained] [--resolution 640] [--epochs 30]
       python train.py --recover 0.3 --checkpoint models/face-rfdetr-nano-640.pth [--steps 500]
       python train.py --sample --untrained ...   (offline demo on generated scenes; not WIDER FACE)

Fine-tuning converts WIDER train and val to rfdetr's COCO layout (data/wider_coco/), runs rfdetr's own
trainer (runs/train/) and copies its best checkpoint to models/<name>.pth with <name>.train.json beside it;
`python inference.py --checkpoint models/<name>.pth` then compresses it. --recover prunes the checkpoint's
model like inference.py's pruned_<N> variant and trains it briefly with the masks in force, writing
models/<name>-pruned<N>-recovered.pth and a .recovery.json with the accuracy before and after.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from dataclasses import asdict
from pathlib import Path

import torch

from facecompress.core import atomic
from facecompress.detectors.rfdetr.loading import describe_source, inference_module, load_detector
from facecompress.cli import add_dataset_args, add_source_args, setup_logging
from facecompress.train.coco import Filters
from facecompress.data.dataset import Dataset, open_dataset
from facecompress.data.download import DEFAULT_TRAIN_IMAGES
from facecompress.core.errors import InputError, exit_on_input_error
from facecompress.train.finetune import RECOMMENDED_RESOLUTION, TrainSettings, convert, publish, train, training_record
from facecompress.detectors.rfdetr.pruning import prune_unstructured, target_sparsity
from facecompress.train.recovery import recover, save_checkpoint
from facecompress.data.sample import generate
from facecompress.train.validation import accuracy_of
from facecompress.data.wider import read_bbx

log = logging.getLogger("train")

TRAIN_ANNOTATIONS = Path("wider_face_split/wider_face_train_bbx_gt.txt")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_source_args(parser, weights="coco", resolution_default=f"{RECOMMENDED_RESOLUTION}, or the checkpoint's")
    parser.add_argument("--untrained", action="store_const", const=None, dest="weights",
                        help="start from random weights instead of the COCO ones (offline demos and tests only)")
    data = parser.add_argument_group("data (validation: --images/--split)")
    add_dataset_args(data)
    data.add_argument("--train-images", default=str(DEFAULT_TRAIN_IMAGES),
                      help="WIDER train images, fetched by `python -m facecompress.data.download --train` "
                           "(default: %(default)s)")
    data.add_argument("--train-annotations", default=str(TRAIN_ANNOTATIONS),
                      help="WIDER train bbx file (default: %(default)s)")
    data.add_argument("--sample", type=int, nargs="?", const=3, default=None, metavar="PER_EVENT",
                      help="train on generated scenes (PER_EVENT per event, default 3) instead; not WIDER FACE")
    data.add_argument("--sample-dir", default="data/sample_train",
                      help="where --sample writes its training scenes (default: %(default)s)")
    data.add_argument("--keep-invalid", action="store_true", help="keep faces WIDER flags invalid (default: drop)")
    data.add_argument("--min-size", type=int, default=0,
                      help="drop faces narrower or shorter than this many pixels (default: %(default)s, keep all)")
    data.add_argument("--coco-dir", default="data/wider_coco", help="COCO layout for rfdetr (default: %(default)s)")
    run = parser.add_argument_group("training")
    defaults = TrainSettings()
    run.add_argument("--epochs", type=int, default=defaults.epochs, help="(default: %(default)s)")
    run.add_argument("--batch-size", type=int, default=defaults.batch_size, help="(default: %(default)s)")
    run.add_argument("--grad-accum", type=int, default=defaults.grad_accum_steps,
                     help="gradient accumulation steps (default: %(default)s)")
    run.add_argument("--lr", type=float, default=defaults.lr, help="(default: %(default)s)")
    run.add_argument("--device", default=None, help="cuda, cpu, mps... (default: cuda when available, else cpu)")
    run.add_argument("--workers", type=int, default=defaults.num_workers,
                     help="data loader workers (default: %(default)s)")
    run.add_argument("--no-multi-scale", action="store_true", help="train at the one resolution only")
    run.add_argument("--runs", default="runs/train", help="rfdetr's output folder (default: %(default)s)")
    run.add_argument("--out", default="models", help="where the checkpoint lands (default: %(default)s)")
    run.add_argument("--name", default=None, help="checkpoint name (default: face-rfdetr-<variant>-<resolution>)")
    recovery = parser.add_argument_group("recovery fine-tuning of a pruned variant")
    recovery.add_argument("--recover", type=float, default=None, metavar="AMOUNT",
                          help="prune --checkpoint's model by AMOUNT (unstructured, as inference.py --prune) and "
                               "fine-tune it with the masks in force")
    recovery.add_argument("--steps", type=int, default=500, help="recovery optimizer steps (default: %(default)s)")
    return parser.parse_args(argv)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def training_data(args: argparse.Namespace, val: Dataset) -> tuple[dict, str]:
    """{'train': (annotations, images), 'val': (...)} and what the training images are (WIDER or generated)."""
    if args.sample is not None:
        images, split = Path(args.sample_dir) / "images", Path(args.sample_dir) / "split"
        train_annotations = generate(images, split, seed=args.seed + 1, per_event=args.sample)
        label = f"generated scenes, not WIDER FACE ({len(train_annotations)} images)"
    else:
        images = Path(args.train_images)
        if not images.is_dir():
            raise InputError(f"{images}: WIDER train images not found; fetch them with "
                             "`python -m facecompress.data.download --train` (online), or pass --sample for a demo run")
        train_annotations = read_bbx(args.train_annotations)
        label = f"WIDER FACE train ({len(train_annotations)} images)"
    return {"train": (train_annotations, images), "val": (list(val.present), val.images_dir)}, label


def prepare(args: argparse.Namespace, filters: Filters) -> tuple[Dataset, dict]:
    """Open the val set, convert train and val to COCO; the val set and a record of both datasets."""
    val = open_dataset(args.images, args.split, args.limit)
    splits, train_label = training_data(args, val)
    counts = convert(splits, Path(args.coco_dir), filters)
    return val, {"train": train_label, "val": val.describe(), "filters": asdict(filters), "counts": counts}


def load_start(args: argparse.Namespace, resolution: int | None):
    """rfdetr's detector to start from, its variant and source; a checkpoint overrides the COCO default."""
    weights = None if args.checkpoint else args.weights
    return load_detector(args.checkpoint, weights, args.variant, resolution, args.num_classes, args.seed,
                         allow_partial=args.allow_partial)


def finetune(args: argparse.Namespace, filters: Filters) -> None:
    """Convert, train with rfdetr, publish the best checkpoint with its record."""
    resolution = args.resolution or (None if args.checkpoint else RECOMMENDED_RESOLUTION)
    model, variant, source = load_start(args, resolution)
    resolution, started = model.model_config.resolution, describe(source)
    _, data = prepare(args, filters)
    log.info("[%s] COCO dataset in %s: %s", started, args.coco_dir, json.dumps(data))
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, grad_accum_steps=args.grad_accum,
                             lr=args.lr, device=args.device or default_device(), num_workers=args.workers,
                             multi_scale=not args.no_multi_scale, seed=args.seed)
    best, seconds = train(model, Path(args.coco_dir), Path(args.runs), resolution, settings)
    record = training_record(started, resolution, settings, data, Path(args.runs), seconds)
    path = publish(best, Path(args.out), args.name or f"face-rfdetr-{variant}-{resolution}", record)
    print(f"[{started}; {data['train']}] fine-tuned checkpoint: {path} ({seconds / 60:.1f} min); "
          f"next: python inference.py --checkpoint {path}")


def describe(source: dict) -> str:
    """The start's provenance, which every line train.py prints carries ('untrained' included)."""
    return f"start: {describe_source(source)}"


def recover_pruned(args: argparse.Namespace, filters: Filters) -> None:
    """Prune, score, recover, score again; write the recovered checkpoint and what it regained."""
    if not 0 < args.recover < 1:
        raise InputError(f"--recover {args.recover}: an unstructured sparsity in (0, 1), e.g. 0.3")
    if not args.checkpoint and args.weights:
        raise InputError("--recover needs the face model to prune: --checkpoint models/<name>.pth (or --untrained)")
    model, variant, source = load_start(args, args.resolution)
    resolution, started = model.model_config.resolution, describe(source)
    val, data = prepare(args, filters)
    baseline = inference_module(model.model.model)
    accuracy = {"baseline": accuracy_of(baseline, resolution, val, "baseline"),
                "pruned": accuracy_of(prune_unstructured(baseline, args.recover), resolution, val, "pruned")}
    device = args.device or default_device()
    net, record = recover(model, args.recover, Path(args.coco_dir), args.steps, args.batch_size, args.lr, args.seed,
                          device)
    recovered = inference_module(net)
    accuracy["recovered"] = accuracy_of(recovered, resolution, val, "recovered")
    name = args.name or f"face-rfdetr-{variant}-{resolution}-pruned{round(args.recover * 100)}-recovered"
    out = Path(args.out) / f"{name}.pth"
    save_checkpoint(model, net, out, {"recovered_from": started, "pruned_amount": args.recover,
                                      "recovery_steps": args.steps})
    zeros, elements = target_sparsity(recovered)
    summary = {"started_from": started, "amount": args.recover, "sparsity": round(zeros / elements, 6),
               "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "device": device,
               "loss_first": record.losses[0] if record.losses else None,
               "loss_last": record.losses[-1] if record.losses else None,
               "median_step_seconds": statistics.median(record.step_seconds) if record.step_seconds else None,
               "data": data, "accuracy": accuracy}
    atomic.write_text(Path(args.out) / f"{name}.recovery.json", json.dumps(summary, indent=1) + "\n")
    print(f"[{started}; {val.describe()}] AP@0.5 baseline {accuracy['baseline']['ap50']:.4f}, pruned "
          f"{args.recover:.0%} {accuracy['pruned']['ap50']:.4f}, after {args.steps} recovery steps "
          f"{accuracy['recovered']['ap50']:.4f}; sparsity {summary['sparsity']:.4f}; {out}")


@exit_on_input_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    filters = Filters(drop_invalid=not args.keep_invalid, min_size=args.min_size)
    if args.recover is None:
        finetune(args, filters)
    else:
        recover_pruned(args, filters)


if __name__ == "__main__":
    main()
