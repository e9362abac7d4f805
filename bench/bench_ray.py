"""Does the Ray prediction pass keep up with the serial one on the same cores? Images per second, paired rounds.

Usage: python bench/bench_ray.py [--models models] [--rounds 3] [--workers 2] [--threads 1] [--limit N]

Each round runs the serial pass (one session with workers x threads intra-op threads, warm-up, then
`run_images`) and the Ray pass (`predict_on_ray` with `workers` single-session workers of `threads`
threads each) over the same images, in alternating order, both from scratch into scratch folders, as
benchmark.py would: the Ray pass pays for starting its workers and building their sessions. The ratio
is taken within each round (background load swings throughput) and its median is reported; target
>= 0.9. The overhead is the workers' time not spent on images (start-up, session building, waiting for
the driver), per image. The first round also checks that both passes wrote the same bytes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecompress.cli import add_dataset_args  # noqa: E402
from facecompress.core.artifacts import MANIFEST, header_of, predictions_dir, read_manifest  # noqa: E402
from facecompress.core.errors import exit_on_input_error  # noqa: E402
from facecompress.data.dataset import open_dataset  # noqa: E402
from facecompress.detectors import family_for  # noqa: E402
from facecompress.run.loop import SCORE_FLOOR, run_images, warm_up  # noqa: E402
from facecompress.run.sessions import OnnxRunner, check_file  # noqa: E402

TARGET = 0.9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_args(parser)
    parser.add_argument("--models", default="models", help="folder holding manifest.json (default: %(default)s)")
    parser.add_argument("--variant", default="original", help="manifest variant to run (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="paired serial and Ray passes (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per Ray worker; the serial pass "
                                                               "gets workers x threads (default: %(default)s)")
    parser.add_argument("--address", default=None, help="an existing Ray cluster (default: a local one)")
    return parser.parse_args(argv)


def files(folder: Path) -> dict[str, bytes]:
    """Every prediction file under a folder, by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.txt"))}


def serial_pass(path: Path, header: dict, dataset, threads: int, out: Path, name: str) -> float:
    """Images per second of the serial pass from scratch: session, warm-up, then the image loop."""
    start = time.perf_counter()
    runner, family = OnnxRunner(path, threads), family_for(header)
    warm_up(runner, family, 3)
    timings = run_images(runner, family, dataset, list(dataset.present), predictions_dir(out, name), name)
    return len(timings.inference) / (time.perf_counter() - start)


def ray_pass(distributed, payload: tuple[bytes, dict], dataset, args: argparse.Namespace, out: Path,
             name: str) -> dict:
    """The Ray pass's summary from scratch: workers started, sessions built, every image predicted."""
    return distributed.predict_on_ray({name: payload}, {name: list(dataset.present)}, dataset, out, SCORE_FLOOR,
                                      args.skip_unreadable, args.workers, args.threads)


def paired_rounds(distributed, manifest: dict, dataset, args: argparse.Namespace) -> tuple[list, list, bool]:
    """(serial rates, Ray summaries, whether the first round's files were byte-identical), order alternating."""
    name = args.variant
    payload = distributed.model_payload(manifest, name, args.models)
    path = check_file(manifest["variants"][name], args.models)
    serial, ray, identical = [], [], True
    for round_index in range(args.rounds):
        with tempfile.TemporaryDirectory() as scratch:
            for kind in ("serial", "ray") if round_index % 2 == 0 else ("ray", "serial"):  # neither always first
                if kind == "serial":
                    serial.append(serial_pass(path, header_of(manifest, name), dataset, args.workers * args.threads,
                                              Path(scratch) / kind, name))
                else:
                    ray.append(ray_pass(distributed, payload, dataset, args, Path(scratch) / kind, name))
            if round_index == 0:
                identical = files(Path(scratch) / "serial") == files(Path(scratch) / "ray")
    return serial, ray, identical


@exit_on_input_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    manifest = read_manifest(Path(args.models) / MANIFEST)
    if manifest is None or args.variant not in manifest["variants"]:
        print(f"skipped: {Path(args.models) / MANIFEST} has no '{args.variant}' variant yet; run `make all` first")
        return
    try:
        from facecompress.run import distributed
    except ImportError as err:
        print(f"skipped: ray cannot be imported ({err}); `pip install -r requirements.txt`")
        return
    dataset = open_dataset(args.images, args.split, args.limit)
    distributed.start_ray(args.address, args.workers * args.threads)
    serial, ray, identical = paired_rounds(distributed, manifest, dataset, args)
    rates = [r["images_per_s"] for r in ray]
    ratios = [a / b for a, b in zip(rates, serial)]
    print(f"{args.variant} ({header_of(manifest, args.variant)['provenance']}; {dataset.describe()}), "
          f"{args.rounds} paired rounds, from scratch each:")
    print(f"  serial, {args.workers * args.threads} threads: median {statistics.median(serial):.2f} img/s "
          f"({', '.join(f'{r:.2f}' for r in serial)})")
    print(f"  Ray, {ray[0]['workers']} workers x {args.threads} thread(s): median {statistics.median(rates):.2f} img/s "
          f"({', '.join(f'{r:.2f}' for r in rates)})")
    print(f"  Ray overhead (worker time not spent on images): median "
          f"{statistics.median(r['overhead_ms_per_image'] for r in ray):.1f} ms/image; worker time on images: "
          f"{1000 * statistics.median(r['busy_s'] / r['images'] for r in ray):.1f} ms/image")
    print(f"  prediction files byte-identical to the serial pass: {'yes' if identical else 'NO'}")
    ratio = statistics.median(ratios)
    print(f"  Ray / serial per round: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"  median Ray / serial = {ratio:.3f} (target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
