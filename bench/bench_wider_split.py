"""The full recipe on real WIDER FACE val, events kept apart: calibrate, search and recover on some, report on others.

Usage: python bench/bench_wider_split.py [--images WIDER_val/images] [--split wider_face_split]
                                         [--ground-truth DIR] [--report-events 0--Parade 4--Dancing 20--Family_Group]
                                         [--detector scrfd centerface] [--runtime onnxruntime] [--out runs/split]
                                         [--study] [-- extra inference.py flags]

Links (never copies) the report events' folders into `<out>/report/images` and every other event's into
`<out>/calibration`, and the annotation files into `<out>/annotations`; then runs inference.py with
`--calibration-dir <out>/calibration` into `<out>/models`, benchmark.py over the report events into
`<out>/results` and analyze_results.py, so that no reported figure saw its own calibration images. Each
command is printed before it runs; a folder already linked is reused, and the stages reuse what they made.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facecompress.data.dataset import SAMPLE_MARKER  # noqa: E402

REPORT_EVENTS = ("0--Parade", "4--Dancing", "20--Family_Group")
ANNOTATIONS = ("wider_face_val_bbx_gt.txt", "wider_face_val.mat", "wider_easy_val.mat", "wider_medium_val.mat",
               "wider_hard_val.mat")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default="WIDER_val/images", help="WIDER val event folders (default: %(default)s)")
    parser.add_argument("--split", default="wider_face_split",
                        help="folder of wider_face_val_bbx_gt.txt (default: %(default)s)")
    parser.add_argument("--ground-truth", default=None,
                        help="folder of the four evaluation .mat files (default: --split)")
    parser.add_argument("--report-events", nargs="+", default=list(REPORT_EVENTS),
                        help="events evaluated; every other event calibrates (default: %(default)s)")
    parser.add_argument("--detector", nargs="+", default=["scrfd", "centerface"],
                        help="families (default: %(default)s)")
    parser.add_argument("--runtime", nargs="+", default=["onnxruntime"], help="benchmark runtimes (default: %(default)s)")
    parser.add_argument("--out", default="runs/split", help="where the split and its outputs go (default: %(default)s)")
    parser.add_argument("--study", action="store_true", help="the full variant set (default: the first-run set)")
    parser.add_argument("extra", nargs="*", help="more inference.py flags, after --")
    return parser.parse_args(argv)


def link(target: Path, name: Path) -> None:
    """`name` -> `target`, made once; a name that points elsewhere is replaced, a real folder there refused."""
    if name.exists() and not name.is_symlink():
        raise SystemExit(f"error: {name} is a real file or folder, not a link this script made; remove it")
    if name.is_symlink() and Path(os.readlink(name)) == target:
        return
    if name.is_symlink():
        name.unlink()
    name.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, name)


def lay_out(args: argparse.Namespace, out: Path) -> tuple[Path, Path, Path]:
    """(report images, calibration folder, annotations) under `out`, all links into the user's WIDER files."""
    images = Path(args.images).resolve()
    events = sorted(p.name for p in images.iterdir() if p.is_dir())
    missing = sorted(set(args.report_events) - set(events))
    if missing:
        raise SystemExit(f"error: {images}: no event folder {', '.join(missing)}")
    for event in events:
        side, other = ("report/images", "calibration") if event in args.report_events else ("calibration",
                                                                                            "report/images")
        if (out / other / event).is_symlink():  # an earlier split put it on the other side
            (out / other / event).unlink()
        link(images / event, out / side / event)
    for name in ANNOTATIONS:
        folder = Path(args.ground_truth or args.split) if name.endswith(".mat") else Path(args.split)
        link((folder / name).resolve(), out / "annotations" / name)
    return out / "report" / "images", out / "calibration", out / "annotations"


def run(script: str, *flags: str) -> None:
    """One stage, printed first; a failing stage ends the run with its status."""
    command = [sys.executable, str(ROOT / script), *flags]
    print("$", shlex.join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.returncode)


def main(argv=None) -> None:
    args = parse_args(argv)
    if not Path(args.images).is_dir() or (Path(args.images) / SAMPLE_MARKER).is_file():
        print(f"skipped: {args.images} is not WIDER FACE val (download it with `python -m facecompress.data.download`, "
              "or pass --images)")
        return
    out = Path(args.out).resolve()
    report, calibration, annotations = lay_out(args, out)
    data = ["--images", str(report), "--split", str(annotations)]
    models, results = str(out / "models"), str(out / "results")
    run("inference.py", "--detector", *args.detector, *data, "--calibration-dir", str(calibration), "--out", models,
        *(["--study"] if args.study else []), *args.extra)
    run("benchmark.py", *data, "--models", models, "--out", results, "--runtime", *args.runtime)
    run("analyze_results.py", "--models", models, "--results", results)


if __name__ == "__main__":
    main()
