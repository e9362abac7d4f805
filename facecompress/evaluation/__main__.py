"""Score a folder of WIDER FACE submission files: Easy / Medium / Hard AP under the official protocol.

Usage: python -m facecompress.evaluation --pred DIR [--gt wider_face_split] [--compat matlab|port] [--restrict]

--pred holds `<event>/<image_stem>.txt` files (line 1 the image name, line 2 the box count, then
`x y w h score` lines); --gt holds wider_face_val.mat and the three wider_<setting>_val.mat files.
The last line of stdout is JSON with "easy", "medium" and "hard" (plus compat, arithmetic, images,
restricted_to). "arithmetic" is how overlaps were computed: MATLAB computes in the class the .mat files
store the boxes in, "int32" for the official files, "double" for files re-saved that way; the port is
always "double".
`--compat matlab` (default) reproduces MATLAB's eval_tools exactly; `--compat port` reproduces the Python
port most papers quote (see facecompress.evaluation.official for every difference). `--restrict` scores only the
images that have a prediction file, for runs on part of the validation set; such AP is not comparable
with full-set AP, and the JSON says how many images it covers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import setup_logging
from ..data.dataset import DEFAULT_SPLIT
from ..core.errors import exit_on_input_error
from ..evaluation.submission import COMPAT, read_prediction_dir
from ..data.wider import read_mat_ground_truth
from ..evaluation.official import evaluate

ARITHMETIC_SOURCE = {"matlab": "MATLAB computes in the class the .mat files store the boxes in",
                     "port": "the port converts the boxes to double whatever their class"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pred", required=True, help="folder of <event>/<image_stem>.txt prediction files")
    parser.add_argument("--gt", default=str(DEFAULT_SPLIT),
                        help="folder holding wider_face_val.mat and the three setting files (default: %(default)s)")
    parser.add_argument("--compat", choices=COMPAT, default="matlab",
                        help="matlab: the official eval_tools; port: the popular Python port (default: %(default)s)")
    parser.add_argument("--restrict", action="store_true",
                        help="score only the images that have a prediction file (default: the whole set)")
    parser.add_argument("--verbose", action="store_true", help="debug logging (default: info)")
    return parser.parse_args(argv)


@exit_on_input_error
def main(argv=None) -> dict:
    args = parse_args(argv)
    setup_logging(args.verbose)
    predictions = read_prediction_dir(Path(args.pred), args.compat)
    ground_truth = read_mat_ground_truth(args.gt)
    result = evaluate(predictions, ground_truth, args.compat, restrict_to=list(predictions) if args.restrict else None)
    summary = {**result.ap, "compat": result.compat, "arithmetic": result.arithmetic,
               "images": result.images, "restricted_to": result.restricted_to}
    print(f"overlap arithmetic: {result.arithmetic} ({ARITHMETIC_SOURCE[args.compat]})")
    for setting, ap in result.ap.items():
        print(f"{setting:>6} AP: {ap:.4f} ({result.faces[setting]} faces)")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
