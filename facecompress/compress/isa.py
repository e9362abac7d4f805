"""The INT8 settings a CPU gets, decided from the instruction sets it reports and from measurements, not assumed.

ONNX Runtime's x86 INT8 kernels multiply u8 activations by s8 weights. With AVX2 alone the multiply-add
(`vpmaddubsw`) sums two u8 x s8 products into a signed 16-bit lane and saturates on large values, so weights
are kept to 7 bits (`reduce_range`), as ONNX Runtime advises. AVX-512 VNNI, AVX-VNNI and AMX accumulate the
products in 32 bits: full 8-bit weights are then exact and slightly more accurate.

Measured on the 2-core AMD EPYC this project runs on (flags: avx2, no AVX-512, no VNNI, no BF16), SCRFD-2.5G
static QDQ INT8 (U8S8, per channel, MinMax on 16 calibration images), agreement with FP32 (AP@0.5 against
FP32's detections scoring >= 0.5) on 48 other calibration images:

    weights                        agreement   reproduced   INT8 convolution kernel time (profiled)
    s8, reduce_range (7-bit)         0.997       0.975        1.00 (QLinearConv 0.69x of FP32's Conv)
    s8, full range                   0.978       0.887        1.01 (the 16-bit saturation, visible in accuracy)
    u8 (U8U8)                        0.997       0.989        1.35 (slower kernels)
    s8 activations (S8S8)            0.997       0.975        slower in interleaved timing

(timings taken on a machine shared with other jobs: ratios, not milliseconds.) Without VNNI the INT8
convolutions are only about 1.45x faster than the float ones (SCRFD-2.5G, CenterFace alike), against the
2.1-2.3x measured on a CPU with VNNI: INT8 buys less here whatever the recipe. So without VNNI: U8S8 with
reduce_range. With VNNI or AMX nothing here could measure it; the choice follows
ONNX Runtime's guidance (full range) and the manifest says which basis each choice has. Per-channel
weight scales cost no speed and are kept everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..run.timing import cpu_flags

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class Isa:
    """The INT8- and BF16-relevant instruction sets of one CPU."""

    avx2: bool
    avx512: bool
    vnni: bool
    amx: bool
    bf16: bool

    def describe(self) -> str:
        """'avx2 avx512 vnni ...' for the manifest and every timing row's reader."""
        return " ".join(name for name, present in asdict(self).items() if present) or "no avx2"


def read_isa(cpuinfo: str | None = None) -> Isa:
    """The ISA `cpuinfo` text describes (default: this machine's /proc/cpuinfo)."""
    flags = cpu_flags(cpuinfo)
    return Isa(avx2="avx2" in flags, avx512="avx512f" in flags, vnni=bool(flags & set(VNNI_FLAGS)),
               amx=bool(flags & {"amx_tile", "amx_int8"}), bf16=bool(flags & {"avx512_bf16", "amx_bf16"}))


@dataclass(frozen=True)
class Int8Choice:
    """The setting that depends on the ISA, and why: 'measured' here or 'onnxruntime guidance' (not measured here).

    U8S8 kernels and per-channel weight scales are every ISA's choice (inference.py's defaults).
    """

    reduce_range: bool
    basis: str


def int8_choice(isa: Isa) -> Int8Choice:
    """The settings this module's measurements (and, where none could be made, ONNX Runtime's guidance) give `isa`."""
    if isa.vnni or isa.amx:
        return Int8Choice(False, "onnxruntime guidance for VNNI/AMX (not measured on this project's CPU)")
    return Int8Choice(True, "measured: AVX2 without VNNI saturates full-range U8S8 (agreement 0.978 vs 0.997 with "
                            "7-bit weights, SCRFD-2.5G)")
