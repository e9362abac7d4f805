"""Reading a graph for INT8: the regions a search may keep float, and what a QDQ file leaves float.

A node kept float between INT8 neighbours costs a Dequantize before it and a Quantize after it, and on these
CPUs that traffic, not the INT8 kernels, is what held CenterFace's INT8 back (profiled: Dequantize and Quantize
took 250 of its 625 ms with convolutions alone quantized, 11 ms with every operator). So the
search keeps whole regions float, never scattered nodes: the first convolution (it sees raw pixels), each
output head (the nodes that feed one output alone, back to its last weighted layer: it sets the scores or
the boxes), and each
upsampling step with what follows it alone (ConvTranspose / Resize and its BatchNormalization, ReLU).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import onnx

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
UPSAMPLING_OPS = ("ConvTranspose", "Resize", "Upsample")
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class Region:
    """Nodes that a search keeps float together, and a name saying what they are."""

    name: str
    nodes: tuple[str, ...]


def _constants(graph: onnx.GraphProto) -> set[str]:
    """Tensors that are weights: initializers and Constant outputs."""
    return {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    return consumers


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def _head(graph: onnx.GraphProto, output: str, consumers, producers, constants) -> tuple[str, ...]:
    """Nodes feeding `output` alone, walking back to its last weighted layer, or sooner to a tensor another branch
    also reads, or a merge."""
    chain, tensor = [], output
    while tensor in producers:
        node = producers[tensor]
        activations = [i for i in node.input if i and i not in constants]
        chain.append(node.name)
        if (node.op_type in WEIGHTED_OPS or len(activations) != 1
                or len(consumers.get(activations[0], [])) != 1):
            break
        tensor = activations[0]
    return tuple(reversed(chain))


def _stem(graph: onnx.GraphProto, consumers) -> tuple[str, ...]:
    """The first node reading the network input (the first convolution, for these detectors)."""
    readers = consumers.get(graph.input[0].name, []) if graph.input else []
    return tuple(n.name for n in readers[:1])


def _upsampling(graph: onnx.GraphProto, consumers) -> list[Region]:
    """Each upsampling node with the single-consumer chain right after it (its BatchNormalization and ReLU)."""
    regions = []
    for node in graph.node:
        if node.op_type not in UPSAMPLING_OPS:
            continue
        names, current = [node.name], node
        while len(consumers.get(current.output[0], [])) == 1 and consumers[current.output[0]][0].op_type in (
                "BatchNormalization", "Relu"):
            current = consumers[current.output[0]][0]
            names.append(current.name)
        regions.append(Region(f"upsampling {node.name}", tuple(names)))
    return regions


def float_regions(model: onnx.ModelProto) -> list[Region]:
    """The regions a search may keep float: the stem, each output head, each upsampling step (no node twice)."""
    graph = model.graph
    consumers, producers, constants = _consumers(graph), _producers(graph), _constants(graph)
    regions = [Region("stem", _stem(graph, consumers))]
    regions += [Region(f"head {o.name}", _head(graph, o.name, consumers, producers, constants)) for o in graph.output]
    regions += _upsampling(graph, consumers)
    seen: set[str] = set()
    unique = []
    for region in regions:
        nodes = tuple(n for n in region.nodes if n not in seen)
        seen.update(nodes)
        if nodes:
            unique.append(Region(region.name, nodes))
    return unique


def qdq_counts(model: onnx.ModelProto) -> dict[str, int]:
    """QDQ pairs on activations, and float islands: connected groups of compute nodes a QDQ file leaves float.

    A compute node is in INT8 form when every activation it reads comes out of a DequantizeLinear and every
    tensor it writes goes into a QuantizeLinear only (the runtime then fuses it into an INT8 kernel where it
    has one); the others are float, and each connected group of them is one island that the runtime enters
    and leaves through a Dequantize / Quantize pair.
    """
    graph = model.graph
    producers, consumers, constants = _producers(graph), _consumers(graph), _constants(graph)
    outputs = {o.name for o in graph.output}
    activation_q = sum(1 for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in constants)
    compute = [n for n in graph.node if n.op_type not in QDQ_OPS and n.op_type != "Constant"]

    def quantized(node: onnx.NodeProto) -> bool:
        reads = [i for i in node.input if i and i not in constants and i in producers]
        writes_q = all(o not in outputs and consumers.get(o) and all(c.op_type == "QuantizeLinear"
                                                                     for c in consumers[o]) for o in node.output)
        return bool(reads) and writes_q and all(producers[i].op_type == "DequantizeLinear" for i in reads)

    floating = {n.name for n in compute if not quantized(n)}
    parent = {name: name for name in floating}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for node in compute:
        if node.name in floating:
            for tensor in node.input:
                source = producers.get(tensor)
                if source is not None and source.name in floating:
                    parent[root(source.name)] = root(node.name)
    return {"qdq_pairs": activation_q, "float_islands": len({root(n) for n in floating}),
            "float_nodes": len(floating), "compute_nodes": len(compute)}
