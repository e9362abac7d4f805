"""Score a PyTorch RF-DETR on a WIDER-format val set with the project's own evaluator, as benchmark.py would."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from torch import nn

from ..data.dataset import Dataset
from ..data.wider import read_mat_ground_truth
from ..detectors.rfdetr.family import RFDETRFamily
from ..detectors.rfdetr.reference import TorchRunner
from ..evaluation.accuracy import accuracy_row
from ..evaluation.submission import read_prediction_dir
from ..run.loop import run_images

ROW_KEYS = ("images", "faces", "precision", "recall", "f1", "ap50", "wider_easy", "wider_medium", "wider_hard")


def accuracy_of(net: nn.Module, resolution: int, dataset: Dataset, label: str, threshold: float = 0.5) -> dict:
    """Precision, recall, F1 at `threshold`, AP@0.5 and official Easy / Medium / Hard AP of an inference-ready net.

    Predictions go through benchmark.py's own loop (predict-exact pre- and post-processing) into a scratch
    folder, so these figures are comparable with its accuracy.csv. An undefined figure (precision with no
    detection) is None, so the record stays valid JSON.
    """
    with tempfile.TemporaryDirectory() as scratch:
        run_images(TorchRunner(net, resolution), RFDETRFamily(resolution), dataset, list(dataset.present),
                   Path(scratch), label)
        predictions = read_prediction_dir(scratch)
    row = accuracy_row(label, predictions, None, dataset, read_mat_ground_truth(dataset.split_dir), threshold)
    return {key: None if isinstance(row[key], float) and math.isnan(row[key]) else row[key] for key in ROW_KEYS}
