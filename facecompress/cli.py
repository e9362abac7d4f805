"""Flags and logging set-up shared by the top-level scripts, so no script copies another's."""

from __future__ import annotations

import argparse
import logging

from .dataset import DEFAULT_IMAGES, DEFAULT_SPLIT


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


def setup_logging(verbose: bool = False) -> None:
    """One log format for every stage; the package logs, scripts print."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
