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
import torch.nn.functional as F
from torch import nn

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


class TransformerBlock(nn.Module):
    """Pre-LN transformer block on (N, T, d): x + MHA(LN(x)), then x + MLP(LN(x)).

    MHA: q, k, v = split(x W_qkv), heads h, softmax(q k^T / sqrt(d/h)) v via SDPA, then W_o.
    MLP: Linear(d, 4d) -> GELU -> Linear(4d, d).
    """

    def __init__(self, d_model: int = 64, heads: int = 4) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} must be divisible by heads={heads}.")
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.reshape(n, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(att.transpose(1, 2).reshape(n, t, d))
        return x + self.mlp(self.ln2(x))


class DigitTransformer(nn.Module):
    """Digits as sequences: the 8 rows of an (N, 1, 8, 8) image are 8 tokens of 8 pixels.

    Linear(8, d) + learned position embedding -> depth x TransformerBlock -> LayerNorm
    -> mean over tokens -> Linear(d, 10).  Output (N, 10) logits.
    """

    def __init__(self, d_model: int = 64, heads: int = 4, depth: int = 2) -> None:
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos = nn.Parameter(torch.zeros(1, 8, d_model))
        self.blocks = nn.Sequential(*[TransformerBlock(d_model, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.reshape(x.shape[0], 8, 8)) + self.pos
        return self.head(self.norm(self.blocks(h)).mean(dim=1))


def digit_transformer(d_model: int = 64, heads: int = 4, depth: int = 2) -> DigitTransformer:
    """A small transformer classifier for 8x8 digits (rows as tokens); see DigitTransformer."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}.")
    return DigitTransformer(d_model, heads, depth)


# --------------------------------------------------------------------------- ONNX export


def describe_onnx(path: str | Path) -> dict[str, Any]:
    """onnx.checker (full check) plus a summary: opset, node count, op types, input shape."""
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


def train_transformer_asset(epochs: int = 15) -> Path:
    """Train digit_transformer() on digits (seed 0, 2 threads) and save it to
    data/digit_transformer.safetensors with its test accuracy in the metadata."""
    from labkit import data, env, models, train

    env.seed_everything(0)
    with env.threads(2):
        model = digit_transformer()
        loaders = data.digits_loaders(64)
        train.fit(model, loaders.train, epochs=epochs, lr=2e-3)
        acc = train.evaluate(model, loaders.test)["accuracy"]
    return models.save(
        model, TRANSFORMER_ASSET, {"test_accuracy": f"{acc:.4f}", "epochs": str(epochs)}
    )


def load_transformer(retrain: bool = False) -> tuple[DigitTransformer, dict[str, str]]:
    """The bundled digit transformer (retrain=True trains and saves it again first)."""
    from labkit import models

    if retrain:
        train_transformer_asset()
    model = digit_transformer()
    meta = models.load(model, TRANSFORMER_ASSET)
    return model.eval(), meta
