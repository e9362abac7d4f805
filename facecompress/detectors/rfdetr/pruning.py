"""Unstructured (global L1 magnitude) and structured (attention heads, MLP channels) pruning of RF-DETR.

Which weights the unstructured pruning touches, and why:

* Pruned: the weight matrices that hold almost all parameters and FLOPs. In each DINOv2 backbone block, the
  attention `query`, `key`, `value` and output `dense` projections and the MLP `fc1`/`fc2`; in each decoder
  layer, the self-attention input/output projections (`in_proj_weight`, `out_proj`), the deformable
  cross-attention `value_proj` and `output_proj`, and the feed-forward `linear1`/`linear2`.
* Kept dense: the patch embedding (the only layer that sees pixels), position table, class token, LayerNorms,
  layer scales and all biases (few parameters, large effect); the convolutional projector (the neck, with
  BatchNorm); the deformable attention's `sampling_offsets` and `attention_weights` (they decide where the
  decoder looks); the two-stage proposal layers, query embeddings, reference-point MLP and the box and class
  heads (small, and every detection passes through them).

Structured pruning removes whole attention heads (through the backbone's own `prune_heads`) and MLP hidden
channels (slicing `fc1` rows with the matching `fc2` columns) in every backbone block, ranked by how much each
contributes to the residual stream on calibration images, so the network really gets smaller.
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import torch
import torch.nn.utils.prune as prune
from torch import nn

from ...detectors.rfdetr.export import export_ready

log = logging.getLogger(__name__)

BACKBONE_MATRICES = ("attention.attention.query", "attention.attention.key", "attention.attention.value",
                     "attention.output.dense", "mlp.fc1", "mlp.fc2")
DECODER_MATRICES = ("self_attn.out_proj", "cross_attn.value_proj", "cross_attn.output_proj", "linear1", "linear2")


def backbone_blocks(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """(qualified name, block) for each DINOv2 transformer block, in order."""
    from rfdetr.models.backbone.dinov2_with_windowed_attn import WindowedDinov2WithRegistersLayer

    return [(name, m) for name, m in net.named_modules() if isinstance(m, WindowedDinov2WithRegistersLayer)]


def prunable_weights(net: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(qualified parameter name, module, attribute) of every weight matrix unstructured pruning may zero."""
    targets = []
    for block_name, block in backbone_blocks(net):
        for suffix in BACKBONE_MATRICES:
            targets.append((f"{block_name}.{suffix}.weight", block.get_submodule(suffix), "weight"))
    for index, layer in enumerate(net.transformer.decoder.layers):
        prefix = f"transformer.decoder.layers.{index}"
        targets.append((f"{prefix}.self_attn.in_proj_weight", layer.self_attn, "in_proj_weight"))
        for suffix in DECODER_MATRICES:
            targets.append((f"{prefix}.{suffix}.weight", layer.get_submodule(suffix), "weight"))
    return targets


def target_names(net: nn.Module) -> list[str]:
    """Qualified names of the weight matrices unstructured pruning ranks together, for the manifest."""
    return [name for name, _, _ in prunable_weights(net)]


def target_sparsity(net: nn.Module) -> tuple[int, int]:
    """(zeros, elements) over the prunable weight matrices: the sparsity the request is checked against."""
    tensors = [getattr(module, attr) for _, module, attr in prunable_weights(net)]
    zeros = sum(int(t.numel() - torch.count_nonzero(t)) for t in tensors)
    return zeros, sum(t.numel() for t in tensors)


