"""The RF-DETR detector every variant starts from: built untrained, loaded from a checkpoint, or the COCO weights.

Whatever the source, the result is the bare `LWDETR` module trimmed to what inference runs, plus a record of
where it came from that every later table and plot title repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import os
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from ...core.errors import InputError
from ...core.checksums import sha256_file
from . import BLOCK, CLASS_NAMES, DECODER_LAYERS, VARIANTS

log = logging.getLogger(__name__)

# Tensors rfdetr fits to the model faithfully (query groups sliced, position embeddings interpolated to the resolution)
RESAMPLED = ("refpoint_embed.weight", "query_feat.weight", "embeddings.position_embeddings")
REBUILT = "_kp_active_mask"  # a buffer rfdetr derives from the config; published checkpoints predate it


@dataclass(frozen=True)
class Baseline:
    """The starting detector: `net` is an eval-mode `LWDETR` holding only the weights inference uses."""

    net: nn.Module
    variant: str
    resolution: int
    num_classes: int
    source: dict

    @property
    def provenance(self) -> str:
        """The one-line origin every later table and plot title prints."""
        return describe_source(self.source)


def describe_source(source: dict) -> str:
    """'untrained (seed 0)', 'checkpoint best.pth (sha256 1a2b3c4d…)' or 'COCO weights rf-detr-nano.pth'.

    A checkpoint loaded with --allow-partial says PARTIAL and what did not load, so no table or plot title
    passes it off as the trained model.
    """
    if source["kind"] == "untrained":
        return f"untrained (seed {source['seed']})"
    if source["kind"] == "checkpoint":
        partial = f", PARTIAL: {describe_gaps(source['partial'])}" if source.get("partial") else ""
        return f"checkpoint {Path(source['path']).name} (sha256 {source['sha256'][:12]}{partial})"
    return f"COCO weights {Path(source['path']).name}"


def load_gaps(state: dict, net: nn.Module) -> dict[str, list[str]]:
    """What of a checkpoint's `state` did not end up in `net` as trained; empty lists when it loaded whole.

    rfdetr loads with strict=False and only logs the gaps (a warning quiet_rfdetr hides), so they are recomputed
    from the two state dicts: model tensors the checkpoint lacks ('random_init'), tensors rfdetr truncated or tiled
    to fit ('resized': the class head for another class count) and checkpoint tensors nothing took ('unused').
    """
    model = net.state_dict()
    return {"random_init": [k for k in model if k not in state and not k.endswith(REBUILT)],
            "resized": [k for k, v in model.items() if k in state and not k.endswith(RESAMPLED)
                        and tuple(state[k].shape) != tuple(v.shape)],
            "unused": [k for k in state if k not in model]}


def describe_gaps(gaps: dict[str, list[str]], names: int = 0) -> str:
    """'2 tensors left at random init; 1 tensor in the checkpoint but unused', naming up to `names` of each kind."""
    labels = {"random_init": "left at random init", "resized": "resized from the checkpoint's shape (not trained "
              "at this size)", "unused": "in the checkpoint but unused"}
    parts = []
    for kind, label in labels.items():
        keys = gaps.get(kind, [])
        if keys:
            listed = ", ".join(keys[:names]) + (f", … {len(keys) - names} more" if len(keys) > names else "")
            parts.append(f"{len(keys)} tensor{'s' * (len(keys) != 1)} {label}" + (f" ({listed})" if names else ""))
    return "; ".join(parts)


def check_resolution(resolution: int) -> None:
    """Refuse a side the windowed DINOv2 backbone cannot split into patches and windows."""
    if resolution <= 0 or resolution % BLOCK:
        raise InputError(f"--resolution {resolution}: must be a positive multiple of {BLOCK} "
                         "(patch size 16 x 2 attention windows)")


@contextlib.contextmanager
def quiet_rfdetr() -> Iterator[None]:
    """Silence rfdetr's expected warnings (no DINOv2 weights, untrained init) so the run's own log stays readable.

    Its 'loaded only partially' warning goes too; `load_gaps` checks for that itself rather than scraping logs.
    """
    rf_logger = logging.getLogger("rf-detr")
    level = rf_logger.level
    rf_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        rf_logger.setLevel(level)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint without running pickled code; anything unreadable becomes an InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals([argparse.Namespace, types.SimpleNamespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise InputError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'no detail'})") from None
    if isinstance(checkpoint, dict) and "model" not in checkpoint and isinstance(checkpoint.get("state_dict"), dict):
        prefix = "model."  # a PyTorch Lightning .ckpt keeps the detector's weights under state_dict, prefixed
        model = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
        checkpoint = {**checkpoint, "model": model}
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise InputError(f"{path}: not an RF-DETR checkpoint (no 'model' state dict; expected e.g. "
                         "checkpoint_best_total.pth from rfdetr training)")
    if "class_embed.bias" not in checkpoint["model"]:
        raise InputError(f"{path}: not an RF-DETR detection checkpoint (no 'class_embed.bias' in its weights)")
    return checkpoint


def _setting(checkpoint: dict, key: str) -> object:
    """A training setting from the checkpoint's `model_config` or `args` (dict or namespace), or None."""
    for section in (checkpoint.get("model_config"), checkpoint.get("args")):
        value = section.get(key) if isinstance(section, dict) else getattr(section, key, None)
        if value is not None:
            return value
    return None


