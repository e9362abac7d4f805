"""An ONNX file's inputs and outputs, read without running it: how a family recognises (or refuses) a file."""

from __future__ import annotations

import os

from ..core.errors import InputError

Signature = list[tuple[str, list[int | None]]]  # (name, dims) per graph input or output; None: a symbolic dim

def onnx_signature(path: str | os.PathLike) -> tuple[Signature, Signature]:
    """(inputs, outputs) of an ONNX graph; initializers listed as inputs (old exporters did that) are left out."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as err:  # protobuf and onnx raise several unrelated types for a damaged file
        raise InputError(f"{path}: not a readable ONNX file ({type(err).__name__}: {err})") from None
    constants = {init.name for init in graph.initializer}

    def dims(value) -> list[int | None]:
        return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]

    return ([(i.name, dims(i)) for i in graph.input if i.name not in constants],
            [(o.name, dims(o)) for o in graph.output])


def describe_signature(inputs: Signature, outputs: Signature) -> str:
    """The found layout, short enough for a one-line refusal."""
    def show(values: Signature) -> str:
        return ", ".join(f"{name} {['?' if d is None else d for d in dims]}" for name, dims in values) or "none"

    return f"input {show(inputs)}; outputs {show(outputs)}"


def fits_input(dims: list[int | None], expected: tuple[int, ...]) -> bool:
    """Same rank, and every fixed dimension equal to the expected one (a symbolic one fits anything)."""
    return len(dims) == len(expected) and all(d is None or d == e for d, e in zip(dims, expected))


def input_facts(path: str | os.PathLike | None, name: str, size: tuple[int, int]) -> dict:
    """The header's input facts as `path` declares its one 4-D input; the given defaults for what it leaves open."""
    if path is not None:
        inputs, _ = onnx_signature(path)
        if len(inputs) == 1 and len(inputs[0][1]) == 4:
            name, dims = inputs[0]
            size = (dims[3] or size[0], dims[2] or size[1])
    return {"input_name": name, "input_size": list(size)}
