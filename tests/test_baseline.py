"""The starting detector: untrained from a seed, or a checkpoint checked against the variant it claims."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from facecompress.cli import add_source_args
from facecompress.detectors.rfdetr.loading import (_construct, check_resolution, checkpoint_variant, decoder_layers, describe_source,
                                   load_baseline, read_checkpoint, resolve_variant)
from facecompress.core.errors import InputError
from model_fixtures import RESOLUTION, small_baseline


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint in rfdetr's training layout (all 13 query groups), from a seed-1 Nano."""
    torch.manual_seed(1)
    model = _construct("nano", pretrain_weights=None, num_classes=1, resolution=RESOLUTION)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint_best_total.pth"
    torch.save({"model": model.model.model.state_dict(), "model_name": "RFDETRNano",
                "args": {"resolution": RESOLUTION, "num_classes": 1}}, path)
    return path, model.model.model.state_dict()


def test_untrained_is_described_and_trimmed_to_inference_queries():
    baseline = small_baseline()
    assert baseline.provenance == "untrained (seed 0)"
    assert (baseline.variant, baseline.resolution, baseline.num_classes) == ("nano", RESOLUTION, 1)
    assert baseline.net.query_feat.weight.shape[0] == baseline.net.num_queries == 300
    assert len(baseline.net.transformer.enc_out_class_embed) == 1
    assert not baseline.net.training


def test_same_seed_same_weights():
    again = load_baseline(resolution=RESOLUTION, seed=0)
    for (name, a), (_, b) in zip(small_baseline().net.state_dict().items(), again.net.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("side", [0, 100, 383, -32])
def test_resolution_must_be_a_multiple_of_32(side):
    with pytest.raises(InputError, match="multiple of 32"):
        check_resolution(side)


def test_checkpoint_loads_its_weights_and_records_its_hash(checkpoint):
    path, state = checkpoint
    baseline = load_baseline(checkpoint=path)
    assert baseline.variant == "nano" and baseline.resolution == RESOLUTION and baseline.num_classes == 1
    assert baseline.source["kind"] == "checkpoint" and len(baseline.source["sha256"]) == 64
    assert baseline.provenance.startswith("checkpoint checkpoint_best_total.pth (sha256 ")
    key = "backbone.0.encoder.encoder.encoder.layer.3.mlp.fc1.weight"
    assert torch.equal(baseline.net.state_dict()[key], state[key])


def test_checkpoint_for_another_variant_is_refused(checkpoint):
    path, _ = checkpoint
    with pytest.raises(InputError, match="not --variant small"):
        load_baseline(checkpoint=path, variant="small")


def test_variant_is_checked_against_decoder_depth(checkpoint):
    _, state = checkpoint
    assert decoder_layers(state) == 2
    claims_small = {"model": state, "model_name": "RFDETRSmall"}
    assert checkpoint_variant(claims_small) == "small"
    with pytest.raises(InputError, match="has 2 decoder layers, RF-DETR small has 3"):
        resolve_variant(claims_small, None, "x.pth")


@pytest.mark.parametrize("content, message", [
    (b"not a checkpoint at all", "not a readable PyTorch checkpoint"),
    (None, "no 'model' state dict"),
])
def test_broken_checkpoints_are_one_line_input_errors(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_checkpoint_and_conflicting_sources(tmp_path):
    with pytest.raises(InputError, match="checkpoint not found"):
        load_baseline(checkpoint=tmp_path / "nope.pth")
    with pytest.raises(InputError, match="alternatives"):
        load_baseline(checkpoint=tmp_path / "nope.pth", weights="coco")


def test_source_descriptions():
    assert describe_source({"kind": "untrained", "seed": 7}) == "untrained (seed 7)"
    assert describe_source({"kind": "coco", "path": "/cache/rf-detr-nano.pth"}) == "COCO weights rf-detr-nano.pth"


BACKBONE_KEY = "backbone.0.encoder.encoder.encoder.layer.3.mlp.fc1.weight"


def without(state, key):
    return {k: v for k, v in state.items() if k != key}


def renamed(state, key):
    return {(f"{k}_renamed" if k == key else k): v for k, v in state.items()}


def with_extra(state, key):
    return {**state, "backbone.0.extra.weight": torch.zeros(3)}


def head_for_three_classes(state, key):
    """The fixture's weights with its class heads (final and encoder-stage) sized for 3 classes + background."""
    return {k: (torch.zeros(4, *v.shape[1:]) if "class_embed." in k else v) for k, v in state.items()}


def saved(state: dict, tmp_path) -> Path:
    path = tmp_path / "altered.pth"
    torch.save({"model": state, "model_name": "RFDETRNano", "args": {"resolution": RESOLUTION}}, path)
    return path


UNUSED = "1 tensor in the checkpoint but unused"


@pytest.mark.parametrize("alter, num_classes, named", [
    (without, None, ["1 tensor left at random init", BACKBONE_KEY]),
    (renamed, None, ["1 tensor left at random init", UNUSED, f"({BACKBONE_KEY})", f"({BACKBONE_KEY}_renamed)"]),
    (with_extra, None, [UNUSED, "backbone.0.extra.weight"]),
    (head_for_three_classes, 1, ["trained for 3 classes, built for 1", "28 tensors resized",
                                 "enc_out_class_embed.0.weight"]),
])
def test_partly_loading_checkpoint_is_a_one_line_error_naming_the_tensors(checkpoint, tmp_path, alter, num_classes,
                                                                           named):
    path = saved(alter(checkpoint[1], BACKBONE_KEY), tmp_path)
    with pytest.raises(InputError, match="loads only partly into RF-DETR nano") as err:
        load_baseline(checkpoint=path, num_classes=num_classes)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "--allow-partial" in message
    for part in named:
        assert part in message


def test_checkpoint_for_another_class_count_loads_whole_at_its_own_count(checkpoint, tmp_path):
    baseline = load_baseline(checkpoint=saved(head_for_three_classes(checkpoint[1], None), tmp_path))
    assert baseline.num_classes == 3 and "partial" not in baseline.source
    assert "PARTIAL" not in baseline.provenance


def test_allow_partial_loads_and_marks_the_provenance(checkpoint, tmp_path):
    path = saved(without(checkpoint[1], BACKBONE_KEY), tmp_path)
    baseline = load_baseline(checkpoint=path, allow_partial=True)
    assert baseline.source["partial"] == {"random_init": [BACKBONE_KEY], "resized": [], "unused": []}
    assert baseline.provenance.endswith(", PARTIAL: 1 tensor left at random init)")
    assert "partial" not in load_baseline(checkpoint=checkpoint[0], allow_partial=True).source


def test_allow_partial_is_a_source_flag_off_by_default():
    parser = argparse.ArgumentParser()
    add_source_args(parser)
    assert not parser.parse_args([]).allow_partial
    assert parser.parse_args(["--allow-partial"]).allow_partial
