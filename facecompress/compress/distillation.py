"""Label-free recovery of a channel-pruned network: train it to reproduce its FP32 teacher's outputs.

No labels are needed: the teacher (the family's FP32 network, unpruned) gives every output map a target
(SCRFD's scores, box distances and landmarks per stride; CenterFace's heatmap, scale, offset and landmark
maps), and the pruned student is fitted to all of them on unlabelled images: scores and heatmaps by
cross-entropy (squared error on a sigmoid, mostly background, is won by a flat low score: SCRFD-2.5G's
scores all sat near 0.04 after 250 steps of it), regression maps by squared error weighted by the teacher's
score at the same place. Channel pruning keeps a subset of each convolution's channels, so every
convolution of the student also has a target of its own shape, the teacher's output at the kept channels;
`Recipe.features` weighs that loss against the outputs'.

The schedule is fixed by `Recipe.steps` and the seed alone: step i's image and flip are a function of
(seed, i), the learning rate of (i, steps). A wall-clock cap (`Recipe.minutes`) stops a run early at a
step boundary, so a capped run is exactly a prefix of the full one, and the checkpoint it leaves is
resumed by the next run with the same schedule, which goes on from that step as if it had never stopped.

The student is fitted in eval mode: BatchNorm keeps the running statistics the FP32 network was trained
with (batch-1 statistics on a CPU budget would be noise), while every weight, BatchNorm's scale and shift
included, gets gradients.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..core.atomic import atomic_path, write_csv
from .channel_recipe import Recipe

log = logging.getLogger(__name__)

Images = Callable[[int], np.ndarray]  # the index of an image in a fixed list -> its preprocessed [1, 3, H, W] input
CHECKPOINT_EVERY = 20  # steps between checkpoints (and at the end, capped or not)
EPSILON = 1e-7
CROP_GRID = 32  # crop corners on this grid: the coarsest stride of both families


@dataclass
class Outcome:
    """What a recovery did: steps done of those planned, whether the cap stopped it, the seconds of every run
    that made them (a resumed run adds its own to the checkpoint's), and the loss curve."""

    steps_done: int
    steps_planned: int
    capped: bool
    seconds: float
    losses: list[float]

    def facts(self) -> dict:
        """The manifest's record of the run (the full curve is in the CSV beside the model)."""
        first, last = _window(self.losses, 0), _window(self.losses, -1)
        return {"steps_done": self.steps_done, "steps_planned": self.steps_planned, "capped": self.capped,
                "seconds": round(self.seconds, 1), "loss_first_20": first, "loss_last_20": last}


def _window(losses: list[float], end: int, size: int = 20) -> float | None:
    """Mean loss of the first (end=0) or last (end=-1) `size` steps, or None without any."""
    if not losses:
        return None
    part = losses[:size] if end == 0 else losses[-size:]
    return round(float(np.mean(part)), 6)


def order(count: int, step: int, seed: int) -> tuple[int, bool]:
    """(image index, flipped) of `step`: each pass over the images in a fresh seeded order, every image once."""
    epoch, position = divmod(step, count)
    rng = np.random.default_rng([seed, epoch])
    index = int(rng.permutation(count)[position])
    flipped = bool(np.random.default_rng([seed, epoch, position]).integers(2))
    return index, flipped


def learning_rate(recipe: Recipe, step: int) -> float:
    """Cosine decay from `recipe.lr` to zero over the planned steps (a function of the step alone)."""
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * step / max(1, recipe.steps)))


def roles(probability: Sequence[bool], shapes: Sequence[tuple[int, ...]]) -> list[int | None]:
    """For each output, the index of the probability output that weights it, or None.

    A regression output (box distances, landmarks, sizes, offsets) is paired with the probability output
    (a score or heatmap) that broadcasts onto it: SCRFD's score (1, N, 1) onto its box (1, N, 4), CenterFace's
    heatmap (1, 1, H, W) onto its maps (1, C, H, W). Probability outputs and unpaired ones get None.
    """
    def fits(small: tuple[int, ...], large: tuple[int, ...]) -> bool:
        return len(small) == len(large) and all(a in (1, b) for a, b in zip(small, large))

    return [None if probability[i] else next((j for j, p in enumerate(probability) if p and fits(shapes[j], shape)),
                                            None) for i, shape in enumerate(shapes)]


