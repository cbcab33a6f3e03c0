"""Notebook 08, part 9: PyTorch's fused attention (SDPA) backends, flash-attn and xFormers.

F.scaled_dot_product_attention picks a kernel per call (FLASH_ATTENTION, EFFICIENT_ATTENTION,
CUDNN_ATTENTION, or the MATH fallback that decomposes into plain ops); torch.nn.attention.
sdpa_kernel forces one. The GPU-only kernels (Tri Dao's flash-attn, xFormers) take
(batch, seq, heads, head_dim) tensors: the wrappers transpose in and out of (B, H, N, d).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from labkit.attention.lesson import MAX_BYTES, _check_causal, _check_qkv, _heap_reuse
from labkit.core import bench
from labkit.core.errors import MissingDependency, check_choice, check_int, require, require_cuda
from labkit.core.probes import OpRecorder

KERNEL_NAMES = {
    "_scaled_dot_product_flash_attention_for_cpu": "FLASH_ATTENTION (CPU kernel)",
    "_scaled_dot_product_flash_attention": "FLASH_ATTENTION",
    "_scaled_dot_product_efficient_attention": "EFFICIENT_ATTENTION",
    "_scaled_dot_product_cudnn_attention": "CUDNN_ATTENTION",
    "_scaled_dot_product_attention_math": "MATH",
    "_scaled_dot_product_fused_attention_overrideable": "OVERRIDEABLE",
}
BACKENDS = {  # the backends SDPA can be forced to, by short name
    "flash": SDPBackend.FLASH_ATTENTION,
    "mem_efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "math": SDPBackend.MATH,
}
OPTIONAL_KERNELS = {"flash_attn": "flash_attn", "xformers": "xformers.ops"}  # name -> module


def sdpa_kernel_used(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs: Any) -> str:
    """Which SDPA backend F.scaled_dot_product_attention dispatches to for these inputs.

    Runs it once under labkit.probes.OpRecorder (a dispatch mode: it sees the aten kernel SDPA
    picked, below the Python-level function) and names the first kernel of KERNEL_NAMES it ran;
    when none ran, SDPA took the MATH path and decomposed into plain ops (listed).
    Taught in notebooks/08_flash_attention.ipynb, "9. SDPA backends, flash-attn and xFormers".
    """
    _check_sdpa_kwargs(q, k, v, kwargs)
    with OpRecorder() as rec:
        F.scaled_dot_product_attention(q, k, v, **kwargs)
    ops = [c.name for c in rec.ops]
    for op in ops:
        if op in KERNEL_NAMES:
            return KERNEL_NAMES[op]
    return "MATH (decomposed: " + ", ".join(dict.fromkeys(ops)) + ")"


@contextlib.contextmanager
def forced_backend(name: str) -> Iterator[None]:
    """Context manager: SDPA may use only backend ``name`` (a key of BACKENDS).

    Used by time_backends (labkit/attention/backends.py).
    """
    check_choice(name, "name", BACKENDS)
    with sdpa_kernel(BACKENDS[name]):
        yield


def time_backends(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    names: tuple[str, ...] = ("flash", "mem_efficient", "cudnn", "math"),
    causal: bool = False,
    repeats: int = 5,
    rounds: int = 5,
) -> list[dict[str, Any]]:
    """SDPA with each backend forced in turn: the kernel it runs, and the backends that run timed
    in one interleaved labkit.bench.compare against ``math`` (or the last one that runs):
    median ms, speed-up and verdict. A backend that refuses these inputs (dtype, head dim, GPU
    generation, CPU) is reported with the reason, not raised.

    Taught in notebooks/08_flash_attention.ipynb, "9. SDPA backends, flash-attn and xFormers".
    """
    _check_time_backends(q, k, v, names, causal, repeats, rounds)
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            with forced_backend(name):
                used = sdpa_kernel_used(q, k, v, is_causal=causal)
            rows[name] = {"backend": name, "kernel": used, "median_ms": float("nan"), "note": ""}
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0][:100]
            rows[name] = {"backend": name, "kernel": "-", "median_ms": float("nan"), "note": reason}
    runs = [n for n in names if rows[n]["kernel"] != "-"]

    def call(name: str) -> Any:
        def run() -> Any:
            with forced_backend(name):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        return run

    if len(runs) >= 2:
        base = "math" if "math" in runs else runs[-1]
        with _heap_reuse():  # time with freed memory reused (see labkit/attention/lesson.py)
            cmp = bench.compare(
                {n: call(n) for n in runs}, baseline=base, rounds=rounds, repeats=repeats
            )
        for n in runs:
            rows[n]["median_ms"] = cmp.median_ms[n]
            rows[n]["note"] = "baseline" if n == base else cmp.verdict(n)
    elif runs:
        rows[runs[0]]["median_ms"] = bench.latency(call(runs[0]), repeats=repeats).median_ms
    return [rows[n] for n in names]


def time_cuda_backends(
    n: int = 4096, d: int = 64, heads: int = 16, batch: int = 1, causal: bool = False
) -> list[dict[str, Any]]:
    """On a CUDA GPU: fp16 q, k, v of shape (batch, heads, n, d) and every SDPA backend forced
    in turn and timed. Raises MissingDependency without a GPU.

    Taught in notebooks/08_flash_attention.ipynb, "9. SDPA backends, flash-attn and xFormers".
    """
    _check_time_cuda_backends(n, d, heads, batch, causal)
    dev = require_cuda("Timing the CUDA SDPA backends")
    q, k, v = (torch.randn(batch, heads, n, d, device=dev, dtype=torch.float16) for _ in range(3))
    return time_backends(q, k, v, causal=causal)


def flash_attn_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False
) -> torch.Tensor:
    """Tri Dao's flash_attn.flash_attn_func on (B, H, N, d) fp16/bf16 CUDA tensors.

    flash_attn_func wants (batch, seqlen, heads, head_dim), so we transpose in and out.
    Taught in notebooks/08_flash_attention.ipynb, "9. SDPA backends, flash-attn and xFormers".
    """
    _check_optional_kernel(q, k, v, causal)
    flash_attn = require("flash_attn", "flash-attn", why="the FlashAttention-2 CUDA kernels")
    require_cuda("flash_attn")
    out = flash_attn.flash_attn_func(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), dropout_p=0.0, causal=causal
    )  # (B, N, H, d)
    return out.transpose(1, 2)  # (B, H, N, d)


def xformers_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False
) -> torch.Tensor:
    """xformers.ops.memory_efficient_attention on (B, H, N, d) tensors ([B, M, H, K] inside).

    Taught in notebooks/08_flash_attention.ipynb, "9. SDPA backends, flash-attn and xFormers".
    """
    _check_optional_kernel(q, k, v, causal)
    xops = require("xformers.ops", "xformers", why="xFormers memory-efficient attention")
    bias = xops.LowerTriangularMask() if causal else None
    out = xops.memory_efficient_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias
    )  # (B, N, H, d)
    return out.transpose(1, 2)  # (B, H, N, d)


def optional_kernel_notice(name: str) -> str | None:
    """None when ``name`` ('flash_attn' or 'xformers') can run here, else a one-line notice.

    Taught in notebooks/08_flash_attention.ipynb, "9. SDPA backends, flash-attn and xFormers".
    """
    check_choice(name, "name", OPTIONAL_KERNELS)
    pip = name.replace("_", "-")
    try:
        require(OPTIONAL_KERNELS[name], pip)
    except MissingDependency:
        return f"{name} is not installed (`pip install {pip}`, needs a CUDA GPU): skipping it."
    if not torch.cuda.is_available():
        return f"{name} is installed but there is no CUDA GPU here: skipping it."
    return None


FEATURES_AS_OF = "2026-12-06: torch 2.14, flash-attn 2.8.3, xFormers 0.0.35 (their documentation)"
FEATURES = [  # what each kernel supports, from its documentation (not measured here)
    {"kernel": "SDPA FLASH_ATTENTION (CUDA)", "dtypes": "fp16, bf16", "head dims": "<= 256",
     "masks": "causal only (no attn_mask)", "dropout": "yes", "backward": "yes",
     "GPUs": "sm80+ (Ampere, Ada, Hopper, newer)", "variable length": "nested (jagged) tensors",
     "source": "PyTorch SDPA docs and tutorial"},
    {"kernel": "SDPA EFFICIENT_ATTENTION (CUDA)", "dtypes": "fp32, fp16, bf16",
     "head dims": "any (fastest for multiples of 8)", "masks": "causal, additive or bool attn_mask",
     "dropout": "yes", "backward": "yes", "GPUs": "older ones too (xFormers' CUTLASS kernel)",
     "variable length": "nested (jagged) tensors", "source": "PyTorch SDPA docs"},
    {"kernel": "SDPA CUDNN_ATTENTION (CUDA)", "dtypes": "fp16, bf16 (fp8 on Hopper+)",
     "head dims": "<= 128 (Ampere backward), <= 256 (Hopper)", "masks": "causal, bias, padding",
     "dropout": "see cuDNN matrix", "backward": "yes", "GPUs": "sm80+, CUDA 12, cuDNN 9",
     "variable length": "padded / ragged layouts", "source": "cuDNN frontend attention matrix"},
    {"kernel": "SDPA FLASH_ATTENTION (CPU kernel)", "dtypes": "fp32, fp64, bf16, fp16",
     "head dims": "any", "masks": "causal, attn_mask", "dropout": "falls back to MATH",
     "backward": "yes", "GPUs": "- (CPU)", "variable length": "no",
     "source": "PyTorch; which kernel runs is measured in section 9"},
    {"kernel": "flash-attn flash_attn_func", "dtypes": "fp16, bf16", "head dims": "<= 256",
     "masks": "causal (bottom-right since 2.1), sliding window, ALiBi, softcap",
     "dropout": "yes", "backward": "yes (not flash_attn_with_kvcache)",
     "GPUs": "Ampere, Ada, Hopper (Turing: FlashAttention 1.x); AMD MI200/MI300 (ROCm)",
     "variable length": "flash_attn_varlen_func (cu_seqlens), paged KV cache",
     "source": "flash-attention README"},
    {"kernel": "xFormers memory_efficient_attention", "dtypes": "fp32, fp16, bf16",
     "head dims": "any (CUTLASS op); flash op <= 256",
     "masks": "LowerTriangularMask, tensor bias, BlockDiagonalMask", "dropout": "yes (p=)",
     "backward": "yes (not through the mask)", "GPUs": "P100 (sm60) and newer; AMD via CK",
     "variable length": "BlockDiagonalMask (sequences concatenated)",
     "source": "xFormers ops documentation"},
    {"kernel": "this course: flash_forward / flash_backward", "dtypes": "fp32, fp64",
     "head dims": "any", "masks": "causal (top-left)", "dropout": "no", "backward": "yes",
     "GPUs": "any torch device (Python loop)", "variable length": "no",
     "source": "labkit/attention/flash.py (tested here)"},
    {"kernel": "this course: Triton kernels", "dtypes": "fp16, bf16, fp32", "head dims": "<= 256",
     "masks": "causal (top-left)", "dropout": "no", "backward": "yes",
     "GPUs": "CUDA GPUs Triton supports", "variable length": "no",
     "source": "labkit/attention/triton_kernels.py (Triton interpreter; GPU: gpu-check)"},
]  # fmt: skip
VERSIONS = {"SDPA": "torch", "flash-attn": "flash_attn", "xFormers": "xformers"}


def feature_table() -> list[dict[str, str]]:
    """FEATURES with one more column: the version of that library installed here (or "-").

    Taught in notebooks/08_flash_attention.ipynb, "9. SDPA backends, flash-attn and xFormers".
    """
    import importlib.metadata as md

    def version(kernel: str) -> str:
        for key, dist in VERSIONS.items():
            if kernel.startswith(key):
                try:
                    return md.version(dist)
                except md.PackageNotFoundError:
                    return "not installed"
        return "-"

    return [{**row, "installed here": version(row["kernel"])} for row in FEATURES]


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_time_backends(
    q: Any, k: Any, v: Any, names: Any, causal: Any, repeats: Any, rounds: Any
) -> None:
    _check_qkv(q, k, v)
    if isinstance(names, str) or not isinstance(names, tuple | list) or not names:
        raise ValueError(
            f"names must be a non-empty tuple of backend names from {list(BACKENDS)}, got "
            f"{names!r}: write names=('flash',) for one backend."
        )
    for name in names:
        check_choice(name, "each of names", BACKENDS)
    _check_causal(causal)
    check_int(repeats, "repeats", low=1)
    check_int(rounds, "rounds", low=3)  # labkit.bench.compare's minimum


def _check_time_cuda_backends(n: Any, d: Any, heads: Any, batch: Any, causal: Any) -> None:
    for name, value in (("n", n), ("d", d), ("heads", heads), ("batch", batch)):
        check_int(value, name, low=1)
    _check_causal(causal)
    nbytes = 3 * batch * heads * n * d * 2  # q, k, v in fp16
    if nbytes > MAX_BYTES:
        raise ValueError(
            f"q, k, v of shape (batch={batch}, heads={heads}, n={n:,}, d={d}) need "
            f"{nbytes / 2**30:,.1f} GiB of GPU memory: use a shorter n or fewer heads."
        )


def _check_optional_kernel(q: Any, k: Any, v: Any, causal: Any) -> None:
    _check_qkv(q, k, v)
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(
            f"q, k, v must be (batch, heads, N, d), got q {tuple(q.shape)}, k {tuple(k.shape)}, "
            f"v {tuple(v.shape)}: add the missing dims with q[None] or q.unsqueeze(1)."
        )
    _check_causal(causal)


def _check_sdpa_kwargs(q: Any, k: Any, v: Any, kwargs: dict[str, Any]) -> None:
    _check_qkv(q, k, v)
    known = ("attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    for key in kwargs:
        check_choice(key, "a keyword argument of F.scaled_dot_product_attention", known)
    if not isinstance(kwargs.get("is_causal", False), bool):
        raise ValueError(f"is_causal must be True or False, got {kwargs['is_causal']!r}.")
