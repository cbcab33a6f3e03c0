"""torch.autocast (notebook 01, part 4): which ops run in which dtype, bf16 on this CPU, CUDA fp16.

Under torch.autocast(device_type, dtype) matmuls and convolutions run in the 16-bit dtype,
reductions and losses (softmax, log_softmax, cross-entropy) stay in fp32, and the weights stay
fp32 (master weights). bf16 has fp32's exponent range and needs no loss scaling; fp16 needs a
GradScaler.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from labkit.core import env
from labkit.core.errors import check_int, check_model, check_positive, check_tensor, require_cuda
from labkit.core.probes import OpRecorder

VIEW_OPS = ("detach", "t", "view", "_unsafe_view", "expand", "transpose", "reshape")
_AUTOCAST_DTYPES = (torch.bfloat16, torch.float16)


def op_dtypes(
    fn: Callable[[], Any],
    device_type: str = "cpu",
    dtype: torch.dtype | None = torch.bfloat16,
    skip: tuple[str, ...] = VIEW_OPS,
) -> list[dict[str, Any]]:
    """Run ``fn()`` (under torch.autocast(device_type, dtype) unless dtype is None) and list
    which aten ops ran with which input/output dtypes: rows {op, inputs, output, calls}.

    Ops are recorded below autocast (labkit.probes.OpRecorder, a TorchDispatchMode), so
    autocast's own casts show up as ``_to_copy``. Views and detaches (``skip``) are left out:
    they move no data.
    Taught in notebooks/01_mixed_precision.ipynb, "4.1 Which ops run in which dtype".
    """
    _check_op_dtypes(fn, dtype)
    rec = OpRecorder()
    if dtype is None:
        with rec:
            fn()
    else:
        with torch.autocast(device_type=device_type, dtype=dtype), rec:
            fn()
    counts = Counter((c.name, _short(c.inputs), _short(c.outputs)) for c in rec.ops)
    return [
        {"op": op, "inputs": ins, "output": outs, "calls": n}
        for (op, ins, outs), n in counts.items()
        if op not in skip
    ]


def bf16_support() -> dict[str, Any]:
    """Can this torch run bf16 matmuls natively here? Flags to read next to a bf16 timing.

    avx512_bf16 / amx_tile: what the CPU has (/proc/cpuinfo);
    torch_kernels: torch's vector kernels (ATEN_CPU_CAPABILITY can lower them);
    onednn_bf16: whether oneDNN, which runs CPU bf16 matmuls, may use bf16 instructions
    (False when the CPU lacks them or ONEDNN_MAX_CPU_ISA forbids them): without it bf16 is
    emulated (convert to fp32, compute, round back) and is usually slower than fp32.
    Taught in notebooks/01_mixed_precision.ipynb, "4.3 Is it faster here? Measured, not assumed".
    """
    feats = env.cpu_features()
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        onednn = False
    return {
        "avx512_bf16": feats.get("avx512_bf16", False),
        "amx_tile": feats.get("amx_tile", False),
        "torch_kernels": torch.backends.cpu.get_cpu_capability(),
        "onednn_bf16": onednn,
    }


def bf16_verdict(support: dict[str, Any], results: dict[str, tuple[float, bool]]) -> str:
    """One sentence from this run: what the flags predict for bf16 vs fp32, and what happened.

    ``support``: bf16_support(); ``results``: {workload: (speed-up fp32/bf16, clear)} from
    bench.compare (speed-up > 1: bf16 faster; clear: the IQR of the ratio excludes 1).
    Taught in notebooks/01_mixed_precision.ipynb, "4.3 Is it faster here? Measured, not assumed".
    """
    _check_verdict(results)
    faster = [n for n, (r, clear) in results.items() if clear and r > 1]
    slower = [n for n, (r, clear) in results.items() if clear and r < 1]
    unclear = [n for n in results if n not in faster and n not in slower]
    seen = "; ".join(
        f"{label} on {', '.join(names)}"
        for label, names in (
            ("faster", faster),
            ("slower", slower),
            ("no clear difference", unclear),
        )
        if names
    )
    if support["onednn_bf16"]:
        head = "Native bf16 instructions are usable here, so bf16 should win on large matmuls."
        ok = bool(faster)
        why = "a busy machine or layers too small to gain can hide it"
    else:
        head = (
            "No native bf16 instructions are usable here (emulated bf16), so bf16 should be slower."
        )
        ok = not faster
        why = "check the flags above"
    tail = "as expected." if ok else f"not what the flags predict ({why})."
    return f"{head} Measured: bf16 {seen} - {tail}"


def amp_train_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    dtype: torch.dtype = torch.bfloat16,
    scaler: torch.amp.GradScaler | None = None,
    max_grad_norm: float | None = None,
) -> float:
    """One mixed-precision training step on x's device; returns the loss.

    Forward under torch.autocast(device_type, dtype); the weights stay fp32 (master weights).
    fp16 needs a GradScaler: scaler.scale(loss).backward(), scaler.unscale_(optimizer) before
    clipping, scaler.step(optimizer), scaler.update(). bf16 has fp32's exponent range: no
    scaler needed.
    Taught in notebooks/01_mixed_precision.ipynb, "4.2 Does bf16 training still learn?".
    """
    _check_amp_step(model, x, y, optimizer, dtype, max_grad_norm)
    device_type = x.device.type
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device_type, dtype=dtype):
        loss = nn.functional.cross_entropy(model(x), y)  # logits (B, classes) in dtype; loss fp32
    if scaler is None:
        loss.backward()
        if max_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        if max_grad_norm is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
    return float(loss.detach())


def cuda_fp16_training(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 50, lr: float = 0.05
) -> dict[str, Any]:
    """Train ``model`` on a CUDA GPU with autocast fp16 + GradScaler; report losses and scales.

    Raises labkit.MissingDependency (with what to do) when there is no CUDA GPU.
    Taught in notebooks/01_mixed_precision.ipynb, "4.4 CUDA: fp16 autocast + GradScaler".
    """
    _check_cuda_training(model, x, y, steps, lr)
    dev = require_cuda("CUDA autocast fp16 + GradScaler")
    model = model.to(dev)
    x, y = x.to(dev), y.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda")
    losses, scales = [], []
    for _ in range(steps):
        scales.append(scaler.get_scale())
        losses.append(amp_train_step(model, x, y, opt, dtype=torch.float16, scaler=scaler))
    return {"losses": losses, "scales": scales, "final_scale": scaler.get_scale()}


def _short(dtypes: tuple[torch.dtype, ...]) -> str:
    """(torch.float32, torch.int64) -> 'float32, int64'."""
    return ", ".join(str(d).removeprefix("torch.") for d in dtypes)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_op_dtypes(fn: Callable[[], Any], dtype: torch.dtype | None) -> None:
    if not callable(fn) or (dtype is not None and dtype not in _AUTOCAST_DTYPES):
        raise ValueError(
            "fn must be a callable taking no arguments, and dtype torch.bfloat16, torch.float16 "
            f"or None (no autocast); got {type(fn).__name__} and {dtype!r}."
        )


def _check_verdict(results: dict[str, tuple[float, bool]]) -> None:
    ok = isinstance(results, dict) and results
    if not ok or not all(0 < float(pair[0]) < math.inf for pair in results.values()):
        raise ValueError(
            "results must map each workload to (speed-up > 0, clear), e.g. {'matmul': "
            f"(cmp.speedup['bf16'], cmp.clear('bf16'))}}, got {results!r}."
        )


def _check_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    check_model(model)
    check_tensor(y, "y", floating=False)
    if check_tensor(x, "x").ndim == 0 or not x.numel() or x.shape[:1] != y.shape[:1]:
        raise ValueError(
            "x and y must be a non-empty batch with one label per row, got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}."
        )


def _check_amp_step(model, x, y, optimizer, dtype, max_grad_norm) -> None:
    _check_batch(model, x, y)
    if not isinstance(optimizer, torch.optim.Optimizer) or dtype not in _AUTOCAST_DTYPES:
        raise ValueError(
            "optimizer must be a torch.optim.Optimizer and dtype torch.bfloat16 or torch.float16, "
            f"got {type(optimizer).__name__} and {dtype!r}."
        )
    if max_grad_norm is not None:
        check_positive(max_grad_norm, "max_grad_norm")


def _check_cuda_training(model, x, y, steps, lr) -> None:
    _check_batch(model, x, y)
    check_int(steps, "steps", low=1, high=100_000)  # 1e5 full-batch steps: minutes already
    check_positive(lr, "lr")
