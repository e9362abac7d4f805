"""The last three stages: the comparison table, its findings, the text and figures, the detection panels."""
