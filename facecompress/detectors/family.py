"""The one interface between the generic stages and a kind of detector (RF-DETR, SCRFD, CenterFace, ...).

The image loop, the builder and the reports never name a family: they ask this interface how an image
becomes the network's input, how the network's outputs become scored face boxes in the source image's
pixels, and what compression applies. A family is configured by the manifest header it wrote, so a
later stage rebuilds exactly the family that made the files.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np

if TYPE_CHECKING:  # annotations only: the registry stays cheap to import for flag parsing
    import supervision as sv
    from PIL import Image

Outputs = Sequence[np.ndarray]  # the ONNX session's outputs, in the family's output order


class Family(Protocol):
    """A detector family as the stages see it; every method is torch-free."""

    name: str  # registry key: "rfdetr", "scrfd", "centerface"
    input_name: str
    input_shape: tuple[int, int, int, int]  # [1, 3, H, W] of the network input
    keep_float: tuple[str, ...]  # node-name patterns static INT8 leaves in float (measured sensitive)
    methods: tuple[str, ...]  # compression methods that apply to this family

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """The `input_shape` float32 array for one upright RGB image."""

    def decode(self, outputs: Outputs, image_size: tuple[int, int], floor: float) -> sv.Detections:
        """Face boxes (xyxy) and scores in source-image pixels, scores above `floor`, best first.

        `image_size` is (width, height) of the source image: everything a decoder needs to undo its
        resize or letterbox is a function of it, so the loop passes nothing else along.
        """

    def check_onnx(self, path: str | os.PathLike) -> None:
        """Raise InputError naming `path` and what was expected when the file does not fit this family."""

    def describe(self) -> str:
        """One line: the family, its size and input, for headers and log lines."""

    @property
    def decoding(self) -> dict:
        """What a file's predictions depend on besides the file: the decoder's version and its parameters.

        Part of every prediction cache key, so a change of input size, resize, threshold or NMS (or of the
        code, with its version bumped) re-runs that family's rows instead of serving old predictions.
        """

    def reference_runner(self, header: dict):
        """The framework model the FP32 ONNX came from, run as a reference row; None when there is none."""