def decoder_layers(state: dict) -> int:
    """Number of decoder layers a state dict holds weights for."""
    prefix = "transformer.decoder.layers."
    return len({key[len(prefix):].split(".", 1)[0] for key in state if key.startswith(prefix)})


def checkpoint_variant(checkpoint: dict) -> str | None:
    """The variant a checkpoint records (model_name, else its pretrain weights' name), or None if it says nothing."""
    names = {cls.lower(): variant for variant, cls in CLASS_NAMES.items()}
    recorded = str(checkpoint.get("model_name") or "").strip().lower()
    if recorded in names:
        return names[recorded]
    weights = str(_setting(checkpoint, "pretrain_weights") or "").lower()
    return next((v for v in VARIANTS if f"rf-detr-{v}" in weights), None)


def resolve_variant(checkpoint: dict, requested: str | None, path: str | os.PathLike) -> str:
    """The checkpoint's variant, checked against its decoder depth and against what the user asked for."""
    layers = decoder_layers(checkpoint["model"])
    recorded = checkpoint_variant(checkpoint)
    by_depth = [v for v in VARIANTS if DECODER_LAYERS[v] == layers]
    if not by_depth:
        raise InputError(f"{path}: {layers} decoder layers match no RF-DETR variant ({', '.join(VARIANTS)})")
    variant = recorded or requested or (by_depth[0] if len(by_depth) == 1 else None)
    if variant is None:
        raise InputError(f"{path}: cannot tell {' from '.join(by_depth)} apart; pass --variant")
    if DECODER_LAYERS[variant] != layers:
        raise InputError(f"{path}: has {layers} decoder layers, RF-DETR {variant} has {DECODER_LAYERS[variant]}")
    if requested and requested != variant:
        raise InputError(f"{path}: checkpoint is for RF-DETR {variant}, not --variant {requested}")
    return variant


def inference_module(lwdetr: nn.Module) -> nn.Module:
    """A copy of rfdetr's `LWDETR` keeping only the query group inference uses.

    Training runs `group_detr` (13) query sets; evaluation and export use the first. The others would inflate
    parameter counts and be pruned for nothing, so they are dropped here; outputs are unchanged.
    """
    net = copy.deepcopy(lwdetr).eval()
    queries = net.num_queries
    net.query_feat = nn.Embedding.from_pretrained(net.query_feat.weight[:queries].detach().clone(), freeze=False)
    net.refpoint_embed = nn.Embedding.from_pretrained(net.refpoint_embed.weight[:queries].detach().clone(),
                                                      freeze=False)
    for name in ("enc_output", "enc_output_norm", "enc_out_class_embed", "enc_out_bbox_embed"):
        modules = getattr(net.transformer, name, None)
        if isinstance(modules, nn.ModuleList):
            setattr(net.transformer, name, nn.ModuleList([modules[0]]))
    net.group_detr = net.transformer.group_detr = 1
    return net


def _construct(variant: str, **kwargs):
    """Instantiate rfdetr's class for `variant` quietly."""
    import rfdetr

    with quiet_rfdetr():
        return getattr(rfdetr, CLASS_NAMES[variant])(**kwargs)