def prune_unstructured(net: nn.Module, amount: float) -> nn.Module:
    """A copy of `net` with the `amount` fraction of smallest-|w| entries, ranked globally over the targets, zeroed.

    Global ranking lets layers with many small weights give up more than others; `prune.remove` then bakes the
    mask into the weights so the result is a plain module that exports like any other.
    """
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"pruning amount {amount} must be in [0, 1)")
    pruned = copy.deepcopy(net)
    targets = [(module, attr) for _, module, attr in prunable_weights(pruned)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    for module, attr in targets:
        prune.remove(module, attr)
    return pruned


def _head_norms(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Frobenius norm of each head's block of input columns in an attention output projection."""
    return weight.t().reshape(heads, -1).norm(dim=1)


def structured_importance(net: nn.Module, resolution: int, inputs: list[np.ndarray]) -> dict[str, dict]:
    """Per block, a score for each attention head and MLP hidden channel on the calibration `inputs`.

    A head scores its mean output norm times the norm of its slice of the output projection; an MLP channel
    its mean |activation| times the norm of its `fc2` column: both estimate what the unit adds to the residual.
    """
    ready = export_ready(net, resolution)
    sums: dict[str, dict[str, torch.Tensor]] = {}
    hooks = []
    for name, block in backbone_blocks(ready):
        heads = block.attention.attention.num_attention_heads
        sums[name] = {"heads": torch.zeros(heads), "channels": torch.zeros(block.mlp.fc2.in_features)}

        def on_context(module, args, name=name, heads=heads):
            context = args[0].detach().flatten(0, -2)
            sums[name]["heads"] += context.reshape(len(context), heads, -1).norm(dim=2).mean(0)

        def on_hidden(module, args, name=name):
            sums[name]["channels"] += args[0].detach().flatten(0, -2).abs().mean(0)

        hooks.append(block.attention.output.dense.register_forward_pre_hook(on_context))
        hooks.append(block.mlp.fc2.register_forward_pre_hook(on_hidden))
    with torch.no_grad():
        for array in inputs:
            ready(torch.from_numpy(array))
        for hook in hooks:
            hook.remove()
        blocks = dict(backbone_blocks(ready))
        return {name: {"heads": s["heads"] * _head_norms(blocks[name].attention.output.dense.weight, len(s["heads"])),
                       "channels": s["channels"] * blocks[name].mlp.fc2.weight.norm(dim=0)}
                for name, s in sums.items()}


def _slice_linear(linear: nn.Linear, keep: torch.Tensor, dim: int) -> nn.Linear:
    """A new Linear keeping only the `keep` output rows (dim 0) or input columns (dim 1)."""
    weight = linear.weight.detach().index_select(dim, keep).clone()
    out_features, in_features = weight.shape
    sliced = nn.Linear(in_features, out_features, bias=linear.bias is not None, device="meta")  # no random init
    sliced.weight = nn.Parameter(weight)
    if linear.bias is not None:
        bias = linear.bias.detach()
        sliced.bias = nn.Parameter((bias.index_select(0, keep) if dim == 0 else bias).clone())
    return sliced


def lowest(scores: torch.Tensor, count: int) -> list[int]:
    """Indices of the `count` lowest scores; ties go to the lower index so the choice is reproducible."""
    order = sorted(range(len(scores)), key=lambda i: (float(scores[i]), i))
    return sorted(order[:count])


def block_widths(net: nn.Module) -> dict[str, list[int]]:
    """Attention heads and MLP hidden channels of each backbone block, as structured pruning left them."""
    blocks = [block for _, block in backbone_blocks(net)]
    return {"heads": [b.attention.attention.num_attention_heads for b in blocks],
            "mlp_channels": [b.mlp.fc1.out_features for b in blocks]}


def removed(total: int, ratio: float) -> int:
    """How many of `total` units a ratio removes: never more than asked, and never the last one."""
    return min(math.floor(ratio * total + 1e-9), total - 1)


def prune_structured(net: nn.Module, ratio: float, importance: dict[str, dict]) -> nn.Module:
    """A copy of `net` with the `ratio` fraction of heads and MLP channels of every backbone block removed."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"structured ratio {ratio} must be in [0, 1)")
    pruned = copy.deepcopy(net)
    for name, block in backbone_blocks(pruned):
        heads, channels = importance[name]["heads"], importance[name]["channels"]
        block.attention.prune_heads(set(lowest(heads, removed(len(heads), ratio))))
        drop = set(lowest(channels, removed(len(channels), ratio)))
        keep = torch.tensor([i for i in range(len(channels)) if i not in drop], dtype=torch.long)
        block.mlp.fc1 = _slice_linear(block.mlp.fc1, keep, 0)
        block.mlp.fc2 = _slice_linear(block.mlp.fc2, keep, 1)
        log.debug("%s: %d of %d heads and %d of %d MLP channels kept", name,
                  block.attention.attention.num_attention_heads, len(heads), len(keep), len(channels))
    return pruned
