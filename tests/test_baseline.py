"""The starting detector: untrained from a seed, or a checkpoint checked against the variant it claims."""

from __future__ import annotations

import pytest
import torch

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
