"""Chapter 09's ONNX Runtime lesson: what is in the file, where it runs, does it agree.

describe_onnx: onnx.checker (full) + opset, node count, op types, input shape.
available_providers / gpu_providers: ORT's execution providers, and the GPU route
(TensorRT EP -> CUDA EP -> CPU); precision comes from the graph given to the session.
parity: max |y_torch - y_ort| and the allclose rule |g - e| <= atol + rtol * |e| elementwise.
speedup_trend: did a speed-up grow or shrink between two timed runs (e.g. batch 1 -> 32)?
Export, sessions and ORT INT8 are core (labkit/core/onnx.py), met in 06-07.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit.core import bench
from labkit.core.errors import check_int, check_number, require
from labkit.core.onnx import check_onnx_file


def describe_onnx(path: str | Path) -> dict[str, Any]:
    """onnx.checker (full check) plus a summary: opset, node count, op types, input shape.

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "2. Export to ONNX".
    """
    path, model = _check_describe(path)  # a readable file that passes onnx.checker
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return {
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "nodes": len(model.graph.node),
        "op_types": dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
        "input": model.graph.input[0].name,
        "input_shape": [d.dim_param or d.dim_value for d in dims],  # ["batch", 1, 8, 8]
        "bytes": path.stat().st_size,
    }


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers, in ORT's priority order.

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "3. Execution providers and session options".
    """
    return list(require("onnxruntime").get_available_providers())


def gpu_providers(cache_dir: str | Path = "trt_cache", *, device_id: int = 0) -> list[Any]:
    """ORT's GPU route: TensorRT EP, then CUDA EP, then CPU, each only if this build has it.

    No precision switch: the precision is the graph's (strong typing, as in TensorRT 11). Give
    the session the FP16 file (deploy.export_fp16_onnx) for FP16, the Q/DQ file
    (deploy.export_int8_qdq_onnx) for INT8, the FP32 file for FP32. The EP's trt_fp16_enable /
    trt_int8_enable are the weak-typing switches (TensorRT's BuilderFlag.FP16/INT8, removed in
    TensorRT 11): they let TensorRT, not the file, choose each layer's precision; not set here.
    TensorRT EP options used: trt_engine_cache_enable + trt_engine_cache_path (engines are
    reused across sessions). ORT falls back to the next provider for any node the previous one
    cannot run.
    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "The ORT route to the GPU".
    """
    _check_gpu_providers(cache_dir, device_id)
    have = set(available_providers())
    trt_options = {
        "device_id": device_id,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir),
    }
    chosen: list[Any] = []
    if "TensorrtExecutionProvider" in have:
        chosen.append(("TensorrtExecutionProvider", trt_options))
    if "CUDAExecutionProvider" in have:
        chosen.append(("CUDAExecutionProvider", {"device_id": device_id}))
    return [*chosen, "CPUExecutionProvider"]


def parity(
    expected: torch.Tensor | np.ndarray,
    got: torch.Tensor | np.ndarray,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> dict[str, float | bool]:
    """Compare a runtime's output with PyTorch's.

    max_abs_diff = max |g - e|;  max_rel_diff = max |g - e| / (|e| + 1e-12);
    ok = every element satisfies |g - e| <= atol + rtol * |e| (NaN anywhere -> not ok).

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "Parity with PyTorch".
    """
    e, g = _check_parity(expected, got, atol, rtol)  # float64, same shape
    diff = (g - e).abs()
    return {
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float((diff / (e.abs() + 1e-12)).max()),
        "ok": bool(torch.all(diff <= atol + rtol * e.abs())),  # NaN compares False
    }


def speedup_trend(runs: dict[str, bench.Comparison], name: str) -> str:
    """Did ``name``'s speed-up over the baseline grow, shrink, or not clearly change?

    runs: two bench.compare results in order, e.g. {"batch 1": cmp_1, "batch 32": cmp_32}.
    r_i = median over rounds of t(baseline) / t(name) in run i, with its IQR [lo_i, hi_i].
    grew: lo_2 > hi_1;  shrank: hi_2 < lo_1;  else "no clear change" (the IQRs overlap).

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "Latency and throughput: ORT vs PyTorch eager".
    """
    (a, first), (b, second) = _check_trend(runs, name)  # two runs that both timed name
    (lo1, hi1), (lo2, hi2) = first.spread[name], second.spread[name]
    if lo2 > hi1:
        word = "grew"
    elif hi2 < lo1:
        word = "shrank"
    else:
        word = "no clear change (the IQRs overlap)"
    return (
        f"{name}'s speed-up over {first.baseline}, {a} -> {b}: {first.speedup[name]:.2f}x "
        f"(IQR {lo1:.2f}-{hi1:.2f}) -> {second.speedup[name]:.2f}x (IQR {lo2:.2f}-{hi2:.2f}): {word}"
    )


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_describe(path: object) -> tuple[Path, Any]:
    path = check_onnx_file(path)
    onnx = require("onnx")
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ValueError(
            f"{path.name} loads but fails onnx.checker: {str(exc).splitlines()[0]}; "
            "re-export it with labkit.onnx.export_onnx."
        ) from None
    return path, model


def _as_float64(value: object, name: str) -> torch.Tensor:
    if isinstance(value, dict):
        raise ValueError(f"{name} is a dict of outputs; pass one output, e.g. {name}['logits'].")
    try:
        arr = value.detach().cpu() if isinstance(value, torch.Tensor) else np.asarray(value)
        t = torch.as_tensor(arr).double()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"{name} must be a tensor or NumPy array of numbers, got {type(value).__name__}."
        ) from None
    if t.numel() == 0:
        raise ValueError(f"{name} is empty; compare the outputs of at least one input.")
    return t


def _check_parity(
    expected: object, got: object, atol: object, rtol: object
) -> tuple[torch.Tensor, torch.Tensor]:
    e, g = _as_float64(expected, "expected"), _as_float64(got, "got")
    if e.shape != g.shape:
        raise ValueError(
            f"shapes differ: expected {tuple(e.shape)}, got {tuple(g.shape)}; compare the "
            "outputs of the same inputs (same batch, same output)."
        )
    check_number(atol, "atol", low=0)
    check_number(rtol, "rtol", low=0)
    return e, g


def _check_trend(
    runs: object, name: object
) -> tuple[tuple[str, bench.Comparison], tuple[str, bench.Comparison]]:
    if not isinstance(runs, dict) or len(runs) != 2:
        raise ValueError(
            "runs must be a dict of two bench.compare results in order, e.g. "
            f"{{'batch 1': cmp_1, 'batch 32': cmp_32}}, got {type(runs).__name__} "
            f"of length {len(runs) if isinstance(runs, dict) else '?'}."
        )
    items = list(runs.items())
    for label, cmp in items:
        if not isinstance(cmp, bench.Comparison):
            raise ValueError(
                f"runs[{label!r}] must be a bench.compare result, got {type(cmp).__name__}."
            )
        if name not in cmp.spread:
            raise ValueError(
                f"runs[{label!r}] has not timed {name!r}; it timed {list(cmp.spread)}: pass as "
                "name one of those variants."
            )
        if name == cmp.baseline:
            raise ValueError(f"{name!r} is the baseline of runs[{label!r}]; name another variant.")
    return items[0], items[1]


def _check_gpu_providers(cache_dir: object, device_id: object) -> None:
    if not isinstance(cache_dir, str | Path):
        raise ValueError(
            f"cache_dir must be a folder path (str or Path) for TensorRT's engine cache, got "
            f"{cache_dir!r}."
        )
    check_int(device_id, "device_id", low=0)
