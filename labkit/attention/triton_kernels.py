"""Notebook 08, part 8 on a GPU: FlashAttention-2 forward and backward as Triton kernels.

Imported only by labkit.attention.fused when a kernel is called (Triton is a GPU extra). Written
after the structure of Triton's fused-attention tutorial (python/tutorials/06-fused-attention.py:
FA-2 order, exp2 with log2(e) folded into the scale, a D = rowsum(dO ∘ O) pre-pass, dK/dV
accumulated per key block and dQ per query block - the tutorial runs both loops in one kernel,
here they are two kernels), but with masked loads so that any N, M and head dim d <= 256 work,
and top-left causal masking (query i sees keys j <= i).

Every tensor is viewed as (B·H, length, d) contiguous; one program handles one block of rows of
one (batch, head). Checked on the CPU with Triton's interpreter (TRITON_INTERPRET=1) against
labkit.attention.flash_forward / flash_backward, and compiled for an A100 (sm80) without one
(tests/attention/test_flash.py); `python -m labkit gpu-check` runs it on a GPU.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import triton
import triton.language as tl

from labkit.attention.lesson import _check_qkv

LOG2E = 1.4426950408889634  # exp(x) = exp2(x · log2 e)


@triton.jit
def _fwd_kernel(
    Q, K, V, Out, LSE, qk_scale, N, M, D,  # qk_scale = scale · log2(e)
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D_PAD: tl.constexpr,
    CAUSAL: tl.constexpr, IEEE: tl.constexpr,
):  # fmt: skip
    pid_m, bh = tl.program_id(0), tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,) query positions
    cols = tl.arange(0, BLOCK_N)  # (BLOCK_N,)
    dims = tl.arange(0, D_PAD)  # (D_PAD,) head dim, padded to a power of two
    row_ok, dim_ok = rows < N, dims < D
    q = tl.load(
        Q + bh * N * D + rows[:, None] * D + dims[None, :],
        mask=row_ok[:, None] & dim_ok[None, :], other=0.0,
    )  # (BLOCK_M, D_PAD), stays on chip  # fmt: skip
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)  # running max (log2 units)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)  # running sum
    acc = tl.zeros([BLOCK_M, D_PAD], dtype=tl.float32)  # unnormalised output
    hi = tl.minimum(M, (pid_m + 1) * BLOCK_M) if CAUSAL else M  # causal: skip future blocks
    for start in range(0, hi, BLOCK_N):
        keys = start + cols
        key_ok = keys < M
        kt = tl.load(
            K + bh * M * D + keys[None, :] * D + dims[:, None],
            mask=key_ok[None, :] & dim_ok[:, None], other=0.0,
        )  # (D_PAD, BLOCK_N) = K_jᵀ  # fmt: skip
        if IEEE:
            s = tl.dot(q, kt, input_precision="ieee") * qk_scale  # (BLOCK_M, BLOCK_N)
        else:
            s = tl.dot(q, kt) * qk_scale
        ok = key_ok[None, :]
        if CAUSAL:
            ok = ok & (keys[None, :] <= rows[:, None])
        s = tl.where(ok, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows with nothing visible yet
        alpha = tl.math.exp2(m_i - m_safe)
        p = tl.math.exp2(s - m_safe[:, None])  # (BLOCK_M, BLOCK_N)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(
            V + bh * M * D + keys[:, None] * D + dims[None, :],
            mask=key_ok[:, None] & dim_ok[None, :], other=0.0,
        )  # (BLOCK_N, D_PAD)  # fmt: skip
        if IEEE:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision="ieee")
        else:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    acc = acc / l_i[:, None]
    tl.store(
        Out + bh * N * D + rows[:, None] * D + dims[None, :],
        acc.to(Out.dtype.element_ty), mask=row_ok[:, None] & dim_ok[None, :],
    )  # fmt: skip
    tl.store(
        LSE + bh * N + rows, (m_i + tl.math.log2(l_i)) * 0.6931471805599453, mask=row_ok
    )  # ln 2


@triton.jit
def _bwd_dkdv_kernel(
    Q, K, V, DO, LSE, DELTA, DK, DV, scale, N, M, D,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D_PAD: tl.constexpr,
    CAUSAL: tl.constexpr, IEEE: tl.constexpr,
):  # fmt: skip
    pid_n, bh = tl.program_id(0), tl.program_id(1)
    keys = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # (BLOCK_N,) key positions of this program
    dims = tl.arange(0, D_PAD)
    key_ok, dim_ok = keys < M, dims < D
    kv_mask = key_ok[:, None] & dim_ok[None, :]
    k = tl.load(K + bh * M * D + keys[:, None] * D + dims[None, :], mask=kv_mask, other=0.0)
    v = tl.load(V + bh * M * D + keys[:, None] * D + dims[None, :], mask=kv_mask, other=0.0)
    dk = tl.zeros([BLOCK_N, D_PAD], dtype=tl.float32)  # dK_j, dV_j stay on chip
    dv = tl.zeros([BLOCK_N, D_PAD], dtype=tl.float32)
    lo = (pid_n * BLOCK_N // BLOCK_M) * BLOCK_M if CAUSAL else 0  # causal: rows i >= j only
    for start in range(lo, N, BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)
        row_ok = rows < N
        q_mask = row_ok[:, None] & dim_ok[None, :]
        q = tl.load(Q + bh * N * D + rows[:, None] * D + dims[None, :], mask=q_mask, other=0.0)
        do = tl.load(DO + bh * N * D + rows[:, None] * D + dims[None, :], mask=q_mask, other=0.0)
        lse = tl.load(LSE + bh * N + rows, mask=row_ok, other=0.0)
        delta = tl.load(DELTA + bh * N + rows, mask=row_ok, other=0.0)
        if IEEE:
            s = tl.dot(q, tl.trans(k), input_precision="ieee")  # (BLOCK_M, BLOCK_N)
        else:
            s = tl.dot(q, tl.trans(k))
        ok = row_ok[:, None] & key_ok[None, :]
        if CAUSAL:
            ok = ok & (keys[None, :] <= rows[:, None])
        p = tl.where(ok, tl.math.exp2((s * scale - lse[:, None]) * 1.4426950408889634), 0.0)
        if IEEE:
            dv += tl.dot(tl.trans(p).to(do.dtype), do, input_precision="ieee")  # Pᵀ dO
            dp = tl.dot(do, tl.trans(v), input_precision="ieee")  # dO Vᵀ
        else:
            dv += tl.dot(tl.trans(p).to(do.dtype), do)
            dp = tl.dot(do, tl.trans(v))
        ds = p * (dp - delta[:, None])  # (BLOCK_M, BLOCK_N)
        if IEEE:
            dk += tl.dot(tl.trans(ds).to(q.dtype), q, input_precision="ieee")  # dSᵀ Q
        else:
            dk += tl.dot(tl.trans(ds).to(q.dtype), q)
    tl.store(
        DK + bh * M * D + keys[:, None] * D + dims[None, :],
        (dk * scale).to(DK.dtype.element_ty),
        mask=kv_mask,
    )
    tl.store(
        DV + bh * M * D + keys[:, None] * D + dims[None, :],
        dv.to(DV.dtype.element_ty),
        mask=kv_mask,
    )


@triton.jit
def _bwd_dq_kernel(
    Q, K, V, DO, LSE, DELTA, DQ, scale, N, M, D,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D_PAD: tl.constexpr,
    CAUSAL: tl.constexpr, IEEE: tl.constexpr,
):  # fmt: skip
    pid_m, bh = tl.program_id(0), tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    dims = tl.arange(0, D_PAD)
    row_ok, dim_ok = rows < N, dims < D
    q_mask = row_ok[:, None] & dim_ok[None, :]
    q = tl.load(Q + bh * N * D + rows[:, None] * D + dims[None, :], mask=q_mask, other=0.0)
    do = tl.load(DO + bh * N * D + rows[:, None] * D + dims[None, :], mask=q_mask, other=0.0)
    lse = tl.load(LSE + bh * N + rows, mask=row_ok, other=0.0)
    delta = tl.load(DELTA + bh * N + rows, mask=row_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, D_PAD], dtype=tl.float32)  # dQ_i stays on chip
    hi = tl.minimum(M, (pid_m + 1) * BLOCK_M) if CAUSAL else M
    for start in range(0, hi, BLOCK_N):
        keys = start + tl.arange(0, BLOCK_N)
        key_ok = keys < M
        kv_mask = key_ok[:, None] & dim_ok[None, :]
        k = tl.load(K + bh * M * D + keys[:, None] * D + dims[None, :], mask=kv_mask, other=0.0)
        v = tl.load(V + bh * M * D + keys[:, None] * D + dims[None, :], mask=kv_mask, other=0.0)
        if IEEE:
            s = tl.dot(q, tl.trans(k), input_precision="ieee")
            dp = tl.dot(do, tl.trans(v), input_precision="ieee")
        else:
            s = tl.dot(q, tl.trans(k))
            dp = tl.dot(do, tl.trans(v))
        ok = row_ok[:, None] & key_ok[None, :]
        if CAUSAL:
            ok = ok & (keys[None, :] <= rows[:, None])
        p = tl.where(ok, tl.math.exp2((s * scale - lse[:, None]) * 1.4426950408889634), 0.0)
        ds = p * (dp - delta[:, None])
        if IEEE:
            dq += tl.dot(ds.to(k.dtype), k, input_precision="ieee")  # dS K
        else:
            dq += tl.dot(ds.to(k.dtype), k)
    tl.store(
        DQ + bh * N * D + rows[:, None] * D + dims[None, :],
        (dq * scale).to(DQ.dtype.element_ty),
        mask=q_mask,
    )


def _forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, scale: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(o, lse) of softmax(q kᵀ · scale + mask) v from _fwd_kernel; q (..., N, d), k, v (..., M, d).

    Used by triton_flash_forward (labkit/attention/fused.py).
    """
    lead, (qf, kf, vf), cfg = _check_triton(q, k, v, scale)
    n, m_len, d = q.shape[-2], k.shape[-2], q.shape[-1]
    o = torch.empty_like(qf)  # (B·H, N, d)
    lse = torch.empty(qf.shape[:2], device=q.device, dtype=torch.float32)  # (B·H, N)
    grid = (triton.cdiv(n, cfg["meta"]["BLOCK_M"]), qf.shape[0])
    _fwd_kernel[grid](
        qf, kf, vf, o, lse, cfg["scale"] * LOG2E, n, m_len, d, CAUSAL=causal, **cfg["meta"]
    )
    return o.reshape(*lead, n, d), lse.reshape(*lead, n)


