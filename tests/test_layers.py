"""Imports only go down: core <- data <- evaluation <- detectors <- run <- compress <- report <- train <- scripts,
and the stages that only read results never load torch, onnx or rfdetr."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "facecompress"
LAYERS = ["core", "data", "evaluation", "detectors", "run", "compress", "report", "train"]  # lowest first
TOP = len(LAYERS)  # cli.py, sources.py: the scripts' helpers, above every subpackage


def layer(module: str) -> int:
    """The layer of a dotted module under facecompress; a `python -m` entry point counts as a script."""
    parts = module.split(".")
    if parts[-1] == "__main__" or len(parts) < 2 or parts[1] not in LAYERS:
        return TOP
    return LAYERS.index(parts[1])


def imports_of(path: Path) -> list[str]:
    """The facecompress modules a file imports, relative imports resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p) if node.level else node.module or ""
            found += [module] if node.module else [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [m for m in found if m.startswith("facecompress")]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_higher_layer(path):
    here = layer(".".join(path.relative_to(ROOT).with_suffix("").parts))
    upward = [m for m in imports_of(path) if layer(m) > here]
    assert not upward, f"{path.relative_to(ROOT)} imports {upward}"


def test_the_reporting_stages_and_the_evaluator_load_no_model_library():
    code = ("import sys, analyze_results, plot_results, visualize_detections, facecompress.evaluation.__main__, "
            "facecompress.cli; print(sorted(m for m in ('torch', 'onnx', 'rfdetr', 'onnxruntime') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_onnx_only_family_runs_without_torch():
    code = ("import sys; from facecompress.detectors import family_for; from facecompress.run import loop, stage; "
            "family_for({'family': 'scrfd'}); family_for({'family': 'centerface'}); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
