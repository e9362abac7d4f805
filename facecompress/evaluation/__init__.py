"""Scoring: the official WIDER FACE protocol, the submission files, threshold metrics and agreement."""
