"""Recovery fine-tuning: a short training run of an unstructured-pruned RF-DETR with its masks kept in force.

rfdetr's `train()` rebuilds an unpruned model from its config, so the pruned weights would come back. This
loop uses rfdetr's own pieces instead (its dataset builder and collate function, its Hungarian-matched
criterion, its parameter groups) around the pruned `LWDETR`, with `torch.nn.utils.prune` masks attached:
every forward pass sees `weight_orig * mask`, so a pruned weight is zero throughout and its gradient is
zero too. The masks are made permanent at the end, and the result saves as an rfdetr checkpoint that
`inference.py --checkpoint` reads (and prunes again to the same zeros, which are now the smallest weights).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.utils.prune as prune
from torch import nn

from ..core import atomic
from ..detectors.rfdetr.pruning import prunable_weights

log = logging.getLogger(__name__)


@dataclass
class RecoveryLog:
    """What the loop did: weighted loss per step and seconds per step (data loading included)."""

    losses: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)


def attach_masks(net: nn.Module, amount: float) -> tuple[list[tuple[nn.Module, str]], list]:
    """Global L1 masks over the same matrices, by the same rule, as `pruning.prune_unstructured`.

    Ranked over the same weights, the mask is the one the `pruned_<amount>` variant of this model got.
    `prune` recomputes `weight = weight_orig * mask` in the pruned module's forward pre-hook, but
    `nn.MultiheadAttention` reads `out_proj.weight` without calling `out_proj`: without a hook on the
    attention module itself, that weight would be a stale tensor from the first step. Returns the
    targets and those extra hooks' handles.
    """
    targets = [(module, attr) for _, module, attr in prunable_weights(net)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    handles = []
    for attention in (m for m in net.modules() if isinstance(m, nn.MultiheadAttention)):
        if prune.is_pruned(attention.out_proj):
            handles.append(attention.register_forward_pre_hook(_refresh_out_proj))
    return targets, handles


def _refresh_out_proj(attention: nn.MultiheadAttention, _args) -> None:
    """Recompute `out_proj.weight` from its mask before the attention module reads it."""
    for method in attention.out_proj._forward_pre_hooks.values():
        if isinstance(method, prune.BasePruningMethod):
            method(attention.out_proj, None)


def make_permanent(targets: list[tuple[nn.Module, str]], handles: list) -> None:
    """Fold each mask into its weight, leaving plain parameters with exact zeros."""
    for handle in handles:
        handle.remove()
    for module, attr in targets:
        prune.remove(module, attr)


def training_parts(model, dataset_dir: Path, batch_size: int, lr: float, seed: int):
    """rfdetr's train dataset, collate function, criterion and parameter groups for `model`'s config."""
    from rfdetr._namespace import _namespace_from_configs
    from rfdetr.datasets import build_dataset
    from rfdetr.models.lwdetr import build_criterion_from_config
    from rfdetr.training.param_groups import get_param_dict
    from rfdetr.utilities.tensors import make_collate_fn

    config = model.model_config
    # rfdetr's default encoder/head learning-rate ratio; output_dir is required but nothing is written there
    train_config = model.get_train_config(dataset_dir=str(dataset_dir), batch_size=batch_size, lr=lr,
                                          lr_encoder=lr * 1.5, multi_scale=False, num_workers=0, seed=seed,
                                          output_dir=str(dataset_dir))
    args = _namespace_from_configs(config, train_config)
    dataset = build_dataset("train", args, config.resolution)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                         drop_last=len(dataset) >= batch_size,
                                         generator=torch.Generator().manual_seed(seed),
                                         collate_fn=make_collate_fn(config.patch_size * config.num_windows))
    criterion, _ = build_criterion_from_config(config, train_config)
    return loader, criterion, lambda net: get_param_dict(args, net), train_config


def _batches(loader, device: str) -> Iterator[tuple]:
    """Batches on `device`, epoch after epoch, reshuffled each time (itertools.cycle would replay one epoch)."""
    while True:
        for samples, targets in loader:
            yield samples.to(device), [{k: v.to(device) if torch.is_tensor(v) else v for k, v in t.items()}
                                       for t in targets]


def recover(model, amount: float, dataset_dir: Path, steps: int, batch_size: int = 4, lr: float = 1e-4,
            seed: int = 0, device: str = "cpu") -> tuple[nn.Module, RecoveryLog]:
    """Prune `model`'s full `LWDETR` by `amount` and train it `steps` steps with the masks in force.

    Returns the trained network (masks folded in, eval mode) and the loop's log. Gradients are clipped
    to rfdetr's default norm; a non-finite loss stops the run with an error rather than saving garbage.
    """
    torch.manual_seed(seed)
    loader, criterion, param_groups, train_config = training_parts(model, dataset_dir, batch_size, lr, seed)
    net = model.model.model.to(device).train()
    criterion.to(device).train()
    targets, handles = attach_masks(net, amount)
    optimizer = torch.optim.AdamW(param_groups(net), lr=lr, weight_decay=train_config.weight_decay)
    weights = criterion.weight_dict
    record = RecoveryLog()
    batches = _batches(loader, device)
    for step in range(steps):
        start = time.perf_counter()
        samples, labels = next(batches)
        losses = criterion(net(samples, labels), labels)
        loss = sum(losses[k] * weights[k] for k in losses if k in weights)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"recovery step {step}: loss is {loss.item()}; try a lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), train_config.clip_max_norm)
        optimizer.step()
        record.losses.append(loss.item())
        record.step_seconds.append(time.perf_counter() - start)
        log.info("recovery step %d/%d: loss %.4f (%.1f s)", step + 1, steps, record.losses[-1],
                 record.step_seconds[-1])
    make_permanent(targets, handles)
    return net.eval().cpu(), record


def save_checkpoint(model, net: nn.Module, path: Path, notes: dict) -> None:
    """An rfdetr-style checkpoint (`model`, `model_name`, `model_config`, `args`) that rfdetr and inference.py load."""
    config = model.model_config.model_dump(mode="json")
    payload = {"model": net.state_dict(), "model_name": type(model).__name__, "model_config": config,
               "args": {"resolution": config["resolution"], "num_classes": config["num_classes"], **notes},
               "rfdetr_version": metadata.version("rfdetr")}
    with atomic.atomic_path(path) as tmp:
        torch.save(payload, tmp)
