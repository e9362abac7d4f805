"""Stage 1: from one RF-DETR face detector, build every compressed variant as ONNX files in models/.

Usage: python inference.py [--checkpoint PATH | --weights coco] [--only NAME] [--force]

Writes models/<file>.onnx and models/manifest.json (one entry per variant, rewritten atomically after each),
then prints a summary table. Existing variants made by the same recipe are reused unless --force.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from tqdm import tqdm

from facecompress.cli import add_dataset_args, add_source_args, setup_logging
from facecompress.compress.builder import SUMMARY_COLUMNS, Builder, load_inputs, manifest_header, summary_rows
from facecompress.compress.manifest import current_manifest, write_manifest
from facecompress.compress.variants import Settings, plan, rebuild_reason, select
from facecompress.core.artifacts import MANIFEST
from facecompress.core.errors import InputError, exit_on_input_error
from facecompress.core.tables import format_table
from facecompress.data.dataset import open_dataset
from facecompress.detectors.rfdetr import KEEP_FLOAT
from facecompress.detectors.rfdetr.family import RFDETRFamily
from facecompress.detectors.rfdetr.loading import load_baseline
from facecompress.detectors.rfdetr.models import EXPORT_PARAMS, TorchModels, file_stem
from facecompress.detectors.rfdetr.models import manifest_header as rfdetr_facts

DEFAULTS = Settings()
log = logging.getLogger("inference")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_source_args(parser)
    add_dataset_args(parser)
    sets = parser.add_argument_group("variant set")
    sets.add_argument("--prune", type=float, nargs="*", default=list(DEFAULTS.prune),
                      help="unstructured sparsities, one pruned_N (+ its INT8) each (default: %(default)s)")
    sets.add_argument("--structured", type=float, nargs="*", default=list(DEFAULTS.structured),
                      help="share of backbone heads and MLP channels to remove, one structured_N (+ INT8) each "
                           "(default: %(default)s)")
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
    quant.add_argument("--keep-float", nargs="*", default=list(KEEP_FLOAT), metavar="PATTERN",
                       help="node-name patterns static QDQ leaves in float (default: %(default)s)")
    quant.add_argument("--dynamic-keep-float", nargs="*", default=list(DEFAULTS.dynamic_keep_float),
                       metavar="PATTERN", help="node-name patterns dynamic INT8 leaves in float (default: none)")
    quant.add_argument("--fp32-tables", action="store_true",
                       help="keep the float tables INT8 leaves behind in FP32 (default: store them as FP16)")
    quant.add_argument("--calibration-images", type=int, default=16,
                       help="dataset images for static calibration and head/channel importance (default: %(default)s)")
    quant.add_argument("--parity-images", type=int, default=3,
                       help="dataset images for ONNX-vs-PyTorch parity (default: %(default)s)")
    quant.add_argument("--image-seed", type=int, default=0,
                       help="seed that picks the calibration and parity images, spread over events and disjoint "
                            "when there are enough (default: %(default)s)")
    parser.add_argument("--out", default="models", help="output folder (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="debug logging (default: off)")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(prune=tuple(args.prune), structured=tuple(args.structured), weight_type=args.weight_type,
                    reduce_range=not args.no_reduce_range, dynamic_keep_float=tuple(args.dynamic_keep_float),
                    static_keep_float=tuple(args.keep_float), per_channel=not args.no_per_channel,
                    activation_type=args.activation_type, fp16_tables=not args.fp32_tables, skip=tuple(args.skip))


@exit_on_input_error
def main(argv=None) -> None:
    args = parse_args(argv)
    setup_logging(args.verbose)
    if args.parity_images < 1 or args.calibration_images < 1:
        raise InputError("--parity-images and --calibration-images must be at least 1")
    command = shlex.join(["python", "inference.py", *(sys.argv[1:] if argv is None else argv)])
    baseline = load_baseline(args.checkpoint, args.weights, args.variant, args.resolution, args.num_classes, args.seed,
                             allow_partial=args.allow_partial)
    dataset = open_dataset(args.images, args.split, args.limit)
    family = RFDETRFamily(baseline.resolution, baseline.variant)
    calibration, parity = load_inputs(dataset, family, args.calibration_images, args.parity_images,
                                      args.skip_unreadable, seed=args.image_seed)
    settings = settings_from(args)
    specs = plan(file_stem(baseline), settings, len(calibration), EXPORT_PARAMS)
    todo = select(specs, args.only)
    out = Path(args.out)
    header = manifest_header(rfdetr_facts(baseline), dataset.describe(), [n for n, _ in calibration],
                             [n for n, _ in parity])
    manifest = current_manifest(out / MANIFEST, header)

    calibration_inputs = [x for _, x in calibration]
    models = TorchModels(baseline, calibration_inputs, [x for _, x in parity])
    builder = Builder(models, header, out, specs, calibration_inputs, settings, command)
    status = {}
    try:
        for spec in tqdm(todo, desc="variants", unit="variant"):
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
    print(f"\n{baseline.provenance}, RF-DETR {baseline.variant} at {baseline.resolution} px; "
          f"parity on {len(parity)} image(s) of {dataset.describe()}")
    print(format_table(summary_rows(manifest["variants"], status), SUMMARY_COLUMNS))
    print(f"\nmanifest: {out / MANIFEST}. Unstructured sparsity only shrinks the zstd column; "
          "FP16 halves bytes but runs slower on this CPU (see bench/bench_compression.py).")


if __name__ == "__main__":
    main()
