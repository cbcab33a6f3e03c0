"""Deployment runtimes: ONNX export, ONNX Runtime (ORT) sessions and INT8, TensorRT >= 10.

Pipeline:  PyTorch model --torch.onnx.export (dynamo)--> .onnx --onnx.checker--> ORT session
           .onnx --quantize_static (QDQ, calibrated on digits) / quantize_dynamic--> INT8 .onnx
           .onnx --TensorRT (labkit.deploy.trt, GPU only)--> strongly typed engine.

Parity: max |y_torch - y_ort| and the allclose rule |g - e| <= atol + rtol * |e| elementwise.
Static INT8: x ~ s * (q - z) with q int8/uint8; s, z of every activation come from
calibration batches (MinMax, Entropy = KL, Percentile); weights are per-channel symmetric.
Dynamic INT8: weights quantised offline, activation scales computed per batch at run time.

onnx / onnxruntime are imported when first needed, so this module imports on any machine.
Every entry point that reads an .onnx file checks it first (check_onnx_file): a missing or
unreadable file gives one ValueError naming the file and the fix.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labkit import assets, data, env, models, train

# The course's ONNX / ORT plumbing lives in labkit.onnx (06, 07, 10 and 13 use it too); it is
# taught here, so `deploy.export_onnx(...)` etc. name the same functions (`x as x`: a re-export).
from labkit.core.env import has_vnni as has_vnni
from labkit.core.env import int8_kernel_note as int8_kernel_note
from labkit.core.errors import require
from labkit.core.onnx import (
    CALIBRATION_METHODS as CALIBRATION_METHODS,
)
from labkit.core.onnx import (
    available_providers as available_providers,
)
from labkit.core.onnx import (
    calibration_method as calibration_method,
)
from labkit.core.onnx import (
    calibration_reader as calibration_reader,
)
from labkit.core.onnx import (
    check_onnx_file as check_onnx_file,
)
from labkit.core.onnx import (
    export_onnx as export_onnx,
)
from labkit.core.onnx import (
    file_size as file_size,
)
from labkit.core.onnx import (
    ort_runner as ort_runner,
)
from labkit.core.onnx import (
    ort_session as ort_session,
)
from labkit.core.onnx import (
    parity as parity,
)
from labkit.core.onnx import (
    quantize_dynamic_int8 as quantize_dynamic_int8,
)
from labkit.core.onnx import (
    quantize_static_int8 as quantize_static_int8,
)
from labkit.core.onnx import (
    session_options as session_options,
)
from labkit.core.onnx import (
    strip_metadata as strip_metadata,
)
from labkit.core.train import accuracy as accuracy  # the one accuracy of the course

# --------------------------------------------------------------------------- models


class DigitTransformer(nn.Module):
    """Digits as sequences: the 8 rows of an (N, 1, 8, 8) image are 8 tokens of 8 pixels.

    Linear(8, d) + learned position embedding -> depth x labkit.models.TransformerBlock (not
    causal: every row sees every row; attention by F.scaled_dot_product_attention) -> LayerNorm
    -> mean over tokens -> Linear(d, 10).  Output (N, 10) logits.
    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "A small transformer block".
    """

    def __init__(self, d_model: int = 64, heads: int = 4, depth: int = 2) -> None:
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos = nn.Parameter(torch.zeros(1, 8, d_model))
        self.blocks = nn.ModuleList(
            models.TransformerBlock(d_model, heads, causal=False, sdpa=True) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.reshape(x.shape[0], 8, 8)) + self.pos  # (N, 8 rows, d)
        for block in self.blocks:
            h, _ = block(h)  # the block's (k, v) is a cache for generation: unused here
        return self.head(self.norm(h).mean(dim=1))  # (N, 10)


def digit_transformer(d_model: int = 64, heads: int = 4, depth: int = 2) -> DigitTransformer:
    """A small transformer classifier for 8x8 digits (rows as tokens); see DigitTransformer.

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "A small transformer block".
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}.")
    return DigitTransformer(d_model, heads, depth)


# --------------------------------------------------------------------------- ONNX export


def describe_onnx(path: str | Path) -> dict[str, Any]:
    """onnx.checker (full check) plus a summary: opset, node count, op types, input shape.

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "2. Export to ONNX".
    """
    onnx = require("onnx")
    model = onnx.load(str(check_onnx_file(path)))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ValueError(
            f"{Path(path).name} loads but fails onnx.checker: {str(exc).splitlines()[0]}; "
            "re-export it with labkit.deploy.export_onnx."
        ) from None
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return {
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "nodes": len(model.graph.node),
        "op_types": dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
        "input": model.graph.input[0].name,
        "input_shape": [d.dim_param or d.dim_value for d in dims],
        "bytes": Path(path).stat().st_size,
    }


# --------------------------------------------------------------------------- ONNX Runtime


# --------------------------------------------------------------------------- ORT INT8


# --------------------------------------------------------------------------- GPU routes


def gpu_providers(
    cache_dir: str | Path = "trt_cache",
    *,
    fp16: bool = True,
    int8: bool = False,
    device_id: int = 0,
) -> list[Any]:
    """ORT's GPU route: TensorRT EP, then CUDA EP, then CPU, each only if this build has it.

    TensorRT EP options: trt_fp16_enable / trt_int8_enable (INT8 from a QDQ model),
    trt_engine_cache_enable + trt_engine_cache_path (engines are reused across sessions).
    ORT falls back to the next provider for any node the previous one cannot run.
    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "The ORT route to the GPU".
    """
    have = set(available_providers())
    chosen: list[Any] = []
    if "TensorrtExecutionProvider" in have:
        chosen.append(
            (
                "TensorrtExecutionProvider",
                {
                    "device_id": device_id,
                    "trt_fp16_enable": fp16,
                    "trt_int8_enable": int8,
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(cache_dir),
                },
            )
        )
    if "CUDAExecutionProvider" in have:
        chosen.append(("CUDAExecutionProvider", {"device_id": device_id}))
    chosen.append("CPUExecutionProvider")
    return chosen


# --------------------------------------------------------------------------- bundled asset

TRANSFORMER_ASSET = "digit_transformer"


def train_transformer(epochs: int = 15) -> tuple[DigitTransformer, dict[str, str]]:
    """Train digit_transformer() on digits (seed 0, 2 threads): (model, metadata).

    The metadata holds its test accuracy; labkit.assets saves the pair as
    data/digit_transformer.safetensors (``python -m labkit.course.train_assets digit_transformer``).
    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "A small transformer block".
    """
    env.seed_everything(0)
    with env.threads(2):
        model = digit_transformer()
        loaders = data.digits_loaders(64)
        train.fit(model, loaders.train, epochs=epochs, lr=2e-3)
        acc = train.evaluate(model, loaders.test)["accuracy"]
    return model, {"test_accuracy": f"{acc:.4f}", "epochs": str(epochs)}


assets.register(TRANSFORMER_ASSET, build=lambda meta: digit_transformer(), train=train_transformer)


def load_transformer(retrain: bool = False) -> tuple[DigitTransformer, dict[str, str]]:
    """The bundled digit transformer (eval mode) and its metadata (labkit.assets.load).

    retrain=True (or a missing file) trains and saves it again first.
    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "A small transformer block".
    """
    model, meta = assets.load(TRANSFORMER_ASSET, retrain=retrain)
    return model, meta  # type: ignore[return-value]
