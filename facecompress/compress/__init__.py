"""Building the variants: recipes, the builder, quantization, ONNX pruning, counts, parity and the manifest."""
