"""RF-DETR as the stages see it: `predict`'s exact input and decoding around an ONNX session, no torch needed."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import supervision as sv
from PIL import Image

from ...core.errors import InputError
from . import INPUT_NAME, KEEP_FLOAT, NUM_SELECT, OUTPUT_NAMES
from .decoding import decode
from .preprocessing import preprocess

DECODER_VERSION = 1  # bump when preprocess or decode changes what they return: cached predictions are then re-made
METHODS = ("export-fp32", "unstructured-l1", "structured", "dynamic-int8", "static-qdq-int8", "int8-budget", "fp16")


@dataclass(frozen=True)
class RFDETRFamily:
    """One RF-DETR size at one square resolution."""

    resolution: int
    variant: str = "nano"
    name: str = "rfdetr"
    input_name: str = INPUT_NAME
    keep_float: tuple[str, ...] = KEEP_FLOAT
    methods: tuple[str, ...] = METHODS

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.resolution, self.resolution)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return preprocess(image, self.resolution)

    def decode(self, outputs, image_size: tuple[int, int], floor: float) -> sv.Detections:
        boxes, logits = outputs
        return decode(boxes[0], logits[0], image_size, floor)

    def check_onnx(self, path: str | os.PathLike) -> None:
        """Refuse a file that does not take `input` [1, 3, R, R] and return `dets`, `labels`."""
        import onnx

        graph = onnx.load(str(path), load_external_data=False).graph
        shape = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] if graph.input else []
        outputs = tuple(o.name for o in graph.output)
        if outputs != OUTPUT_NAMES or shape != list(self.input_shape):
            raise InputError(f"{path}: not an RF-DETR export at {self.resolution} px (expected input "
                             f"{INPUT_NAME} {list(self.input_shape)} and outputs {', '.join(OUTPUT_NAMES)}; "
                             f"found input {shape} and outputs {', '.join(outputs) or 'none'})")

    def describe(self) -> str:
        return f"RF-DETR {self.variant} at {self.resolution} px"

    @property
    def decoding(self) -> dict:
        return {"decoder": self.name, "version": DECODER_VERSION, "resolution": self.resolution,
                "resize": "bilinear, no antialias, square", "top_k": NUM_SELECT}

    def reference_runner(self, header: dict):
        """The PyTorch model the FP32 export came from, rebuilt from the manifest (imports torch)."""
        from .reference import TorchRunner, rebuild_baseline

        return TorchRunner(rebuild_baseline(header).net, self.resolution)


def from_header(header: dict) -> RFDETRFamily:
    """The family a manifest header describes."""
    return RFDETRFamily(int(header["resolution"]), str(header.get("model_variant", "nano")))