def _probability_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """KL divergence of the student's Bernoulli outputs from the teacher's, per unit of the teacher's face mass.

    On a sigmoid output, cross-entropy's gradient is (student - teacher) however saturated the sigmoid is;
    squared error's fades there, and on maps that are nearly all background a flat low score wins it.
    """
    s = student.clamp(EPSILON, 1 - EPSILON)
    t = teacher.clamp(EPSILON, 1 - EPSILON)
    kl = t * (t.log() - s.log()) + (1 - t) * ((1 - t).log() - (1 - s).log())
    return kl.sum() / teacher.sum().clamp_min(1.0)


def _regression_loss(student: torch.Tensor, teacher: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Squared error relative to the teacher's own mean square, weighted by where the teacher sees a face.

    The decoder reads a box only where the score is high, so the teacher's regressions over background are
    not worth fitting; without a paired probability every position counts alike.
    """
    weight = torch.ones_like(teacher) if weight is None else weight.expand_as(teacher)
    return (weight * (student - teacher) ** 2).sum() / (weight * teacher ** 2).sum().clamp_min(EPSILON)


def distillation_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor],
                      paired: Sequence[int | None], probability: Sequence[bool]) -> torch.Tensor:
    """The sum over outputs of each one's loss: cross-entropy for probabilities, weighted squared error else."""
    return sum(_probability_loss(s, t) if probability[i] else
               _regression_loss(s, t, None if paired[i] is None else teacher[paired[i]])
               for i, (s, t) in enumerate(zip(student, teacher)))


def window(array: np.ndarray, crop: int | None, key: Sequence[int]) -> np.ndarray:
    """A `crop` x `crop` window of a [1, 3, H, W] input, its corner drawn on the CROP_GRID by a generator seeded
    with `key` (non-negative integers).

    A corner on the coarsest stride's grid keeps the crop's anchors the full input's anchors; a crop is
    several times cheaper a step than the whole input, and faces keep their size in it.
    """
    height, width = array.shape[-2:]
    if crop is None or crop >= min(height, width):
        return np.ascontiguousarray(array)
    rng = np.random.default_rng(list(key))
    top, left = (CROP_GRID * int(rng.integers((side - crop) // CROP_GRID + 1)) for side in (height, width))
    return np.ascontiguousarray(array[..., top:top + crop, left:left + crop])


def _input(images: Images, count: int, step: int, recipe: Recipe) -> np.ndarray:
    """Step `step`'s preprocessed input: mirrored left-right when the schedule says so, cut to the crop."""
    index, flipped = order(count, step, recipe.seed)
    array = images(index)
    return window(array[..., ::-1] if flipped and recipe.flip else array, recipe.crop, (recipe.seed, step, 1))


class Pair:
    """Teacher and student run side by side, each convolution's output captured by a hook for the feature loss."""

    def __init__(self, teacher: nn.Module, student: nn.Module, kept: dict[str, list[int]],
                 probability: Sequence[bool]):
        self.teacher, self.student, self.probability = teacher.eval(), student.eval(), list(probability)
        self.kept = {name: torch.tensor(indices) for name, indices in kept.items()}
        self.features: dict[str, dict[str, torch.Tensor]] = {"teacher": {}, "student": {}}
        self._handles = [module.register_forward_hook(self._keeper(side, name))
                         for side, net in (("teacher", teacher), ("student", student))
                         for name, module in net.named_modules() if name in self.kept]

    def _keeper(self, side: str, name: str):
        def keep(_module, _inputs, output):
            self.features[side][name] = output
        return keep

    def close(self) -> None:
        """Remove the hooks: the student leaves as a plain module."""
        for handle in self._handles:
            handle.remove()

    def loss(self, array: np.ndarray, features: float) -> torch.Tensor:
        """The distillation loss of one input: outputs, plus `features` x the mean kept-channel feature loss."""
        inputs = torch.from_numpy(array)
        with torch.no_grad():
            targets = list(self.teacher(inputs))
        outputs = list(self.student(inputs))
        paired = roles(self.probability, [tuple(t.shape) for t in targets])
        loss = distillation_loss(outputs, targets, paired, self.probability)
        if features:
            loss = loss + features * self._feature_loss()
        return loss

    def _feature_loss(self) -> torch.Tensor:
        """Mean over convolutions of the squared error at the kept channels, relative to the teacher's mean square."""
        teacher, student = self.features["teacher"], self.features["student"]
        terms = [_regression_loss(student[name], teacher[name].index_select(1, self.kept[name]), None)
                 for name in self.kept if name in student]
        return sum(terms) / max(1, len(terms))


def _step(pair: Pair, optimizer: torch.optim.Optimizer, array: np.ndarray, features: float) -> float:
    """One gradient step towards the teacher on one input; its loss before the step."""
    loss = pair.loss(array, features)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _state(checkpoint: Path, recipe: Recipe, identity: dict) -> dict | None:
    """The checkpoint's state if it holds this schedule for this network and these images, else None."""
    if not checkpoint.is_file():
        return None
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if (state.get("schedule"), state.get("identity")) != (recipe.schedule(), identity):
        log.info("%s: another schedule or network (%s); starting over", checkpoint, state.get("schedule"))
        return None
    return state


def resumable(checkpoint: str | Path, recipe: Recipe, identity: dict) -> bool:
    """Whether `distill` would go on from `checkpoint` (so whatever the student starts from is overwritten)."""
    return _state(Path(checkpoint), recipe, identity) is not None


def _load(checkpoint: Path, recipe: Recipe, identity: dict, student: nn.Module,
          optimizer) -> tuple[int, list[float], float]:
    """(step, losses, seconds spent so far) of a checkpoint of the same schedule, loaded into student and
    optimizer; (0, [], 0.0) if none."""
    state = _state(checkpoint, recipe, identity)
    if state is None:
        return 0, [], 0.0
    student.load_state_dict(state["student"])
    optimizer.load_state_dict(state["optimizer"])
    log.info("%s: resuming at step %d of %d", checkpoint, state["step"], recipe.steps)
    return int(state["step"]), list(state["losses"]), float(state.get("seconds", 0.0))


def _save(checkpoint: Path, recipe: Recipe, identity: dict, student: nn.Module, optimizer, step: int,
          losses: list[float], seconds: float) -> None:
    """The state after `step` steps, written atomically: an interrupted run resumes from it."""
    state = {"schedule": recipe.schedule(), "identity": identity, "step": step, "losses": losses, "seconds": seconds,
             "student": student.state_dict(), "optimizer": optimizer.state_dict()}
    with atomic_path(checkpoint) as tmp:
        torch.save(state, tmp)


def distill(pair: Pair, images: Images, count: int, recipe: Recipe, checkpoint: str | Path, curve: str | Path,
            identity: dict | None = None, stop_after: int | None = None) -> Outcome:
    """Fit `pair.student` (in place) to `pair.teacher` on `count` images for `recipe.steps` steps, or until the cap.

    Resumes from `checkpoint` when it holds the same schedule and `identity` (what else decides the result:
    the network, the images); writes the loss curve (step, loss, lr) to `curve`. `stop_after` ends the run
    after that many steps in total, as a cap or an interruption would.
    """
    identity = identity or {}
    if count < 1:
        raise ValueError("recovery needs at least one image")
    torch.manual_seed(recipe.seed)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(recipe.threads)
    student = pair.student
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=recipe.lr)
    checkpoint, start = Path(checkpoint), time.perf_counter()
    step, losses, before = _load(checkpoint, recipe, identity, student, optimizer)
    spent = lambda: before + time.perf_counter() - start  # noqa: E731  (every run's time, for the manifest)
    end = recipe.steps if stop_after is None else min(recipe.steps, stop_after)
    try:
        with tqdm(total=recipe.steps, initial=step, desc="recovery", unit="step") as bar:
            while step < end and time.perf_counter() - start < 60 * recipe.minutes:
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(recipe, step)
                losses.append(_step(pair, optimizer, _input(images, count, step, recipe), recipe.features))
                step += 1
                bar.update()
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                if step % CHECKPOINT_EVERY == 0:
                    _save(checkpoint, recipe, identity, student, optimizer, step, losses, spent())
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    _save(checkpoint, recipe, identity, student, optimizer, step, losses, spent())
    write_csv(curve, [{"step": i + 1, "loss": loss, "lr": learning_rate(recipe, i)} for i, loss in enumerate(losses)])
    return Outcome(step, recipe.steps, step < recipe.steps, spent(), losses)
