"""Notebook 08, part 7: FlashAttention's forward AND backward pass, tile by tile.

Shapes: q (..., N, d), k (..., M, d), v (..., M, d_v); the leading dims (batch, heads) broadcast.

Forward (FlashAttention-2 order): for each query block, stream the key blocks with the online
softmax and keep, per query row, the log-sum-exp of its scores

    lse_i = log Σ_j exp(s_ij),     s_ij = q_i · k_j · scale   (−∞ where masked)

so that any probability can be recomputed later from one score: p_ij = exp(s_ij − lse_i).

Backward, from the saved o and lse only (no N×M matrix is ever stored):

    D_i  = Σ_c dO_ic · O_ic                     = rowsum(dO ∘ O)          (..., N)
    P    = exp(S − lse)                          (recomputed, one tile at a time)
    dV   = Pᵀ dO,    dP = dO Vᵀ,    dS = P ∘ (dP − D),    dQ = dS K · scale,    dK = dSᵀ Q · scale

D_i equals Σ_j P_ij dP_ij (the softmax's Jacobian-vector product needs it), and computing it
from dO and O costs O(N·d) instead of a pass over the whole row of P.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from labkit.attention.lesson import MAX_BYTES, _check_causal, _check_qkv, tile_update
from labkit.core import probes
from labkit.core.errors import check_int, check_positive, check_tensor

# ---------------------------------------------------------------- 7a. forward with the logsumexp


def flash_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    block_size: int = 128,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FlashAttention's forward pass: (o, lse), never an N×M matrix.

        o   = softmax(q kᵀ · scale + mask) v          (..., N, d_v)
        lse = log Σ_j exp(q kᵀ · scale + mask)_j      (..., N), natural log

    scale=None means 1/√d; causal=True lets query i see keys j <= i (top-left aligned, as SDPA's
    is_causal). Outer loop over query blocks, inner loop over key blocks (B_r = B_c =
    block_size), each step the online-softmax tile_update; N and M need not be multiples of
    block_size. float32 or float64.
    Taught in notebooks/08_flash_attention.ipynb, "7. The backward pass, tile by tile".
    """
    lead = _check_flash(q, k, v, block_size, scale, causal)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    n, m_len, b = q.shape[-2], k.shape[-2], block_size
    o = q.new_empty(*lead, n, v.shape[-1])  # (..., N, d_v)
    lse = q.new_empty(*lead, n)  # (..., N)
    for i0 in range(0, n, b):
        qi = q[..., i0 : i0 + b, :] * scale  # (..., B_r, d)
        rows = qi.shape[-2]
        acc = q.new_zeros(*lead, rows, v.shape[-1])  # (..., B_r, d_v) unnormalised output
        mi = q.new_full((*lead, rows), -math.inf)  # (..., B_r) running max
        li = q.new_zeros(*lead, rows)  # (..., B_r) running sum
        for j0 in range(0, min(m_len, i0 + rows) if causal else m_len, b):
            s = qi @ k[..., j0 : j0 + b, :].transpose(-2, -1)  # (..., B_r, B_c)
            if causal and j0 + s.shape[-1] - 1 > i0:  # this tile crosses the diagonal
                s = s.masked_fill(~causal_tile_mask(i0, j0, rows, s.shape[-1], q.device), -math.inf)
            acc, mi, li = tile_update(acc, mi, li, s, v[..., j0 : j0 + b, :])
        o[..., i0 : i0 + rows, :] = acc / li.unsqueeze(-1)
        lse[..., i0 : i0 + rows] = mi + torch.log(li)
    return o, lse


def causal_tile_mask(i0: int, j0: int, rows: int, cols: int, device: Any = None) -> torch.Tensor:
    """(rows, cols) bool tile of the causal mask at query offset i0, key offset j0: True where
    query i0 + r may see key j0 + c (j <= i, top-left aligned).

    Used by flash_forward and flash_backward (labkit/attention/flash.py).
    """
    _check_causal_tile_mask(i0, j0, rows, cols, device)
    qpos = torch.arange(i0, i0 + rows, device=device).unsqueeze(-1)  # (rows, 1)
    kpos = torch.arange(j0, j0 + cols, device=device)  # (cols,)
    return kpos <= qpos  # (rows, cols)


