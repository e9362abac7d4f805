"""Seconds per training step of RF-DETR on this machine: what a fine-tune or a recovery run will cost here.

Usage: python bench/bench_train.py [--resolutions 384 640] [--batch-size 4] [--steps 4] [--device cpu]

Runs the recovery loop (rfdetr's data pipeline, criterion and parameter groups; 30 % pruning masks in
force) on generated scenes with an untrained Nano, and prints the median seconds per optimizer step at
each resolution after one untimed step. rfdetr's own `train()` does the same work per step (plus EMA and
a validation pass per epoch), so multiply by steps per epoch (12,880 / batch size for WIDER train).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecompress.detectors.rfdetr.loading import load_detector  # noqa: E402
from facecompress.train.coco import Filters, write_split  # noqa: E402
from facecompress.train.recovery import recover  # noqa: E402
from facecompress.data.sample import generate  # noqa: E402

WIDER_TRAIN_IMAGES = 12880


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[384, 640],
                        help="square training sides, multiples of 32 (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=4, help="(default: %(default)s)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per resolution (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="(default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        scenes = generate(root / "images", root / "split", seed=1, per_event=2)
        write_split(scenes, root / "images", root / "coco", "train", Filters())
        print(f"untrained RF-DETR nano, generated scenes (not WIDER FACE), batch {args.batch_size}, "
              f"{args.device}, torch threads {torch.get_num_threads()}:")
        for resolution in args.resolutions:
            model, _, _ = load_detector(resolution=resolution, seed=0)
            _, record = recover(model, 0.3, root / "coco", args.steps + 1, args.batch_size, device=args.device)
            step = statistics.median(record.step_seconds[1:])
            epoch_hours = step * WIDER_TRAIN_IMAGES / args.batch_size / 3600
            print(f"  {resolution} px: {step:.2f} s per step (median of {args.steps}; "
                  f"{', '.join(f'{s:.2f}' for s in record.step_seconds[1:])}); "
                  f"one WIDER train epoch would take ~{epoch_hours:.1f} h")


if __name__ == "__main__":
    main()
