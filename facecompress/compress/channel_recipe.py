"""What a channel-pruned variant is made from, torch-free: its fixed settings, its recovery recipe and images.

Planning a run and naming its variants must not load torch; `channel_pruning`, `reconstruction` and
`distillation`, which do, are imported only when a channel-pruned file is made.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

ROUND_TO = 8  # ONNX Runtime's x86 convolution channel block (AVX2; AVX-512 uses 16): kept counts are multiples
RECOVERED = "_recovered"  # the recovered model's name is the pruned one's plus this
MIN_CHANNELS = 48  # narrower layers are left whole: they hold the least redundancy (see channel_pruning)
OPSET = 17
RECONSTRUCTION_CROP = 512  # side of the windows reconstruction reads: 24 of them hold SCRFD at 1.5 GB, CenterFace 4.7
PARAMS = {"scope": f"output channels of every convolution at least {MIN_CHANNELS} wide but the output heads' "
                   "(the same share of each)", "min_channels": MIN_CHANNELS,
          "importance": "L1 norm of each channel's weights over the layers pruned with it (torch-pruning)",
          "round_to": ROUND_TO, "converter": "onnx2torch", "exporter": f"torch.onnx.export, opset {OPSET}",
          "reconstruction_crop": RECONSTRUCTION_CROP}


@dataclass(frozen=True)
class Recipe:
    """What decides the result: the schedule (steps, seed, learning rate) and the threads; `minutes` only caps it."""

    steps: int = 2400
    minutes: float = 10.0
    lr: float = 3e-4  # Adam, cosine to zero over the steps; 1e-3 flattened SCRFD's scores within 100 steps
    features: float = 0.1  # weight of the kept-channel feature loss against the output loss (0: outputs only)
    crop: int | None = 320  # side of the square window each step trains on (None: the whole input)
    seed: int = 0
    flip: bool = True
    threads: int = 2

    def schedule(self) -> dict:
        """The fields that fix the result of step i: a checkpoint is resumed only under the same schedule."""
        return {k: v for k, v in asdict(self).items() if k != "minutes"}


@dataclass(frozen=True)
class RecoveryImages:
    """The unlabelled images recovery trains on: a fixed list, each decoded and preprocessed when asked for."""

    names: tuple[str, ...]
    load: Callable[[int], np.ndarray]  # index -> preprocessed [1, 3, H, W] input
    source: str  # where they come from, for the manifest
    overlaps_evaluation: bool

    def __len__(self) -> int:
        return len(self.names)

    def record(self) -> dict:
        """The manifest's account of the images."""
        return {"images": self.source, "image_count": len(self), "overlaps_evaluation": self.overlaps_evaluation}


def folder_images(root: str | os.PathLike, paths: Sequence[Path], preprocess: Callable) -> RecoveryImages:
    """Images of a calibration folder (`paths` relative to it, in a fixed order), preprocessed by the family."""
    from ..data.images import load_rgb

    root = Path(root)
    return RecoveryImages(tuple(str(p) for p in paths), lambda i: preprocess(load_rgb(root / paths[i])),
                          f"calibration folder {root.name}/ ({len(paths)} images)", False)


def array_images(arrays: Sequence[np.ndarray]) -> RecoveryImages:
    """Inputs already preprocessed: the calibration inputs, when there is no calibration folder."""
    # named by content, so a checkpoint made on other inputs (another --image-seed) is not resumed on these
    names = tuple(f"calibration input {i} ({hashlib.sha256(a.tobytes()).hexdigest()[:16]})"
                  for i, a in enumerate(arrays))
    return RecoveryImages(names, lambda i: arrays[i],
                          f"the {len(arrays)} calibration inputs, drawn from the evaluated images", True)