# ---------------------------------------------------------------- 7b. the backward pass


def backward_tile(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    do: torch.Tensor,
    lse: torch.Tensor,
    delta: torch.Tensor,
    scale: float,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One tile of FlashAttention's backward pass: the contributions to dQ_i, dK_j, dV_j.

    q, do (..., B_r, d), k (..., B_c, d), v (..., B_c, d_v), lse and delta (..., B_r) for the
    query rows (delta = rowsum(dO ∘ O) over the WHOLE row, not this tile), mask (B_r, B_c)
    bool, True where the query sees the key (None: all).
        P  = exp(q kᵀ · scale − lse)     (0 where masked): the softmax, recomputed
        dV = Pᵀ dO,   dP = dO vᵀ,   dS = P ∘ (dP − delta),   dQ = dS k · scale,   dK = dSᵀ q · scale
    Taught in notebooks/08_flash_attention.ipynb, "7. The backward pass, tile by tile".
    """
    _check_backward_tile(q, k, v, do, lse, delta, scale, mask)
    s = q @ k.transpose(-2, -1) * scale  # (..., B_r, B_c) the scores, recomputed
    if mask is not None:
        s = s.masked_fill(~mask, -math.inf)
    p = torch.exp(s - lse.unsqueeze(-1))  # (..., B_r, B_c) softmax probabilities
    dv = p.transpose(-2, -1) @ do  # (..., B_c, d_v)
    dp = do @ v.transpose(-2, -1)  # (..., B_r, B_c)
    ds = p * (dp - delta.unsqueeze(-1))  # (..., B_r, B_c) gradient of the scores
    dq = ds @ k * scale  # (..., B_r, d)
    dk = ds.transpose(-2, -1) @ q * scale  # (..., B_c, d)
    return dq, dk, dv


def flash_backward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    o: torch.Tensor,
    lse: torch.Tensor,
    do: torch.Tensor,
    causal: bool = False,
    block_size: int = 128,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients (dq, dk, dv) of (o * do).sum() from the saved o and lse, tile by tile.

        D = rowsum(dO ∘ O)  (..., N),  then for every (query block i, key block j):
        (dQ_i, dK_j, dV_j) += backward_tile(Q_i, K_j, V_j, dO_i, lse_i, D_i)
    FlashAttention-2's backward order: outer loop over key blocks (dK_j, dV_j accumulate "on
    chip"), inner loop over query blocks (dQ_i is added to in HBM: atomics on a GPU). Causal
    skips the tiles above the diagonal. Broadcast leading dims are summed back (dk has k's shape).
    Taught in notebooks/08_flash_attention.ipynb, "7. The backward pass, tile by tile".
    """
    lead = _check_flash_backward(q, k, v, o, lse, do, block_size, scale, causal)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    n, m_len, b = q.shape[-2], k.shape[-2], block_size
    delta = (do * o).sum(-1)  # (..., N)  D = rowsum(dO ∘ O)
    dq = q.new_zeros(*lead, n, q.shape[-1])  # (..., N, d)
    dk = q.new_zeros(*lead, m_len, k.shape[-1])  # (..., M, d)
    dv = q.new_zeros(*lead, m_len, v.shape[-1])  # (..., M, d_v)
    for j0 in range(0, m_len, b):
        kj, vj = k[..., j0 : j0 + b, :], v[..., j0 : j0 + b, :]  # (..., B_c, d)
        cols = kj.shape[-2]
        dkj, dvj = torch.zeros_like(dk[..., :cols, :]), torch.zeros_like(dv[..., :cols, :])
        for i0 in range((j0 // b) * b if causal else 0, n, b):  # causal: rows i >= j0 only
            qi, doi = q[..., i0 : i0 + b, :], do[..., i0 : i0 + b, :]  # (..., B_r, d)
            rows = qi.shape[-2]
            crosses = causal and j0 + cols - 1 > i0
            mask = causal_tile_mask(i0, j0, rows, cols, q.device) if crosses else None
            dq_t, dk_t, dv_t = backward_tile(
                qi, kj, vj, doi, lse[..., i0 : i0 + rows], delta[..., i0 : i0 + rows], scale, mask
            )
            dq[..., i0 : i0 + rows, :] += dq_t  # dQ_i lives in HBM: added to by every key block
            dkj, dvj = dkj + dk_t, dvj + dv_t  # dK_j, dV_j stay "on chip" for the whole column
        dk[..., j0 : j0 + cols, :] = dkj
        dv[..., j0 : j0 + cols, :] = dvj
    return dq.sum_to_size(q.shape), dk.sum_to_size(k.shape), dv.sum_to_size(v.shape)


class _FlashAttention(torch.autograd.Function):
    """Autograd glue: forward saves (q, k, v, o, lse) - O(N·d) - and backward recomputes."""

    @staticmethod
    def forward(ctx: Any, q: Any, k: Any, v: Any, causal: bool, block_size: int, scale: Any) -> Any:
        o, lse = flash_forward(q, k, v, causal, block_size, scale)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.args = (causal, block_size, scale)
        return o

    @staticmethod
    def backward(ctx: Any, do: torch.Tensor) -> Any:
        q, k, v, o, lse = ctx.saved_tensors
        return (*flash_backward(q, k, v, o, lse, do.contiguous(), *ctx.args), None, None, None)


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    block_size: int = 128,
    scale: float | None = None,
) -> torch.Tensor:
    """Differentiable FlashAttention: flash_forward's o, with flash_backward as its gradient.

    Autograd keeps q, k, v, o and lse (O(N·d)) instead of the N×M probabilities.
    Taught in notebooks/08_flash_attention.ipynb, "7. The backward pass, tile by tile".
    """
    return _FlashAttention.apply(q, k, v, causal, block_size, scale)


# ---------------------------------------------------------------- 7c. measuring the memory


class _LargestTensor(TorchDispatchMode):
    """Remembers the largest tensor (in elements) any aten op returns, and which op made it."""

    def __init__(self) -> None:
        super().__init__()
        self.numel, self.op = 0, ""

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.numel() > self.numel:
                self.numel, self.op = t.numel(), str(func.overloadpacket.__name__)
        return out


def largest_tensor(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, str]:
    """(elements, op name) of the largest tensor any aten op returns while fn(*args) runs.

    A TorchDispatchMode sees every op below autograd (backward's ops too), masks included.
    Taught in notebooks/08_flash_attention.ipynb, "7. The backward pass, tile by tile".
    """
    _check_largest_tensor(fn)
    with _LargestTensor() as rec:
        fn(*args, **kwargs)
    return rec.numel, rec.op


def train_step_memory(
    fns: dict[str, Callable[..., torch.Tensor]], n: int = 4096, d: int = 64, seed: int = 0
) -> list[dict[str, Any]]:
    """Memory of one forward + backward of each differentiable attention fn(q, k, v) at (1, n, d).

    peak_MiB: labkit.probes.peak_tensor_bytes of fn(q, k, v).backward(dO) - the most bytes of
    tensor storages created inside and alive at once (activations, saved tensors, gradients,
    tiles); saved_MiB: labkit.probes.saved_tensor_bytes of the forward - what autograd keeps
    for backward. Both exact counts of aten ops, the same on every CPU.
    Taught in notebooks/08_flash_attention.ipynb, "7. The backward pass, tile by tile".
    """
    _check_train_step_memory(fns, n, d)
    gen = torch.Generator().manual_seed(seed)
    q, k, v, do = (torch.randn(1, n, d, generator=gen) for _ in range(4))  # (1, N, d)
    rows = []
    for name, fn in fns.items():
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]

        def step(fn: Callable[..., torch.Tensor] = fn, leaves: list = leaves) -> None:
            fn(*leaves).backward(do)
            for t in leaves:
                t.grad = None

        peak = probes.peak_tensor_bytes(step)
        saved = probes.saved_tensor_bytes(lambda fn=fn, leaves=leaves: fn(*leaves))
        rows.append({"method": name, "peak_MiB": peak / 2**20, "saved_MiB": saved / 2**20})
    return rows


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_flash(
    q: Any, k: Any, v: Any, block_size: Any, scale: Any, causal: Any = False
) -> torch.Size:
    lead = _check_qkv(q, k, v, scale)
    _check_causal(causal)
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f"{name} must be float32 (or float64), got {t.dtype}: call {name}.float() first "
                "(the fp16/bf16 kernels are SDPA's and the Triton one on a GPU)."
            )
    b = check_int(block_size, "block_size", low=1)
    tile = math.prod(lead) * min(b, q.shape[-2]) * min(b, k.shape[-2]) * q.element_size()
    if tile > MAX_BYTES:
        raise ValueError(
            f"one {b} x {b} score tile needs {tile / 2**30:.1f} GiB: use block_size <= 256."
        )
    return lead


