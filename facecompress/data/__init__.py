"""WIDER FACE data: annotations (text and .mat), the images present, the generated sample, the download."""