def _check_complete(path: Path, variant: str, checkpoint: dict, net: nn.Module, allow_partial: bool) -> dict:
    """The gaps of a load that left weights untrained: an InputError, or with `allow_partial` a warning and a record.

    A partly loaded model compressed and benchmarked as if trained would mislead every result downstream.
    """
    gaps = load_gaps(checkpoint["model"], net)
    if not any(gaps.values()):
        return {}
    trained, built = int(checkpoint["model"]["class_embed.bias"].shape[0]) - 1, int(net.class_embed.out_features) - 1
    classes = f" (trained for {trained} classes, built for {built}; see --num-classes)" if trained != built else ""
    what = f"{path}: loads only partly into RF-DETR {variant}{classes}: {describe_gaps(gaps, names=5)}"
    if not allow_partial:
        raise InputError(f"{what}. Use a checkpoint trained for this model, or --allow-partial to go on with "
                         "every output marked PARTIAL")
    log.warning("%s; going on (--allow-partial), every output is marked PARTIAL", what)
    return gaps


def _from_checkpoint(path: Path, variant: str | None, resolution: int | None, num_classes: int | None,
                     seed: int, allow_partial: bool = False) -> tuple[object, str, dict]:
    """Load a fine-tuned checkpoint through rfdetr's own loader, checked to fit the variant and to load whole.

    With `allow_partial`, a checkpoint that loads only partly is used, and its source records what did not load.
    """
    checkpoint = read_checkpoint(path)
    variant = resolve_variant(checkpoint, variant, path)
    resolution = resolution or int(_setting(checkpoint, "resolution") or 0) or None
    classes = num_classes or int(checkpoint["model"]["class_embed.bias"].shape[0]) - 1
    kwargs = {"pretrain_weights": str(path), "num_classes": classes}
    if resolution:
        check_resolution(resolution)
        kwargs["resolution"] = resolution
    torch.manual_seed(seed)
    try:
        model = _construct(variant, **kwargs)
    except (RuntimeError, ValueError, KeyError) as err:
        raise InputError(f"{path}: does not load into RF-DETR {variant} ({str(err).splitlines()[0]})") from None
    partial = _check_complete(path, variant, checkpoint, model.model.model, allow_partial)
    source = {"kind": "checkpoint", "path": str(path), "sha256": sha256_file(path)}
    return model, variant, {**source, "partial": partial} if partial else source


def _from_coco(variant: str, resolution: int | None) -> tuple[object, str, dict]:
    """The published COCO weights (rfdetr downloads them once into its cache)."""
    kwargs = {"resolution": resolution} if resolution else {}
    try:
        model = _construct(variant, **kwargs)
    except Exception as err:  # a failed download surfaces as any of several network/IO errors
        raise InputError(f"--weights coco: could not fetch or load the published RF-DETR {variant} weights "
                         f"(offline? {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    path = str(model.model_config.pretrain_weights)
    return model, variant, {"kind": "coco", "path": path, "sha256": sha256_file(path) if os.path.isfile(path) else None}


def load_detector(checkpoint: str | os.PathLike | None = None, weights: str | None = None,
                  variant: str | None = None, resolution: int | None = None, num_classes: int | None = None,
                  seed: int = 0, allow_partial: bool = False) -> tuple[object, str, dict]:
    """rfdetr's detector object, its variant and its source record; untrained from `seed` without checkpoint or weights.

    Training needs the whole rfdetr object (configs, all query groups); inference only `load_baseline`'s trim.
    A checkpoint that loads only partly is refused unless `allow_partial`, which records the gaps in the source.
    """
    if checkpoint and weights:
        raise InputError("--checkpoint and --weights are alternatives; give one")
    if resolution:
        check_resolution(resolution)
    if checkpoint:
        return _from_checkpoint(Path(checkpoint), variant, resolution, num_classes, seed, allow_partial)
    variant = variant or "nano"
    if weights == "coco":
        return _from_coco(variant, resolution)
    if weights:
        raise InputError(f"--weights {weights}: only 'coco' is known (use --checkpoint for a file)")
    torch.manual_seed(seed)
    kwargs = {"pretrain_weights": None, "num_classes": num_classes or 1,
              **({"resolution": resolution} if resolution else {})}
    return _construct(variant, **kwargs), variant, {"kind": "untrained", "seed": seed}


def load_baseline(checkpoint: str | os.PathLike | None = None, weights: str | None = None,
                  variant: str | None = None, resolution: int | None = None, num_classes: int | None = None,
                  seed: int = 0, allow_partial: bool = False) -> Baseline:
    """Build the starting detector, trimmed for inference; with neither a checkpoint nor weights, untrained."""
    model, variant, source = load_detector(checkpoint, weights, variant, resolution, num_classes, seed,
                                           allow_partial)
    lwdetr = model.model.model
    return Baseline(inference_module(lwdetr), variant, model.model.resolution,
                    int(lwdetr.class_embed.out_features) - 1, source)
