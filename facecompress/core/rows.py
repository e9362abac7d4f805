"""Result rows: one per (variant, runtime, precision), named so that a row's name says all three.

The ONNX Runtime FP32 row of a variant keeps the variant's own name (`scrfd_static_int8`), as every table
showed it before there was a second runtime; another runtime's row adds it (`scrfd_static_int8@openvino`),
and a precision other than FP32 follows it (`scrfd_original@openvino-bf16`). `precision` is the precision
the runtime computes the float operators in, not the file's weights (an INT8 file run with BF16 for the
operators left float is `..._static_int8@openvino-bf16`).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_RUNTIME = "onnxruntime"
DEFAULT_PRECISION = "fp32"
SEPARATOR = "@"  # never in a variant name (manifest.variant_name makes them of letters, digits and '_')


@dataclass(frozen=True)
class Row:
    """What one result row measured: a manifest variant, run by a runtime at a float precision."""

    variant: str
    runtime: str = DEFAULT_RUNTIME
    precision: str = DEFAULT_PRECISION

    @property
    def name(self) -> str:
        """The row's name in every table, folder and plot."""
        if (self.runtime, self.precision) == (DEFAULT_RUNTIME, DEFAULT_PRECISION):
            return self.variant
        suffix = "" if self.precision == DEFAULT_PRECISION else f"-{self.precision}"
        return f"{self.variant}{SEPARATOR}{self.runtime}{suffix}"


def parse_row(name: str) -> Row:
    """The (variant, runtime, precision) a row name stands for; a bare name is ONNX Runtime at FP32."""
    variant, _, rest = name.partition(SEPARATOR)
    if not rest:
        return Row(variant)
    runtime, _, precision = rest.partition("-")
    return Row(variant, runtime, precision or DEFAULT_PRECISION)


def variant_of(name: str) -> str:
    """The manifest variant a row was made from."""
    return parse_row(name).variant


def is_default(name: str) -> bool:
    """True for a row of the default runtime at FP32 (the variant's own name)."""
    return SEPARATOR not in name