def _check_flash_backward(
    q: Any, k: Any, v: Any, o: Any, lse: Any, do: Any, block_size: Any, scale: Any, causal: Any
) -> torch.Size:
    lead = _check_flash(q, k, v, block_size, scale, causal)
    want = {"o": (*lead, q.shape[-2], v.shape[-1]), "do": (*lead, q.shape[-2], v.shape[-1])}
    want["lse"] = (*lead, q.shape[-2])
    for name, t in (("o", o), ("lse", lse), ("do", do)):
        if tuple(check_tensor(t, name).shape) != want[name]:
            raise ValueError(
                f"{name} must have shape {want[name]} (from q, k, v), got {tuple(t.shape)}: pass "
                "the o and lse that flash_forward returned for these q, k, v, and dO shaped like o."
            )
    return lead


def _check_causal_tile_mask(i0: Any, j0: Any, rows: Any, cols: Any, device: Any) -> None:
    for name, value, low in (("i0", i0, 0), ("j0", j0, 0), ("rows", rows, 1), ("cols", cols, 1)):
        check_int(value, name, low=low)
    if rows * cols > MAX_BYTES:
        raise ValueError(
            f"a rows x cols = {rows:,} x {cols:,} mask tile needs {rows * cols / 2**30:,.0f} GiB: "
            "a tile is one block of queries by one block of keys (64-256 each)."
        )
    if device is not None and not isinstance(device, torch.device):
        try:
            torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device must be a torch.device or a name such as 'cpu' or 'cuda', got {device!r}."
            ) from None


