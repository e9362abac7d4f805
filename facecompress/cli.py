"""Flags and logging set-up shared by the top-level scripts, so no script copies another's."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

from .detectors.rfdetr import VARIANTS
from .data.dataset import DEFAULT_IMAGES, DEFAULT_SPLIT


def add_dataset_args(parser: argparse.ArgumentParser) -> None:
    """--images, --split, --limit and --skip-unreadable, as every dataset-reading script takes them."""
    parser.add_argument("--images", default=str(DEFAULT_IMAGES),
                        help="folder of <event>/<image>.jpg (default: %(default)s)")
    parser.add_argument("--split", default=str(DEFAULT_SPLIT),
                        help="folder holding wider_face_val_bbx_gt.txt and the four .mat files (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N images present, in annotation order (default: all)")
    parser.add_argument("--skip-unreadable", action="store_true",
                        help="report and skip images that cannot be decoded instead of stopping (default: stop)")


def add_source_args(parser: argparse.ArgumentParser, weights: str | None = None,
                    resolution_default: str = "the variant's or checkpoint's") -> None:
    """Where the detector comes from: --checkpoint (loaded whole, or --allow-partial), --weights coco, or --seed."""
    source = parser.add_argument_group("starting model")
    source.add_argument("--checkpoint", default=None,
                        help="fine-tuned rfdetr checkpoint, e.g. one train.py wrote to models/ (default: none)")
    source.add_argument("--weights", choices=["coco"], default=weights,
                        help=f"published COCO weights, downloaded by rfdetr when online (default: {weights or 'none'}; "
                             "with neither this nor --checkpoint, an untrained model from --seed)")
    source.add_argument("--variant", choices=VARIANTS, default=None,
                        help="RF-DETR size (default: read from the checkpoint, else nano)")
    source.add_argument("--resolution", type=int, default=None,
                        help=f"square input side, a multiple of 32 (default: {resolution_default})")
    source.add_argument("--num-classes", type=int, default=None,
                        help="classes, background excluded (default: read from the checkpoint, else 1)")
    source.add_argument("--seed", type=int, default=0, help="seed of the untrained model (default: %(default)s)")
    source.add_argument("--allow-partial", action="store_true",
                        help="use a checkpoint that loads only partly (weights left at random init, a class head for "
                             "another --num-classes); its provenance, in every output, then says PARTIAL "
                             "(default: refuse it)")


def points(text: str) -> float:
    """A non-negative number of AP points, the type of every budget flag."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 AP points, got {text}")
    return value


def add_results_args(parser: argparse.ArgumentParser, results_note: str = "") -> None:
    """--models and --results: where the later stages find inference.py's and benchmark.py's artifacts."""
    parser.add_argument("--models", default="models", help="folder holding manifest.json (default: %(default)s)")
    parser.add_argument("--results", default="results",
                        help=f"benchmark.py's output folder{results_note} (default: %(default)s)")


def setup_logging(verbose: bool = False) -> None:
    """One log format for every stage; the package logs, scripts print."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


F = TypeVar("F", bound=Callable[..., object])


def reports_wall_time(main: F) -> F:
    """Print the stage's wall time when its main returns, so a user sees where a run's minutes went."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = main(*args, **kwargs)
        print(f"{Path(sys.modules[main.__module__].__file__).name}: done in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)  # beside the log lines, out of the results a caller may compare
        return result

    return wrapper  # type: ignore[return-value]