def _backward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    o: torch.Tensor,
    lse: torch.Tensor,
    do: torch.Tensor,
    causal: bool = False,
    scale: Any = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dq, dk, dv) of (o * do).sum() from _bwd_dkdv_kernel and _bwd_dq_kernel.

    Used by triton_flash_backward (labkit/attention/fused.py).
    """
    lead, (qf, kf, vf), cfg = _check_triton(q, k, v, scale, o, lse, do)
    n, m_len, d = q.shape[-2], k.shape[-2], q.shape[-1]
    of, dof = (t.reshape(-1, n, d).contiguous() for t in (o, do))  # (B·H, N, d)
    delta = (of.float() * dof.float()).sum(-1)  # (B·H, N)  D = rowsum(dO ∘ O)
    lsef = lse.reshape(-1, n).float().contiguous()  # (B·H, N)
    dq, dk, dv = torch.empty_like(qf), torch.empty_like(kf), torch.empty_like(vf)
    meta, bh = cfg["meta"], qf.shape[0]
    grid_kv = (triton.cdiv(m_len, meta["BLOCK_N"]), bh)
    _bwd_dkdv_kernel[grid_kv](
        qf, kf, vf, dof, lsef, delta, dk, dv, cfg["scale"], n, m_len, d, CAUSAL=causal, **meta
    )
    grid_q = (triton.cdiv(n, meta["BLOCK_M"]), bh)
    _bwd_dq_kernel[grid_q](
        qf, kf, vf, dof, lsef, delta, dq, cfg["scale"], n, m_len, d, CAUSAL=causal, **meta
    )
    shapes = ((*lead, n, d), (*lead, m_len, d), (*lead, m_len, d))
    return tuple(t.reshape(s) for t, s in zip((dq, dk, dv), shapes, strict=True))  # type: ignore[return-value]


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_triton(
    q: Any, k: Any, v: Any, scale: Any, *saved: Any
) -> tuple[Any, Any, dict[str, Any]]:
    """Shapes, dtypes and device; returns (lead dims, q k v as (B·H, len, d), launch config)."""
    lead = _check_qkv(q, k, v, scale)
    d = q.shape[-1]
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2] or v.shape[-1] != d or d > 256:
        raise ValueError(
            "the Triton kernels take q, k, v with the same leading dims and head dim d <= 256 "
            f"(v's too), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}: expand "
            "shared heads with k.expand(...) first."
        )
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32) or not (
        q.dtype == k.dtype == v.dtype
    ):
        raise ValueError(
            f"q, k, v must share one of fp16 / bf16 / fp32, got {q.dtype}, {k.dtype}, {v.dtype}."
        )
    if saved and (
        saved[0].shape != q.shape or saved[1].shape != q.shape[:-1] or saved[2].shape != q.shape
    ):
        raise ValueError(
            "o and do must have q's shape and lse q's shape without d: pass what triton_flash_forward returned."
        )
    block = 64 if d <= 64 else 32 if d <= 128 or q.dtype != torch.float32 else 16  # SRAM
    meta = {"BLOCK_M": block, "BLOCK_N": block, "D_PAD": max(16, triton.next_power_of_2(d))}
    meta["IEEE"] = q.dtype == torch.float32  # fp32 stays fp32 in tl.dot (no TF32 rounding)
    flat = tuple(t.reshape(-1, t.shape[-2], d).contiguous() for t in (q, k, v))
    return (
        lead,
        flat,
        {"meta": meta, "scale": 1.0 / math.sqrt(d) if scale is None else float(scale)},
    )
