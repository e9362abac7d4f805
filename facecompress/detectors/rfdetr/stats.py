"""Parameter, non-zero and FLOP counts of a PyTorch detector, as the manifest reports them."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from ...detectors.rfdetr.export import export_ready


FLOPS_METHOD = ("torch FlopCounterMode on one [1, 3, R, R] forward of the export graph, plus CPU attention; "
                "a multiply-add counts 2; element-wise ops, norms and grid sampling not counted")


def count_parameters(net: nn.Module) -> tuple[int, int]:
    """(parameters, non-zero parameters): the gap is what unstructured pruning removed."""
    total = sum(p.numel() for p in net.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in net.parameters())
    return total, nonzero


def _cpu_sdpa_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of CPU scaled-dot-product attention, which torch's counter has no formula for."""
    return sdpa_flop_count(query, key, value)


def count_flops(net: nn.Module, resolution: int) -> int:
    """FLOPs of one [1, 3, R, R] forward of the export graph (a multiply-add counts 2; grid sampling not counted).

    Counts matrix products and convolutions with torch's FlopCounterMode, plus the CPU attention kernel it
    misses; element-wise ops, LayerNorm and the deformable sampling are left out, as such counters usually do.
    """
    ready = export_ready(net, resolution)
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:  # not under no_grad: the counter's module tracker needs autograd enabled
        ready(torch.zeros(1, 3, resolution, resolution))
    return int(counter.get_total_flops())
