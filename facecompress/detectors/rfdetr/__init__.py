"""RF-DETR, the flagship family: sizes, the ONNX contract, and what its modules hold.

Constants only, so that flag parsing can name the sizes without importing torch. `loading` builds or
loads the PyTorch detector, `export` writes it as ONNX, `preprocessing` and `decoding` reproduce
rfdetr's `predict` around an ONNX session, `pruning` and `stats` describe and compress the PyTorch
model, `parity` compares an ONNX file with it, `reference` runs it as the benchmark's reference row,
`models` is the builder's source of exported variants and `family` the interface the stages use.
"""

VARIANTS = ("nano", "small", "medium", "large")
CLASS_NAMES = {"nano": "RFDETRNano", "small": "RFDETRSmall", "medium": "RFDETRMedium", "large": "RFDETRLarge"}
DECODER_LAYERS = {"nano": 2, "small": 3, "medium": 4, "large": 4}  # from rfdetr's configs; tells nano/small apart
BLOCK = 32  # patch 16 x 2 attention windows: every input side must be a multiple of it

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAMES = ("dets", "labels")
FACE_CLASS = 0  # a one-class RF-DETR puts the face in slot 0 and "no object" in the last slot
NUM_SELECT = 300  # predict's top-k: at most 300 detections per image, whatever the crowd
# Static INT8 leaves these float: the deformable attention's sampling offsets and weights decide where the
# decoder looks, and the class and box heads set every score and coordinate.
KEEP_FLOAT = ("sampling_offsets", "attention_weights", "class_embed", "bbox_embed")
# Each export method's facts, as the manifest records them: known before any model is loaded, so that the
# variant names of a run can be listed without torch.
EXPORT_PARAMS = {
    "export-fp32": {"opset": OPSET, "exporter": "torch.onnx.export (TorchScript)"},
    "unstructured-l1": {"scope": "backbone and decoder weight matrices", "opset": OPSET},
    "structured": {"removes": "attention heads and MLP channels of every backbone block",
                   "importance": "activation x weight norm", "opset": OPSET},
}
