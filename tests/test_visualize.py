"""visualize_detections.py and facecompress.report.visualization: reproducible picks, counts, colours, sizes, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import visualize_detections
from facecompress.data.dataset import open_dataset
from facecompress.report.plots import DPI
from facecompress.report.styles import GROUND_TRUTH, model_styles
from facecompress.core.errors import InputError
from facecompress.report.visualization import (LEGEND_INCHES, PANEL_INCHES, choose_images, draw_detections,
                                               draw_truth, figure_inches, images_to_draw, panel_title,
                                               read_image_predictions)
from test_analysis import DETECTORS, THRESHOLD, write_results


def run(models, results, sample_dataset, out, *extra: str) -> None:
    images, split = sample_dataset
    visualize_detections.main(["--models", str(models), "--results", str(results), "--images", str(images),
                               "--split", str(split), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def made(tmp_path_factory, sample_dataset):
    return write_results(tmp_path_factory.mktemp("made"), *sample_dataset)


def test_five_comparisons_of_the_expected_size(made, sample_dataset, tmp_path, capsys):
    run(*made, sample_dataset, tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == [f"detection_comparison_{i}_rfdetr.jpg" for i in range(1, 6)]
    # a ground-truth panel and five models: two rows of four panels, then the legend strip
    expected = (round(4 * PANEL_INCHES[0] * DPI), round((2 * PANEL_INCHES[1] + LEGEND_INCHES) * DPI))
    for name in written:
        with Image.open(tmp_path / name) as image:
            assert image.format == "JPEG" and image.size == expected
            assert np.asarray(image).std() > 10
    assert capsys.readouterr().out.count("written ") == 5


def test_the_same_images_every_run_and_others_on_request(made, sample_dataset, tmp_path, capsys):
    run(*made, sample_dataset, tmp_path / "a")
    first = capsys.readouterr().out
    run(*made, sample_dataset, tmp_path / "b")
    assert capsys.readouterr().out == first.replace(str(tmp_path / "a"), str(tmp_path / "b"))
    run(*made, sample_dataset, tmp_path / "c", "--seed", "7")
    assert capsys.readouterr().out.replace(str(tmp_path / "c"), str(tmp_path / "a")) != first
    name = open_dataset(*sample_dataset).present[3].name
    run(*made, sample_dataset, tmp_path / "d", "--image", name, "--only", "original", "--only", "quantized")
    assert f"detection_comparison_1_rfdetr.jpg ({name};" in capsys.readouterr().out
    with Image.open(tmp_path / "d" / "detection_comparison_1_rfdetr.jpg") as image:
        assert image.size == (round(3 * PANEL_INCHES[0] * DPI), round((PANEL_INCHES[1] + LEGEND_INCHES) * DPI))


def test_choose_images():
    pool = [f"e/{i}.jpg" for i in range(20)]
    picked = choose_images(pool, 5, seed=0)
    assert picked == choose_images(pool, 5, seed=0) and len(picked) == 5
    assert picked == sorted(picked, key=pool.index)
    assert choose_images(pool, 5, seed=1) != picked
    assert choose_images(pool[:3], 5, seed=0) == pool[:3]


def test_panel_counts_match_the_benchmark_rows(made, sample_dataset):
    models, results = made
    rows = pd.read_csv(results / "benchmark_results.csv").set_index(["model", "image"])
    dataset = open_dataset(*sample_dataset)
    for annotation in dataset.present[:3]:
        for model in DETECTORS:
            dets = read_image_predictions(results / "predictions" / model, annotation.name)
            row = rows.loc[(model, annotation.name)]
            expected = f"TP {int(row['tp'])}  FP {int(row['fp'])}  FN {int(row['fn'])}"
            assert panel_title(model, dets, annotation, THRESHOLD) == f"{model}\n{expected}"


def test_a_missing_prediction_file_reads_as_no_detections(tmp_path):
    assert read_image_predictions(tmp_path, "0--Event/missing.jpg").shape == (0, 5)


def test_a_model_without_predictions_is_named_and_left_out(made, sample_dataset, tmp_path, caplog):
    models, results = made
    shutil.copytree(results, tmp_path / "results")
    shutil.rmtree(tmp_path / "results" / "predictions" / "pruned_30")
    run(models, tmp_path / "results", sample_dataset, tmp_path / "out", "--count", "1")
    assert "pruned_30: no predictions" in caplog.text and "benchmark.py --only pruned_30" in caplog.text
    with Image.open(tmp_path / "out" / "detection_comparison_1_rfdetr.jpg") as image:  # five panels: two rows still
        assert image.size[0] == round(4 * PANEL_INCHES[0] * DPI)


def test_images_never_benchmarked_are_refused():
    with pytest.raises(InputError, match="run `python benchmark.py`"):
        images_to_draw(["e/a.jpg"], {"e/b.jpg"}, None, 5, 0)
    assert images_to_draw(["e/a.jpg", "e/b.jpg"], {"e/b.jpg"}, None, 5, 0) == ["e/b.jpg"]


def test_boxes_are_drawn_in_the_model_colour_with_supervision():
    scene = Image.new("RGB", (200, 100), (0, 0, 0))
    faces = np.array([[20, 20, 40, 40]])
    dets = np.array([[120, 20, 40, 40, 0.9]])
    colour = model_styles(["original", "quantized"])["quantized"].colour
    drawn = np.asarray(draw_detections(draw_truth(scene, faces, corners=True), dets, colour))
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    assert (drawn[20, 130] == rgb).all()  # top edge of the detection
    assert (drawn[20, 21] == [int(GROUND_TRUTH[i:i + 2], 16) for i in (1, 3, 5)]).all()  # a face's corner
    assert (drawn[50, 50] == 0).all() and (np.asarray(scene) == 0).all()  # inside untouched, input not mutated
    assert np.array_equal(np.asarray(draw_detections(scene, np.zeros((0, 5)), colour)), np.asarray(scene))


def test_figure_size_grows_by_rows_of_four():
    assert figure_inches(1) == (PANEL_INCHES[0], PANEL_INCHES[1] + LEGEND_INCHES)
    assert figure_inches(4) == (4 * PANEL_INCHES[0], PANEL_INCHES[1] + LEGEND_INCHES)
    assert figure_inches(17) == (4 * PANEL_INCHES[0], 5 * PANEL_INCHES[1] + LEGEND_INCHES)


def test_unknown_names_are_one_line_errors(made, sample_dataset, tmp_path, capsys):
    for flag, value in (("--image", "0--Nope/x.jpg"), ("--only", "nope")):
        with pytest.raises(SystemExit) as exit_info:
            run(*made, sample_dataset, tmp_path, flag, value)
        assert exit_info.value.code == 2 and f"{flag} {value}: not among the" in capsys.readouterr().err
    assert not tmp_path.joinpath("detection_comparison_1_rfdetr.jpg").exists()


def test_missing_results_name_the_command(made, sample_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(made[0], tmp_path / "empty", sample_dataset, tmp_path / "out")
    assert exit_info.value.code == 2 and "run `python benchmark.py`" in capsys.readouterr().err


def test_help_gives_every_default(capsys):
    with pytest.raises(SystemExit):
        visualize_detections.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert text.count("default:") == 12


def test_smoke_on_real_benchmark_output(tiny_models, tiny_results, sample_dataset, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(tiny_results, results)
    run(tiny_models, results, sample_dataset, tmp_path / "out", "--limit", "4")
    assert len(list((tmp_path / "out").glob("detection_comparison_*.jpg"))) == 4