def _check_backward_tile(
    q: Any, k: Any, v: Any, do: Any, lse: Any, delta: Any, scale: Any, mask: Any
) -> None:
    """One tile's shapes: q, do (..., B_r, ·), k, v (..., B_c, ·), lse, delta (..., B_r)."""
    _check_qkv(q, k, v)
    for name, t in (("do", do), ("lse", lse), ("delta", delta)):
        check_tensor(t, name)
    rows, want_do = q.shape[-2], (q.shape[-2], v.shape[-1])
    if do.ndim < 2 or tuple(do.shape[-2:]) != want_do:
        raise ValueError(
            f"do must end in (B_r, d_v) = {want_do} (q's rows, v's width), got {tuple(do.shape)}."
        )
    for name, t in (("lse", lse), ("delta", delta)):
        if t.ndim != do.ndim - 1 or t.shape[-1] != rows:
            raise ValueError(
                f"{name} must have shape (..., B_r) = (..., {rows}), one value per query row of "
                f"this tile (do is {tuple(do.shape)}), got {tuple(t.shape)}."
            )
    check_positive(scale, "scale")
    want_mask = (rows, k.shape[-2])
    if mask is not None and (
        not isinstance(mask, torch.Tensor)
        or mask.dtype != torch.bool
        or tuple(mask.shape[-2:]) != want_mask
    ):
        got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else mask
        raise ValueError(
            f"mask must be None or a bool tensor (B_r, B_c) = {want_mask}, True where the query "
            f"sees the key, got {got}: use attention.causal_tile_mask(i0, j0, rows, cols)."
        )


def _check_largest_tensor(fn: Any) -> None:
    if not callable(fn):
        raise ValueError(
            f"fn must be a function to run, e.g. attention.naive_attention, got {fn!r}; "
            "its arguments follow: largest_tensor(fn, q, k, v)."
        )


def _check_train_step_memory(fns: Any, n: Any, d: Any) -> None:
    if not isinstance(fns, dict) or not fns or not all(map(callable, fns.values())):
        raise ValueError(f"fns must be a dict name -> attention fn(q, k, v), got {fns!r}.")
    check_int(n, "n", low=1, high=16384)
    check_int(d, "d", low=1, high=1024)
