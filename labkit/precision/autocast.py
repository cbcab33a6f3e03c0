"""torch.autocast (notebook 01, part 4): which ops run in which dtype, what it saves in memory,
bf16 on this CPU, CUDA fp16.

Under torch.autocast(device_type, dtype) matmuls and convolutions run in the 16-bit dtype and
the weights stay fp32 (master weights). Which other ops autocast casts up to fp32 is a table per
device: CUDA's lists exp, log, pow, sum, softmax, norms and the losses; CPU's lists the losses
(and some linear algebra), so on CPU exp, softmax and norms run in the dtype they are given.
``autocast_policy`` measures both tables. bf16 has fp32's exponent range and needs no loss
scaling; fp16 needs a GradScaler. AMP shrinks the activations saved for backward, not the
weights, gradients or optimizer state (``amp_memory``).
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from labkit.core import env
from labkit.core.errors import check_int, check_model, check_positive, check_tensor, require_cuda
from labkit.core.probes import OpRecorder, saved_tensor_bytes

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
    _check_op_dtypes(fn, device_type, dtype)
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


# Probe ops for autocast_policy: each takes one (8, 8) tensor t and makes what else it needs
# on t's device. Only the dtypes of the results are read, never their values.
AUTOCAST_PROBES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "matmul": lambda t: t @ t,  # (8, 8)
    "linear": lambda t: nn.functional.linear(t, t),  # (8, 8)
    "conv2d": lambda t: nn.functional.conv2d(t.view(1, 1, 8, 8), t[:3, :3].reshape(1, 1, 3, 3)),
    "relu": lambda t: t.relu(),
    "exp": lambda t: t.exp(),
    "log": lambda t: t.log(),
    "pow": lambda t: t.pow(2),
    "sum": lambda t: t.sum(),  # ()
    "prod": lambda t: t.prod(),  # ()
    "softmax": lambda t: t.softmax(-1),
    "log_softmax": lambda t: t.log_softmax(-1),
    "layer_norm": lambda t: nn.functional.layer_norm(t, (8,)),
    "group_norm": lambda t: nn.functional.group_norm(t, 2),
    "batch_norm": lambda t: nn.functional.batch_norm(t, None, None, training=True),
    "vector_norm": lambda t: torch.linalg.vector_norm(t),  # ()
    "cdist": lambda t: torch.cdist(t, t),  # (8, 8) pairwise distances
    "cross_entropy": lambda t: nn.functional.cross_entropy(t, torch.arange(8, device=t.device)),
    "mse_loss": lambda t: nn.functional.mse_loss(t, t.detach()),
}


def autocast_policy(
    device_type: str = "cpu", dtype: torch.dtype = torch.bfloat16
) -> dict[str, str]:
    """Which dtype autocast runs each op of AUTOCAST_PROBES in, measured: {op: policy}.

    Each op runs twice under autocast(device_type, dtype), on an fp32 input and on a ``dtype``
    input, and the output dtypes give its row of torch's own autocast table:
        fp32 in -> 16-bit out       "16-bit"         (autocast casts down: matmul, conv)
        16-bit in -> fp32 out       "fp32"           (autocast casts up)
        out dtype = in dtype, twice "input's dtype"  (not on autocast's lists)
    CUDA is measured without a GPU: the ops run on fake CUDA tensors (FakeTensorMode: shapes and
    dtypes only, no memory, no kernel), with CUDA autocast switched on directly, because
    ``torch.autocast("cuda")`` turns itself off where no GPU exists. Autocast picks the casts in
    the dispatcher before any kernel runs, so the fake run sees CUDA's real table. Where fake
    CUDA tensors fail (another torch), every op reads "not measurable here": the table is then
    in the torch.amp documentation, "Autocast Op Reference".
    Taught in notebooks/01_mixed_precision.ipynb, "4.1 Which ops run in which dtype".
    """
    _check_policy(device_type, dtype)
    if device_type == "cpu":
        return _policy(device_type, dtype)
    try:
        with FakeTensorMode():
            return _policy(device_type, dtype)
    except (RuntimeError, NotImplementedError) as exc:  # a torch whose fake CUDA tensors fail
        return dict.fromkeys(AUTOCAST_PROBES, f"not measurable here ({type(exc).__name__})")


def amp_memory(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype = torch.bfloat16
) -> dict[str, int]:
    """Bytes of one cross-entropy training step in fp32 and under autocast(x's device, dtype).

        weights        = sum of the parameters' bytes (fp32 master weights: autocast keeps them)
        gradients      = sum of the .grad bytes after a backward under autocast (fp32, like the
                         parameters they belong to)
        saved_fp32     = bytes autograd saves for backward without autocast
        saved_autocast = the same under autocast: activations in 16 bits, plus the 16-bit copies
                         of the weights that autocast made for the matmuls (saved for backward)
    (saved bytes: labkit.probes.saved_tensor_bytes, the parameters themselves excluded). With
    Adam, 8 more bytes per parameter of fp32 optimizer state sit beside these, in both. The
    model's .grad is cleared (set to None) before and after.
    Taught in notebooks/01_mixed_precision.ipynb, "4.2 What AMP saves in memory".
    """
    _check_amp_memory(model, x, y, dtype)
    step = lambda: nn.functional.cross_entropy(model(x), y)  # noqa: E731
    saved_fp32 = saved_tensor_bytes(step, exclude=model.parameters())
    model.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=dtype):
        saved_autocast = saved_tensor_bytes(step, exclude=model.parameters())
        loss = step()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    return {
        "weights": sum(p.nbytes for p in model.parameters()),
        "gradients": sum(g.nbytes for g in grads),
        "saved_fp32": saved_fp32,
        "saved_autocast": saved_autocast,
    }


def bf16_support() -> dict[str, Any]:
    """Can this torch run bf16 matmuls natively here? Flags to read next to a bf16 timing.

    avx512_bf16 / amx_tile: what the CPU has (/proc/cpuinfo);
    torch_kernels: torch's vector kernels (ATEN_CPU_CAPABILITY can lower them);
    onednn_bf16: whether oneDNN, which runs CPU bf16 matmuls, may use bf16 instructions
    (False when the CPU lacks them or ONEDNN_MAX_CPU_ISA forbids them): without it bf16 is
    emulated (convert to fp32, compute, round back) and is usually slower than fp32.
    Taught in notebooks/01_mixed_precision.ipynb, "4.4 Is it faster here? Measured, not assumed".
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
    Taught in notebooks/01_mixed_precision.ipynb, "4.4 Is it faster here? Measured, not assumed".
    """
    _check_verdict(support, results)
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
    Taught in notebooks/01_mixed_precision.ipynb, "4.3 Does bf16 training still learn?".
    """
    _check_amp_step(model, x, y, optimizer, dtype, scaler, max_grad_norm)
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
    Taught in notebooks/01_mixed_precision.ipynb, "4.5 CUDA: fp16 autocast + GradScaler".
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


def _policy(device_type: str, dtype: torch.dtype) -> dict[str, str]:
    """autocast_policy's measurement: each probe on an fp32 and on a 16-bit (8, 8) input."""
    policy = {}
    for name, op in AUTOCAST_PROBES.items():
        with _autocast_on(device_type, dtype):
            from32 = op(torch.ones(8, 8, device=device_type)).dtype  # fp32 in
            from16 = op(torch.ones(8, 8, device=device_type, dtype=dtype)).dtype  # 16-bit in
        policy[name] = (
            "16-bit" if from32 == dtype else "fp32" if from16 == torch.float32 else
            "input's dtype"
        )  # fmt: skip
    return policy


@contextlib.contextmanager
def _autocast_on(device_type: str, dtype: torch.dtype) -> Iterator[None]:
    """torch.autocast on CPU; for CUDA, autocast's switch set directly (it works on fake tensors
    where torch.autocast("cuda") would turn itself off for want of a GPU), restored after."""
    if device_type == "cpu":
        with torch.autocast("cpu", dtype=dtype):
            yield
        return
    enabled, old = torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    torch.set_autocast_enabled(device_type, True)
    torch.set_autocast_dtype(device_type, dtype)
    torch.autocast_increment_nesting()
    try:
        yield
    finally:
        if torch.autocast_decrement_nesting() == 0:
            torch.clear_autocast_cache()
        torch.set_autocast_enabled(device_type, enabled)
        torch.set_autocast_dtype(device_type, old)


def _short(dtypes: tuple[torch.dtype, ...]) -> str:
    """(torch.float32, torch.int64) -> 'float32, int64'."""
    return ", ".join(str(d).removeprefix("torch.") for d in dtypes)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_op_dtypes(fn: Callable[[], Any], device_type: object, dtype: torch.dtype | None) -> None:
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"device_type must be 'cpu' or 'cuda', got {device_type!r}.")
    if not callable(fn) or (dtype is not None and dtype not in _AUTOCAST_DTYPES):
        raise ValueError(
            "fn must be a callable taking no arguments, and dtype torch.bfloat16, torch.float16 "
            f"or None (no autocast); got {type(fn).__name__} and {dtype!r}."
        )


def _check_policy(device_type: str, dtype: torch.dtype) -> None:
    if device_type not in ("cpu", "cuda") or dtype not in _AUTOCAST_DTYPES:
        raise ValueError(
            "device_type must be 'cpu' or 'cuda' and dtype torch.bfloat16 or torch.float16, "
            f"got {device_type!r} and {dtype!r}."
        )


def _check_amp_memory(model, x, y, dtype) -> None:
    _check_batch(model, x, y)
    if dtype not in _AUTOCAST_DTYPES:
        raise ValueError(f"dtype must be torch.bfloat16 or torch.float16, got {dtype!r}.")


def _check_verdict(support: object, results: dict[str, tuple[float, bool]]) -> None:
    if not isinstance(support, dict) or "onednn_bf16" not in support:
        raise ValueError(
            f"support must be the dict of precision.bf16_support() (with 'onednn_bf16'), "
            f"got {support!r}."
        )
    ok = isinstance(results, dict) and results
    pairs = ok and all(isinstance(p, tuple | list) and len(p) == 2 for p in results.values())
    numbers = pairs and all(isinstance(p[0], int | float) for p in results.values())
    if not numbers or not all(0 < float(pair[0]) < math.inf for pair in results.values()):
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
    if y.is_floating_point() and y.ndim == 1:
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}; use y.long().")


def _check_amp_step(model, x, y, optimizer, dtype, scaler, max_grad_norm) -> None:
    _check_batch(model, x, y)
    if scaler is not None and not isinstance(scaler, torch.amp.GradScaler):
        raise ValueError(
            f"scaler must be None (bf16) or a torch.amp.GradScaler (fp16), got {scaler!r}."
        )
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
