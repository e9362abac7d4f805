"""Channel pruning through PyTorch and its label-free recovery, on a small detector-shaped network.

The toy network has what SCRFD's graph has: a residual add, a two-branch (FPN-like) merge through a Resize
whose output size is a constant [N, C, H, W], a sigmoid score head and a box head. It goes out to ONNX and
back through onnx2torch, as the published files do.

- Pruning keeps every output's shape and the heads' channels, really removes channels elsewhere (fewer
  parameters and FLOPs in the exported graph), and the exported file reproduces the pruned PyTorch model.
- Reconstruction and distillation each bring the pruned network closer to the original.
- A recovery interrupted after k steps and resumed from its checkpoint ends bit for bit where an
  uninterrupted one does (torch.equal on every weight, same losses).
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from facecompress.compress import channel_pruning as cp
from facecompress.compress.channel_recipe import Recipe, array_images
from facecompress.compress.channel_recovery import ChannelPruner
from facecompress.compress.distillation import Pair, distill, order, roles
from facecompress.compress.reconstruction import reconstruct
from facecompress.compress.stats import onnx_stats
from facecompress.detectors.signature import onnx_signature
from facecompress.run.sessions import make_session, run_onnx

SIZE = 64
OUTPUT_NAMES = ["537", "538"]  # numeric, as CenterFace's: torch's exporter refuses them as they are


class Toy(nn.Module):
    """Stem, a residual block, a stride-2 stage, an FPN merge of both strides, a score and a box head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1)
        self.block = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 1, 1))
        self.down = nn.Conv2d(16, 32, 3, 2, 1)
        self.lateral_fine, self.lateral_coarse = nn.Conv2d(16, 16, 1), nn.Conv2d(32, 16, 1)
        self.neck = nn.Conv2d(16, 16, 3, 1, 1)
        self.score, self.box = nn.Conv2d(16, 1, 3, 1, 1), nn.Conv2d(16, 4, 3, 1, 1)

    def forward(self, x):
        fine = F.relu(self.stem(x))
        fine = F.relu(self.block(fine) + fine)
        coarse = F.relu(self.down(fine))
        up = F.interpolate(self.lateral_coarse(coarse), size=(SIZE // 2, SIZE // 2), mode="nearest")  # a constant
        merged = F.relu(self.neck(self.lateral_fine(fine) + up))
        return torch.sigmoid(self.score(merged)), self.box(merged)


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):
    """The toy network as an ONNX file with a constant-size Resize, as SCRFD's export has."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("toy") / "toy.onnx"
    torch.onnx.export(Toy().eval(), (torch.zeros(1, 3, SIZE, SIZE),), str(path), input_names=["input.1"],
                      output_names=["score", "box"], opset_version=11, dynamo=False)
    return path


def _inputs(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(1, 3, SIZE, SIZE)).astype(np.float32) for _ in range(count)]


@pytest.fixture(scope="module")
def teacher(toy_file):
    return cp.to_torch(toy_file, _inputs(1)[0])


def _pruned(teacher):
    return cp.prune_channels(teacher, _inputs(1)[0], 0.5, min_channels=8)


def test_conversion_reproduces_onnx_runtime_on_the_file_size_and_runs_on_crops(toy_file, teacher):
    x = _inputs(1)[0]
    assert cp.max_difference(run_onnx(make_session(toy_file), [x])[0], cp.outputs_of(teacher, x)) < 1e-4
    crop = cp.outputs_of(teacher, np.ascontiguousarray(x[..., :32, :32]))
    assert [o.shape for o in crop] == [(1, 1, 16, 16), (1, 4, 16, 16)]  # the Resize follows the crop
    assert cp.probability_outputs(teacher) == [True, False]


def test_pruning_keeps_shapes_and_heads_and_removes_channels(teacher, tmp_path):
    x = _inputs(1)[0]
    pruned, kept = _pruned(teacher)
    assert [o.shape for o in cp.outputs_of(pruned, x)] == [o.shape for o in cp.outputs_of(teacher, x)]
    heads = {id(m) for m in cp.output_convs(pruned)}
    convs = {name: m for name, m in pruned.named_modules() if isinstance(m, nn.Conv2d)}
    original = dict(teacher.named_modules())
    assert {convs[n].out_channels for n in convs if id(convs[n]) in heads} == {1, 4}
    assert all(len(kept[n]) == m.out_channels for n, m in convs.items())
    assert all(m.out_channels == original[n].out_channels // 2 for n, m in convs.items() if id(m) not in heads)
    first = next(iter(convs))  # reads the unpruned image: its kept rows are the original's rows, unchanged
    assert torch.equal(convs[first].weight, original[first].weight[kept[first]])
    assert cp.conv_channels(pruned) < cp.conv_channels(teacher)


def test_exported_file_matches_the_pruned_model_under_the_given_names(toy_file, teacher, tmp_path):
    x = _inputs(1)[0]
    pruned, _ = _pruned(teacher)
    path = tmp_path / "pruned.onnx"
    cp.export_onnx(pruned, x, path, "input.1", OUTPUT_NAMES)
    inputs, outputs = onnx_signature(path)
    assert [n for n, _ in inputs] == ["input.1"] and [n for n, _ in outputs] == OUTPUT_NAMES
    onnx.checker.check_model(str(path))
    assert cp.max_difference(cp.outputs_of(pruned, x), run_onnx(make_session(path), [x])[0]) < 1e-5
    before, after = onnx_stats(toy_file), onnx_stats(path)
    assert after["parameters"] < 0.5 * before["parameters"] and after["flops"] < 0.5 * before["flops"]
    assert after["sparsity"] == 0.0  # fewer channels, not zeros


def test_a_file_that_fails_its_check_never_replaces_the_good_one(teacher, tmp_path):
    x, path = _inputs(1)[0], tmp_path / "pruned.onnx"
    pruned, _ = _pruned(teacher)
    assert cp.export_onnx(pruned, x, path, "input.1", OUTPUT_NAMES, lambda file: file.stat().st_size) > 0
    good = path.read_bytes()

    def refuse(file):
        raise ValueError("differs")

    with pytest.raises(ValueError, match="differs"):
        cp.export_onnx(teacher, x, path, "input.1", OUTPUT_NAMES, refuse)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["pruned.onnx"]


def _feature_loss(pair: Pair, arrays) -> float:
    with torch.no_grad():
        return float(np.mean([float(pair.loss(a, 1.0)) for a in arrays]))


def test_reconstruction_and_distillation_each_lower_the_distillation_loss(teacher, tmp_path):
    pruned, kept = _pruned(teacher)
    held_out = _inputs(4, seed=99)
    pair = Pair(teacher, pruned, kept, cp.probability_outputs(teacher))
    start = _feature_loss(pair, held_out)
    assert reconstruct(teacher, pruned, kept, _inputs(4, seed=1)) == len(kept)
    refitted = _feature_loss(pair, held_out)
    arrays = _inputs(8, seed=2)
    outcome = distill(pair, lambda i: arrays[i], len(arrays), Recipe(steps=40, lr=1e-3, crop=None, threads=1),
                      tmp_path / "ckpt.pt", tmp_path / "curve.csv")
    pair.close()
    assert refitted < 0.75 * start
    assert _feature_loss(Pair(teacher, pruned, kept, [True, False]), held_out) < refitted
    assert outcome.steps_done == 40 and not outcome.capped
    assert (tmp_path / "curve.csv").read_text().count("\n") == 41


def _recover(teacher, student, kept, tmp_path, stop_after=None):
    arrays = _inputs(6, seed=3)
    pair = Pair(teacher, student, kept, cp.probability_outputs(teacher))
    recipe = Recipe(steps=12, lr=1e-3, crop=32, threads=1, seed=5)
    outcome = distill(pair, lambda i: arrays[i], len(arrays), recipe, tmp_path / "ckpt.pt", tmp_path / "curve.csv",
                      {"network": "toy"}, stop_after)
    pair.close()
    return outcome


def test_a_resumed_recovery_equals_an_uninterrupted_one_bit_for_bit(teacher, tmp_path):
    pruned, kept = _pruned(teacher)
    whole, parts = copy.deepcopy(pruned), copy.deepcopy(pruned)
    full = _recover(teacher, whole, kept, tmp_path / "whole")
    first = _recover(teacher, parts, kept, tmp_path / "parts", stop_after=5)
    resumed_student = copy.deepcopy(pruned)  # a new run prunes afresh; the checkpoint brings the weights back
    second = _recover(teacher, resumed_student, kept, tmp_path / "parts")
    assert (first.steps_done, first.capped, second.steps_done) == (5, True, 12)
    assert second.seconds > first.seconds  # the resumed run counts the time of the first
    assert second.losses == full.losses
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed_student.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), pruned.state_dict().values()))


def test_another_network_does_not_resume_from_the_checkpoint(teacher, tmp_path):
    pruned, kept = _pruned(teacher)
    _recover(teacher, copy.deepcopy(pruned), kept, tmp_path, stop_after=5)
    arrays = _inputs(6, seed=3)
    pair = Pair(teacher, copy.deepcopy(pruned), kept, [True, False])
    outcome = distill(pair, lambda i: arrays[i], len(arrays), Recipe(steps=12, lr=1e-3, crop=32, threads=1, seed=5),
                      tmp_path / "ckpt.pt", tmp_path / "curve.csv", {"network": "another"}, 2)
    assert len(outcome.losses) == 2  # started over instead of going on from step 5


def test_schedule_visits_every_image_once_a_pass_and_pairs_regressions_with_scores():
    assert sorted(order(7, step, 0)[0] for step in range(7)) == list(range(7))
    assert [order(7, step, 0) for step in range(20)] == [order(7, step, 0) for step in range(20)]
    assert roles([True, False, False], [(1, 100, 1), (1, 100, 4), (1, 25, 4)]) == [None, 0, None]
    assert roles([True, False], [(1, 1, 8, 8), (1, 2, 8, 8)]) == [None, 0]


def test_the_family_files_are_made_checked_and_recovered_with_a_curve_and_checkpoint(toy_file, tmp_path):
    pruner = ChannelPruner(toy_file, "input.1", _inputs(2, seed=7))
    before = pruner.pruned(0.5, 8, tmp_path / "toy-channel50.onnx")
    recipe = Recipe(steps=6, crop=32, threads=1)
    after = pruner.recovered(0.5, 8, tmp_path / "toy-channel50-recovered.onnx", array_images(_inputs(4, seed=8)),
                             recipe, reconstruction_images=2)
    assert before["channels_after"] < before["channels_before"] == after["channels_before"]
    assert before["conversion_max_rel_diff"] < 1e-4 and after["export_max_rel_diff"] < 1e-4
    recovery = after["recovery"]
    assert (recovery["steps_done"], recovery["capped"], recovery["overlaps_evaluation"]) == (6, False, True)
    assert recovery["reconstructed_layers"] == 9
    assert (tmp_path / recovery["loss_curve"]).is_file() and (tmp_path / recovery["checkpoint"]).is_file()
    first_file = (tmp_path / "toy-channel50-recovered.onnx").read_bytes()
    again = pruner.recovered(0.5, 8, tmp_path / "toy-channel50-recovered.onnx", array_images(_inputs(4, seed=8)),
                             recipe, reconstruction_images=2)
    same = ("steps_done", "reconstructed_layers", "checkpoint")
    assert [again["recovery"][k] for k in same] == [recovery[k] for k in same]
    assert again["export_max_rel_diff"] == after["export_max_rel_diff"]
    assert (tmp_path / "toy-channel50-recovered.onnx").read_bytes() == first_file
