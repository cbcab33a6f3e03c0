"""Where the bytes of an exported ONNX file go: weights, quantisation parameters, the rest.

An FP32 -> INT8 file is not 4x smaller, because only the weight tensors shrink 4x:

    file = weights + biases and constants + scales and zero points + graph (nodes, names, shapes)

INT8 QDQ keeps biases as int32 (the same 4 bytes), adds a scale and a zero point per quantised
tensor (per output channel for weights), and adds QuantizeLinear / DequantizeLinear nodes with
their names to the graph. For a model of a few thousand weights these fixed parts are a large
share of the file; for millions of weights they vanish and the ratio approaches 4x.
"""

from __future__ import annotations

from pathlib import Path

from labkit.core.errors import require
from labkit.core.onnx import check_onnx_file

PARTS = ("weights", "biases and constants", "scales and zero points", "graph and names")


def onnx_size_breakdown(path: str | Path) -> dict[str, int]:
    """Bytes of an ONNX file by part (they add up to the file size):

    weights (initializers with 2+ dimensions, whatever their type), biases and constants
    (the other initializers), scales and zero points (initializers named ..._scale or
    ..._zero_point, as ONNX Runtime's quantiser names them) and graph and names (the rest:
    nodes, tensor names, shapes, protobuf framing = file size - initializer bytes).
    Taught in notebooks/10_edge_deployment.ipynb, "5. Compress to the budget and export for ONNX Runtime".
    """
    path = check_onnx_file(path)
    onnx = require("onnx")
    parts = dict.fromkeys(PARTS, 0)
    for t in onnx.load(str(path)).graph.initializer:
        arr = onnx.numpy_helper.to_array(t)
        if t.name.endswith(("_scale", "_zero_point")):
            parts["scales and zero points"] += arr.nbytes
        elif arr.ndim >= 2:
            parts["weights"] += arr.nbytes
        else:
            parts["biases and constants"] += arr.nbytes
    parts["graph and names"] = path.stat().st_size - sum(parts.values())
    return parts
