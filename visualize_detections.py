"""Draw ground truth and each model's cached detections side by side on a few images; no model is run.

Usage: python visualize_detections.py [--count 5] [--seed 0] [--image EVENT/FILE.jpg ...] [--only NAME ...]

Writes visualizations/detection_comparison_<i>_<family>.jpg: per image and per detector family, a
ground-truth panel and one panel per model of that family with its detections at the benchmark's
threshold, TP / FP / FN counts and a legend (one figure per family keeps two dozen variants readable).
The images are drawn reproducibly (--seed) from those the benchmark scored, or named with --image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facecompress.cli import add_dataset_args, add_results_args, reports_wall_time, setup_logging
from facecompress.core.errors import exit_on_input_error
from facecompress.data.dataset import open_dataset, read_image
from facecompress.report.curves import evaluated_images
from facecompress.report.plots import save_figure
from facecompress.report.results import load_results, styles_for
from facecompress.report.visualization import (comparison_figure, images_to_draw, prediction_dirs,
                                               read_image_predictions, select)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_args(parser)
    add_results_args(parser)
    parser.add_argument("--out", default="visualizations", help="output folder (default: %(default)s)")
    parser.add_argument("--count", type=int, default=5, help="how many images to draw (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed that picks the images (default: %(default)s)")
    parser.add_argument("--image", action="append", default=None, metavar="EVENT/FILE.jpg",
                        help="draw this image instead of random picks (repeatable; default: --count picks)")
    parser.add_argument("--only", action="append", default=None, metavar="NAME",
                        help="draw only this model (repeatable; default: every benchmarked model)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="score from which a detection is drawn and counted (default: the benchmark's)")
    return parser.parse_args(argv)


@exit_on_input_error
@reports_wall_time
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    results = load_results(args.models, args.results)
    dataset = open_dataset(args.images, args.split, args.limit)
    models = select(results.models, args.only, "--only", "models with results")
    scored = set(evaluated_images(results, models))
    images = images_to_draw([a.name for a in dataset.present], scored, args.image, args.count, args.seed)
    folders = prediction_dirs(results.folder / "predictions", models)
    annotations = {a.name: a for a in dataset.present}
    threshold = results.threshold if args.threshold is None else args.threshold
    styles, families = styles_for(results), results.by_family(models)
    for index, name in enumerate(images, start=1):
        picture = read_image(dataset, annotations[name], args.skip_unreadable)
        if picture is None:
            continue
        for family, members in families.items():  # one figure per family: a dozen panels stay readable
            predictions = {m: read_image_predictions(folders[m], name) for m in members if m in folders}
            path = Path(args.out) / f"detection_comparison_{index}_{family}.jpg"
            figure = comparison_figure(picture, annotations[name], predictions, styles, threshold,
                                       results.family_title(family))
            save_figure(figure, path)
            print(f"written {path} ({name}; {results.family_title(family)})")
    print(f"(threshold {threshold:g})")


if __name__ == "__main__":
    main()
