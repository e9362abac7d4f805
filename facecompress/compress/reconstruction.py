"""Least-squares reconstruction of a channel-pruned network's convolutions from its unpruned original.

Removing channels by weight magnitude leaves every later layer reading fewer inputs than it was trained
on; in a network as narrow as SCRFD-2.5G (12 to 80 channels a layer) the errors compound until nothing is
detected (Hard AP 0.002 at 25 %). Each convolution in forward order is therefore refitted, by ridge
regression on a few images, so that on the inputs the pruned network now feeds it, it reproduces the
original's output at the channels it kept (He, Zhang and Sun, "Channel Pruning for Accelerating Very Deep
Neural Networks", ICCV 2017). It takes two forward passes over one batch of images: the teacher's, which
samples the targets, and the student's, in which each convolution is refitted just before it runs. No
labels are involved and no gradient step is taken; distillation starts from the result.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

SAMPLES = 2048  # output positions per image and layer that enter the regression
RIDGE = 1e-3  # of the mean diagonal of the normal matrix: pulls an ill-posed fit towards the current weights


def _targets(teacher: nn.Module, names: Sequence[str], kept: dict[str, list[int]], batch: torch.Tensor,
             rng: np.random.Generator) -> dict[str, tuple[list[torch.Tensor], torch.Tensor]]:
    """Per layer: the output positions sampled in each image, and the teacher's outputs there at the kept channels.

    One forward pass of the teacher over the whole batch; only the samples are kept.
    """
    found: dict[str, tuple[list[torch.Tensor], torch.Tensor]] = {}

    def keeper(name: str):
        def keep(_module, _inputs, output):
            flat = output[:, kept[name]].flatten(2)  # (images, kept channels, positions)
            take = [torch.from_numpy(rng.choice(flat.shape[2], min(SAMPLES, flat.shape[2]), replace=False))
                    for _ in range(len(flat))]
            found[name] = (take, torch.cat([flat[i][:, t] for i, t in enumerate(take)], 1).double())
        return keep

    modules = dict(teacher.named_modules())
    handles = [modules[name].register_forward_hook(keeper(name)) for name in names]
    try:
        with torch.no_grad():
            teacher(batch)
    finally:
        for handle in handles:
            handle.remove()
    return found


class _Refitting:
    """Forward hooks that refit each listed convolution from the input it is about to get, then let it run."""

    def __init__(self, student: nn.Module, targets: dict, progress):
        self.targets, self.progress = targets, progress
        modules = dict(student.named_modules())
        self.handles = [modules[name].register_forward_pre_hook(self._hook(name)) for name in targets]

    def _hook(self, name: str):
        def refit(conv, inputs):
            take, wanted = self.targets[name]
            patches = torch.cat([_columns(conv, inputs[0][i:i + 1])[:, t] for i, t in enumerate(take)], 1)
            _solve(conv, patches.double(), wanted)
            self.progress.update()
        return refit

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _columns(conv: nn.Conv2d, inputs: torch.Tensor) -> torch.Tensor:
    """The convolution's input patches, one column per output position: (in_channels x kh x kw, positions)."""
    return F.unfold(inputs, conv.kernel_size, conv.dilation, conv.padding, conv.stride)[0]


def _solve(conv: nn.Conv2d, patches: torch.Tensor, targets: torch.Tensor) -> None:
    """Refit the convolution's weight and bias, group by group, by ridge regression towards its current weights."""
    groups, out = conv.groups, conv.out_channels
    per_in, per_out = patches.shape[0] // groups, out // groups
    weight = conv.weight.detach().double().reshape(out, -1)
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros(out, dtype=torch.float64)
    for g in range(groups):
        x = torch.cat([patches[g * per_in:(g + 1) * per_in], torch.ones(1, patches.shape[1], dtype=torch.float64)])
        rows = slice(g * per_out, (g + 1) * per_out)
        start = torch.cat([weight[rows], bias[rows, None]], 1)
        normal = x @ x.T
        ridge = RIDGE * normal.diagonal().mean().clamp_min(1e-12)
        solved = torch.linalg.solve(normal + ridge * torch.eye(len(x), dtype=torch.float64),
                                    x @ targets[rows].T + ridge * start.T).T
        weight[rows], bias[rows] = solved[:, :-1], solved[:, -1]
    with torch.no_grad():
        conv.weight.copy_(weight.reshape(conv.weight.shape).float())
        if conv.bias is not None:
            conv.bias.copy_(bias.float())


def refittable(student: nn.Module, kept: dict[str, list[int]]) -> list[str]:
    """The student's convolutions `reconstruct` refits: 2-D, with a bias, and pruned from a teacher layer."""
    return [n for n, m in student.named_modules() if type(m) is nn.Conv2d and m.bias is not None and n in kept]


def reconstruct(teacher: nn.Module, student: nn.Module, kept: dict[str, list[int]], arrays: Sequence[np.ndarray],
                seed: int = 0) -> int:
    """Refit, in place and in forward order, each of the student's 2-D convolutions to the teacher's kept outputs.

    One teacher pass samples the targets; one student pass refits each convolution just before it runs, so
    that it is fitted to the inputs the already refitted layers before it now give (all `arrays`, which must
    share one shape, as one batch). Without a bias a convolution could not absorb the mean shift the fit
    needs, so it is refitted only when it has one (every convolution of the converted SCRFD and CenterFace
    graphs does). Returns how many were refitted.
    """
    rng = np.random.default_rng(seed)
    names = refittable(student, kept)
    batch = torch.from_numpy(np.concatenate(list(arrays)))
    targets = _targets(teacher, names, kept, batch, rng)
    with tqdm(total=len(names), desc="reconstruction", unit="layer") as progress:
        refitting = _Refitting(student, targets, progress)
        try:
            with torch.no_grad():
                student(batch)
        finally:
            refitting.close()
    return len(names)
