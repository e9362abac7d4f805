"""The CPU runtimes a variant can be benchmarked in, by name: how a row opens its runner and what it records.

A result row is (variant, runtime, precision) (`core.rows`). ONNX Runtime runs every ONNX variant at FP32;
OpenVINO runs the same ONNX files (and OpenVINO IR files, which ONNX Runtime cannot read) at FP32 and, where
the CPU has BF16 instructions, at BF16 for each family's FP32 original and its INT8 files. A runtime whose
package cannot be imported, or BF16 on a CPU without it, is skipped with one line; the run goes on.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Callable

from ..core.artifacts import TORCH_ROW, family_of, reference_of, row_columns
from ..core.rows import DEFAULT_RUNTIME, Row, parse_row
from .loop import Runner
from .timing import BF16_ISA, has_bf16

IR_SUFFIX = ".xml"  # an OpenVINO IR file (its weights in the .bin beside it)


def _onnxruntime(path: os.PathLike, threads: int | None, precision: str, label: str) -> Runner:
    from .sessions import OnnxRunner

    return OnnxRunner(path, threads, label)


def _openvino(path: os.PathLike, threads: int | None, precision: str, label: str) -> Runner:
    from .openvino import OpenVinoRunner

    return OpenVinoRunner(path, threads, precision, label)


@dataclass(frozen=True)
class Runtime:
    """One runtime: the package it needs, the precisions it is asked for, whether it reads IR, how to open a row."""

    name: str  # as --runtime and the row names spell it
    package: str  # imported to check it is there; its version goes into every row
    provider: str
    precisions: tuple[str, ...]
    reads_ir: bool
    opener: Callable[[os.PathLike, int | None, str, str], Runner]


RUNTIMES = {
    "onnxruntime": Runtime("onnxruntime", "onnxruntime", "CPUExecutionProvider", ("fp32",), False, _onnxruntime),
    # bf16: OpenVINO's BF16 kernels; ONNX Runtime's CPU provider has no BF16 Conv kernel (see the README)
    "openvino": Runtime("openvino", "openvino", "CPU", ("fp32", "bf16"), True, _openvino),
}


def missing_reason(name: str) -> str | None:
    """Why runtime `name` cannot run here (its package does not import), in one line; None when it can."""
    runtime = RUNTIMES[name]
    try:
        importlib.import_module(runtime.package)
    except ImportError as err:
        return (f"--runtime {name}: skipped, the {runtime.package} package cannot be imported ({err}); "
                "`pip install -r requirements.txt` to benchmark it")
    return None


def bf16_reason(cpuinfo: str | None = None) -> str | None:
    """Why no BF16 row is made on this CPU (it reports no BF16 instructions); None when it has them."""
    if has_bf16(cpuinfo):
        return None
    return (f"bf16 rows: skipped, this CPU reports neither {' nor '.join(BF16_ISA)} (a BF16 request would "
            "compile to FP32 or run emulated)")


def is_ir(entry: dict) -> bool:
    """Whether a manifest variant is an OpenVINO IR file, which only OpenVINO reads."""
    return str(entry["file"]).endswith(IR_SUFFIX)


def _row_of(name: str, manifest: dict, runtime: Runtime, precision: str) -> tuple[str | None, str | None]:
    """(row name, None), (None, why it is skipped) or (None, None) when the pair is simply not made."""
    entry = manifest["variants"][name]
    if is_ir(entry) and not runtime.reads_ir:
        return None, f"{name}: not run in {runtime.name}, an OpenVINO IR file; run it with --runtime openvino"
    if precision != "fp32" and not (name == reference_of(family_of(manifest, name)) or "int8" in entry["method"]):
        return None, None  # a lower float precision is offered for the original and the INT8 files only
    return Row(name, runtime.name, precision).name, None


def _expand(variants: list[str], manifest: dict, runtimes: list[Runtime], bf16: bool) -> tuple[list[str], dict]:
    """Rows of `variants` in `runtimes`, grouped by variant (BF16 ones only when `bf16`), and skips' reasons."""
    rows, skipped = [], {}
    for variant in variants:
        if variant == TORCH_ROW:  # the PyTorch reference row stays what it is
            rows.append(variant)
            continue
        for runtime in runtimes:
            for precision in runtime.precisions if bf16 else ("fp32",):
                row, why = _row_of(variant, manifest, runtime, precision)
                rows += [row] if row else []
                if why:
                    skipped[f"{variant}@{runtime.name}"] = why
    return rows, skipped


def planned_rows(variants: list[str], manifest: dict, runtimes: list[str],
                 cpuinfo: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The rows a run makes of `variants` in `runtimes`, and each skip's one-line reason (keyed by what it skips).

    `cpuinfo` is the text whose flags decide BF16 (default: this machine's /proc/cpuinfo).
    """
    reasons = {name: missing_reason(name) for name in runtimes}
    usable = [RUNTIMES[name] for name, reason in reasons.items() if reason is None]
    skipped = {name: reason for name, reason in reasons.items() if reason is not None}
    no_bf16 = bf16_reason(cpuinfo) if any("bf16" in r.precisions for r in usable) else None
    if no_bf16:
        skipped["bf16"] = no_bf16
    rows, unrun = _expand(variants, manifest, usable, bf16=no_bf16 is None)
    return rows, {**skipped, **unrun}


def candidate_rows(variants: list[str], manifest: dict) -> list[str]:
    """Every row any run could have made of `variants` with the runtimes installed: what the tables look for."""
    installed = [RUNTIMES[name] for name in RUNTIMES if missing_reason(name) is None]
    return _expand(variants, manifest, installed, bf16=True)[0]


def open_row(name: str, path: os.PathLike, threads: int | None) -> Runner:
    """The runner of row `name` on the variant's file `path` (InputError when the runtime cannot load it)."""
    row = parse_row(name)
    if row.runtime not in RUNTIMES:
        raise ValueError(f"{name}: unknown runtime {row.runtime}")
    return RUNTIMES[row.runtime].opener(path, threads, row.precision, str(path))


def record(name: str, runner: Runner | None, threads: int | None) -> dict:
    """The runtime columns of a timing row: runtime, its version, provider, and the precision and threads as the
    runner reports them where it can (OpenVINO's are read back from the compiled model)."""
    named = row_columns(name)
    runtime = named["runtime"]
    provider = "torch CPU" if name == TORCH_ROW else RUNTIMES[runtime].provider
    return {**named, "runtime_version": metadata.version(runtime), "provider": provider,
            "inference_precision": getattr(runner, "precision", named["inference_precision"]),
            "threads": getattr(runner, "threads", None) or threads or "all"}


def runtime_names() -> list[str]:
    """Every runtime --runtime accepts, the default first."""
    return [DEFAULT_RUNTIME] + [name for name in RUNTIMES if name != DEFAULT_RUNTIME]
