"""Accuracy-aware static INT8: the fastest QDQ file whose label-free agreement with FP32 stays within a budget.

How the search moves, every step a trial written to the trace (`Trial`, one CSV row each):
1. `full`: every calibration method in every scope ("conv": convolutions and matrix products; "all": every
   operator ONNX Runtime can quantize, which leaves fewer float islands and so fewer Quantize/Dequantize
   pairs). Ranges are calibrated once per method and scope and cached (ONNX Runtime calibrates only the
   tensors of the operators in scope).
2. `bound`: if the most agreeing method of a scope loses more than the budget, every float region
   (`qdq_graph.float_regions`: the stem, each output head, each upsampling step) kept float at once. If even
   that is outside the budget, no choice of regions can be within it, and the scope stops there.
3. `sensitivity`: each region kept float alone, to measure what it costs.
4. `greedy`: regions added most harmful first until the agreement lost is within the budget.
The variant is the fastest trial within the budget; with none, the most agreeing trial, and the entry says
so. Agreement is AP@0.5 of the trial's detections against FP32's confident ones on check images drawn from
the calibration source apart from the calibration images (never the evaluated ones when a calibration folder
is given): no label is read.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from tqdm import tqdm

from ..core.atomic import atomic_path
from ..core.errors import InputError
from ..detectors.family import Family
from ..evaluation.accuracy import agreement_confidence
from ..evaluation.metrics import agreement
from ..run.loop import SCORE_FLOOR, to_submission
from ..run.sessions import make_session
from ..run.timing import paired_speedup, time_interleaved
from . import quantization
from .qdq_graph import Region, float_regions, qdq_counts

log = logging.getLogger(__name__)

SCOPES = {"conv": quantization.QUANT_OPS + ("ConvTranspose",), "all": None}
AGREEMENT_CONFIDENCE = 0.5  # FP32's detections from this score stand as the truth (the benchmark's threshold)
AP_POINT = 0.01


@dataclass(frozen=True)
class SearchSpace:
    """What a search may try; the first-run set tries less than a study (see inference.py)."""

    methods: tuple[str, ...] = ("minmax",)
    scopes: tuple[str, ...] = ("all",)
    rounds: int = 5  # timing rounds per trial, each paired with FP32
    max_regions: int = 16  # regions measured for sensitivity: the stem, the heads, then the upsampling steps


@dataclass(frozen=True)
class CheckImages:
    """Preprocessed check images with their source sizes and names: where agreement is measured."""

    names: tuple[str, ...]
    inputs: tuple[np.ndarray, ...]
    sizes: tuple[tuple[int, int], ...]


@dataclass
class Trial:
    """One file the search built and measured."""

    step: int
    stage: str
    method: str
    scope: str
    float_regions: tuple[str, ...]
    agreement_ap50: float
    drop_points: float
    median_ms: float
    speedup: float
    within_budget: bool
    counts: dict = field(default_factory=dict)
    file: str = ""
    float_nodes: tuple[str, ...] = ()

    def row(self) -> dict:
        """The trace row: plain values, regions joined."""
        values = asdict(self)
        values["float_regions"] = "; ".join(self.float_regions)
        values.pop("float_nodes")
        values.pop("file")
        return {**values.pop("counts"), **values}


def detections(path: str | os.PathLike, family: Family, check: CheckImages, threads: int | None) -> dict:
    """{image: N x 5 detections} of one file on the check images, as the benchmark writes them."""
    return session_detections(make_session(path, threads), family, check, check.names)


def session_detections(session, family: Family, check: CheckImages, names) -> dict:
    """{image: N x 5 detections} of an open session on the named check images (NNCF asks for one at a time)."""
    feed = session.get_inputs()[0].name
    index = {name: i for i, name in enumerate(check.names)}
    return {name: to_submission(family.decode(session.run(None, {feed: check.inputs[index[name]]}),
                                              check.sizes[index[name]], SCORE_FLOOR)) for name in names}


class Int8Search:
    """One family's search: its FP32 file (pre-processed), calibration inputs, check images and budget."""

    def __init__(self, source: Path, family: Family, calibration: list[np.ndarray], check: CheckImages,
                 budget_points: float, space: SearchSpace, quantize_options: dict, workdir: Path,
                 threads: int | None = None, label: str = ""):
        self.source, self.family, self.calibration, self.check = source, family, calibration, check
        self.budget, self.space, self.options = budget_points, space, quantize_options
        self.workdir, self.threads, self.label = workdir, threads, label or family.name
        self.reference = detections(source, family, check, threads)
        self.confidence, _ = agreement_confidence(self.reference, AGREEMENT_CONFIDENCE)
        self.baseline = agreement(self.reference, self.reference, self.confidence).ap50
        if not np.isfinite(self.baseline):
            raise InputError(f"{self.label}: FP32 finds no face above {SCORE_FLOOR} on the {len(check.names)} check "
                             "images, so agreement cannot be measured; give other or more --search-images")
        self.trials: list[Trial] = []
        self._fp32 = make_session(source, threads)

    def _latency(self, path: Path) -> tuple[float, float]:
        """(median ms, paired speed-up over FP32) of a file, timed interleaved with FP32 on one check image."""
        feed = {self._fp32.get_inputs()[0].name: self.check.inputs[0]}
        candidate = make_session(path, self.threads)
        times = time_interleaved({"fp32": lambda: self._fp32.run(None, feed),
                                  "candidate": lambda: candidate.run(None, feed)}, self.space.rounds, 1)
        return round(1000 * float(np.median(times["candidate"])), 3), round(paired_speedup(times["fp32"],
                                                                                           times["candidate"]), 3)

    def trial(self, stage: str, method: str, scope: str, regions: Sequence[Region]) -> Trial:
        """Build one file (ranges cached per method), measure its agreement and latency, and record it."""
        step = len(self.trials)
        path = self.workdir / f"trial-{step}.onnx"
        nodes = tuple(n for r in regions for n in r.nodes)
        quantization.quantize_static_qdq(self.source, path, self.calibration, op_types=SCOPES[scope],
                                         calibration=method, float_nodes=nodes,
                                         ranges_cache=self.workdir / f"ranges-{method}-{scope}.json", **self.options)
        agreed = agreement(detections(path, self.family, self.check, self.threads), self.reference,
                           self.confidence).ap50
        drop = round((self.baseline - agreed) / AP_POINT, 3)
        median, speedup = self._latency(path)
        trial = Trial(step, stage, method, scope, tuple(r.name for r in regions), round(agreed, 6), drop, median,
                      speedup, drop <= self.budget + 1e-9, qdq_counts(onnx.load(str(path))), str(path), nodes)
        log.info("%s int8 search, %s %s/%s, float [%s]: agreement %.4f (%+.2f points), %.2fx", self.label, stage,
                 scope, method, ", ".join(trial.float_regions) or "none", agreed, -drop, speedup)
        self.trials.append(trial)
        return trial

    def run(self) -> Trial:
        """Every stage in turn; the chosen trial (its file is in the workdir)."""
        regions = float_regions(onnx.load(str(self.source)))[: self.space.max_regions]
        total = len(self.space.methods) * len(self.space.scopes)  # grows when a scope needs its regions searched
        with tqdm(total=total, desc=f"{self.label} int8 search", unit="trial") as bar:
            for scope in self.space.scopes:
                full = [self._counted(bar, "full", m, scope, []) for m in self.space.methods]
                start = max(full, key=lambda t: (t.agreement_ap50, t.speedup))
                if not start.within_budget:
                    self._greedy(bar, start.method, scope, regions)
        return self.chosen()

    def _counted(self, bar: tqdm, *args) -> Trial:
        trial = self.trial(*args)
        bar.update()
        return trial

    def _greedy(self, bar: tqdm, method: str, scope: str, regions: list[Region]) -> None:
        """Regions kept float one at a time, most harmful first, until the drop is within the budget; not tried
        when keeping every region float is outside it too."""
        bar.total += 1
        if not regions or not self._counted(bar, "bound", method, scope, regions).within_budget or len(regions) == 1:
            return
        bar.total += 2 * len(regions)
        bar.refresh()
        alone = {r.name: self._counted(bar, "sensitivity", method, scope, [r]).agreement_ap50 for r in regions}
        kept: list[Region] = []
        for region in sorted(regions, key=lambda r: -alone[r.name]):
            kept.append(region)
            if self._counted(bar, "greedy", method, scope, kept).within_budget:
                return

    def chosen(self) -> Trial:
        """The fastest trial within the budget, or, with none, the most agreeing one."""
        within = [t for t in self.trials if t.within_budget]
        if within:
            return max(within, key=lambda t: (t.speedup, t.agreement_ap50, -t.step))
        return max(self.trials, key=lambda t: (t.agreement_ap50, t.speedup, -t.step))


def write_chosen(trial: Trial, target: str | os.PathLike) -> None:
    """Copy the chosen trial's file to the variant's path, atomically."""
    with atomic_path(target) as tmp:
        shutil.copyfile(trial.file, tmp)
