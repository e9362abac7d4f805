"""Making the face baseline: WIDER as COCO, rfdetr training, recovery of pruned models, scoring PyTorch models."""
