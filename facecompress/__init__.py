"""Compress an RF-DETR face detector and measure what compression costs and buys on WIDER FACE."""
