"""Notebook 08, parts 1-5: attention without the N x N matrix (naive, online softmax, tiled).

Shapes: q (..., N, d), k and v (..., M, d); the leading dims (batch, heads) broadcast as in
torch.nn.functional.scaled_dot_product_attention. Output (..., N, d_v).

    S = q kᵀ · scale   (N x M),   P = softmax(S) row-wise,   O = P v

The naive form materialises S and P: O(N·M) memory. FlashAttention streams K/V in blocks and
keeps, per query row, a running max m, a running sum l and an unnormalised output o, so only a
(B_r x B_c) tile of S exists at a time: O(N·d) memory, the same result up to float rounding.

Loop order: ``tiled_attention`` runs FlashAttention-2's order (Dao 2023): outer loop over query
blocks, inner loop over K/V blocks, o / l divided once at the end. The first FlashAttention paper
(Dao et al. 2022, Algorithm 1) has the loops the other way round: outer over K/V blocks, inner over
Q blocks, reading and rescaling each query block's O, l, m in HBM at every step.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from labkit.core import bench, models, probes
from labkit.core.errors import check_int, check_nonempty, check_positive, check_tensor

MAX_BYTES = 4 * 2**30  # refuse to allocate more than this (4 GiB) for one tensor

# ---------------------------------------------------------------- 1. naive attention


def score_matrix_bytes(
    n: int, m: int | None = None, batch_heads: int = 1, dtype_bytes: int = 4
) -> int:
    """Bytes of one (batch·heads, N, M) score matrix: the memory naive attention must hold (twice:
    S and P = softmax(S)).

        bytes = batch_heads · N · M · dtype_bytes   (M = N by default)
    Taught in notebooks/08_flash_attention.ipynb, "1. Naive attention stores an N x N matrix".
    """
    _check_counts(n=n, m=n if m is None else m, batch_heads=batch_heads, dtype_bytes=dtype_bytes)
    return batch_heads * n * (n if m is None else m) * dtype_bytes


def naive_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(q kᵀ · scale + mask) v with the full (..., N, M) score matrix in memory.

    scale defaults to 1/√d. causal masks keys j > i with −∞ before the softmax (top-left
    aligned, as SDPA's is_causal: labkit.models.causal_mask with offset 0). The computation is
    labkit.models.attention (offset 0); refused when S and P would pass MAX_BYTES.
    Taught in notebooks/08_flash_attention.ipynb, "1. Naive attention stores an N x N matrix".
    """
    _check_naive(q, k, v, causal, scale)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return models.attention(q, k, v, causal=causal, offset=0, scale=scale)  # (..., N, d_v)


def memory_and_time(
    fns: dict[str, Callable[..., Any]],
    ns: tuple[int, ...] = (512, 1024, 2048, 4096),
    d: int = 64,
    batch_heads: int = 1,
    rounds: int = 3,
    seed: int = 0,
    threads: int = 1,
) -> list[dict[str, Any]]:
    """For each N and each attention function fn(q, k, v) on q, k, v of shape (batch_heads, N, d):
    peak extra memory (MiB, after one warm-up call) and time, all functions of one N timed in one
    interleaved labkit.bench.compare (``rounds`` rounds of one call each, ``threads`` threads)
    against the first function: median ms, speed-up t(first) / t(fn), its IQR and the verdict.
    Memory is read with exact accounting, time with freed blocks reused (_heap_reuse).

    Taught in notebooks/08_flash_attention.ipynb, "1. Naive attention stores an N x N matrix".
    """
    _check_memory_and_time(fns, ns, d, batch_heads, rounds, threads)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for n in ns:
        q, k, v = (torch.randn(batch_heads, n, d, generator=gen) for _ in range(3))  # (BH, N, d)
        mems = {}
        for name, fn in fns.items():
            fn(q, k, v)
            mems[name] = bench.peak_memory(fn, q, k, v)
        calls = {name: (lambda f=fn, a=(q, k, v): f(*a)) for name, fn in fns.items()}
        with _heap_reuse():
            cmp = bench.compare(calls, rounds=rounds, repeats=1, warmup=0, threads=threads)
        for name in fns:
            rows.append(
                {
                    "N": n,
                    "method": name,
                    "peak_MiB": mems[name] / 2**20,
                    "time_ms": cmp.median_ms[name],
                    "speedup": cmp.speedup[name],
                    "iqr": cmp.spread[name],
                    "verdict": "baseline" if name == cmp.baseline else cmp.verdict(name),
                }
            )
    return rows


# ---------------------------------------------------------------- 2. safe and online softmax


def safe_softmax(x: torch.Tensor) -> torch.Tensor:
    """softmax over the last dim, computed as exp(x − max) / Σ exp(x − max) (no overflow).

    Taught in notebooks/08_flash_attention.ipynb, "2. Safe softmax and online softmax".
    """
    _check_softmax(x)
    e = torch.exp(x - x.amax(dim=-1, keepdim=True))  # (..., n), every value <= 1
    return e / e.sum(dim=-1, keepdim=True)


def online_softmax(x: torch.Tensor, block_size: int = 1) -> torch.Tensor:
    """Softmax over the last dim in one streaming pass for the statistics (Milakov & Gimelshein).

    Walk the last dim in blocks x_b, keeping the running max m and the running sum l of
    exp(x − m); when the max grows, the old sum is rescaled:
        m_new = max(m, max(x_b)),   l = l · exp(m − m_new) + Σ exp(x_b − m_new)
    then softmax(x) = exp(x − m) / l. Same result as torch.softmax; never forms exp(x) unshifted.
    The worked solution of the exercise (solutions/n08_flash_attention.py) is a deliberate copy,
    checked against this function.
    Taught in notebooks/08_flash_attention.ipynb, "2. Safe softmax and online softmax".
    """
    _check_softmax(x, block_size)
    m = x.new_full(x.shape[:-1], float("-inf"))  # (...,) running max
    l = x.new_zeros(x.shape[:-1])  # (...,) running sum  # noqa: E741 (the paper's name)
    for start in range(0, x.shape[-1], block_size):
        block = x[..., start : start + block_size]  # (..., b)
        m_new = torch.maximum(m, block.amax(dim=-1))
        m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)  # −∞ rows: 0
        l = l * torch.exp(m - m_safe) + torch.exp(block - m_safe.unsqueeze(-1)).sum(dim=-1)  # noqa: E741
        m = m_new
    m_safe = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    return torch.exp(x - m_safe.unsqueeze(-1)) / l.unsqueeze(-1)


# ---------------------------------------------------------------- 3. FlashAttention's forward


def tile_update(
    o: torch.Tensor,
    m: torch.Tensor,
    l: torch.Tensor,  # noqa: E741 (the paper's name)
    s: torch.Tensor,
    v: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One inner step of FlashAttention: fold a score tile into the running accumulators.

    o (..., B_r, d) unnormalised output, m (..., B_r) running max, l (..., B_r) running sum,
    s (..., B_r, B_c) this tile of scaled scores (−∞ where masked), v (..., B_c, d) its values.
        m_new = max(m, rowmax(s));  α = exp(m − m_new);  p = exp(s − m_new)
        l_new = α·l + rowsum(p);    o_new = α·o + p v
    The final output is o / l. Rows whose scores are all −∞ so far keep m = −∞, l = 0, o = 0.
    The worked solution of the exercise (solutions/n08_flash_attention.py) is a deliberate copy,
    checked against this function.
    Taught in notebooks/08_flash_attention.ipynb, "3. Tiled attention: FlashAttention's forward pass".
    """
    _check_tile(o, m, l, s, v)
    m_new = torch.maximum(m, s.amax(dim=-1))  # (..., B_r)
    m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)  # −∞ rows: 0
    alpha = torch.exp(m - m_safe)  # (..., B_r) how much the old o and l shrink
    p = torch.exp(s - m_safe.unsqueeze(-1))  # (..., B_r, B_c)
    l_new = alpha * l + p.sum(dim=-1)  # (..., B_r)
    o_new = alpha.unsqueeze(-1) * o + p @ v  # (..., B_r, d)
    return o_new, m_new, l_new


def tiled_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_size: int = 128,
    causal: bool = False,
    scale: float | None = None,
    block_q: int | None = None,
) -> torch.Tensor:
    """FlashAttention's forward algorithm in PyTorch, in FlashAttention-2's loop order.

    Outer loop over query blocks, inner loop over K/V blocks (FlashAttention-2, Dao 2023; the
    first paper's Algorithm 1 swaps the loops and rescales O in HBM at every step).
    For each query block Q_i (B_r = block_q rows, default block_size) start with o = 0,
    m = −∞, l = 0, then for each key block K_j, V_j (B_c = block_size rows):
        S_ij = Q_i K_jᵀ · scale (masked with −∞ above the diagonal when causal)
        (o, m, l) = tile_update(o, m, l, S_ij, V_j)
    and write O_i = o / l. Only a (B_r x B_c) tile of scores exists at once. Any N (the last
    block is simply shorter); causal skips key blocks entirely right of the diagonal.
    Equal to F.scaled_dot_product_attention within float rounding.
    Taught in notebooks/08_flash_attention.ipynb, "3. Tiled attention: FlashAttention's forward pass".
    """
    _check_tiled(q, k, v, block_size, block_q, scale, causal)
    bc, br = block_size, block_size if block_q is None else block_q  # B_c keys, B_r queries
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    n, m_len = q.shape[-2], k.shape[-2]
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])  # (batch, heads)
    out = q.new_empty(*lead, n, v.shape[-1])  # (..., N, d_v)
    for i0 in range(0, n, br):
        qi = q[..., i0 : i0 + br, :] * scale  # (..., B_r, d)
        rows = qi.shape[-2]
        o = q.new_zeros(*lead, rows, v.shape[-1])  # (..., B_r, d_v)
        mi = q.new_full((*lead, rows), float("-inf"))  # (..., B_r)
        li = q.new_zeros(*lead, rows)  # (..., B_r)
        for j0 in range(0, m_len, bc):
            if causal and j0 > i0 + rows - 1:
                break  # every key in this block (and later ones) is in the future
            s = qi @ k[..., j0 : j0 + bc, :].transpose(-2, -1)  # (..., B_r, B_c)
            if causal and j0 + s.shape[-1] - 1 > i0:  # the block crosses the diagonal
                qpos = torch.arange(i0, i0 + rows, device=q.device).unsqueeze(-1)  # (B_r, 1)
                kpos = torch.arange(j0, j0 + s.shape[-1], device=q.device)  # (B_c,)
                s = s.masked_fill(kpos > qpos, float("-inf"))
            o, mi, li = tile_update(o, mi, li, s, v[..., j0 : j0 + bc, :])
        out[..., i0 : i0 + rows, :] = o / li.unsqueeze(-1)
    return out


# ---------------------------------------------------------------- 5. IO complexity

SRAM_BYTES_PER_SM = {
    # on-chip shared memory + L1 per streaming multiprocessor (NVIDIA whitepapers)
    "A100": 192 * 1024,
    "H100": 256 * 1024,
}


def io_complexity(n: int, d: int, sram_bytes: int, dtype_bytes: int = 2) -> dict[str, float]:
    """HBM accesses (in elements, constants dropped) of standard vs FlashAttention.

    FlashAttention paper (Dao et al. 2022, Theorem 2), M = SRAM size in elements, d <= M <= N·d:
        standard attention:  Θ(N·d + N²)
        FlashAttention:      Θ(N²·d² / M)
    The ratio (N·d + N²)·M / (N²·d²) ≈ M / d² for N ≫ d: how many times fewer HBM accesses.
    Taught in notebooks/08_flash_attention.ipynb, "5. IO complexity (FlashAttention paper, Theorem 2)".
    """
    _check_io_complexity(n, d, sram_bytes, dtype_bytes)
    m_elems = sram_bytes / dtype_bytes
    standard = float(n * d + n * n)
    flash = float(n * n * d * d / m_elems)
    return {"M_elements": m_elems, "standard": standard, "flash": flash, "ratio": standard / flash}


@contextlib.contextmanager
def _heap_reuse() -> Iterator[None]:
    """Time with freed memory reused, then go back to exact memory accounting.

    labkit.probes.exact_cpu_memory_accounting (every notebook's set-up) makes each block of
    128 KiB or more a fresh mapping that goes back to the OS when freed, so that peak-memory
    readings see it; but then every large temporary costs page faults again, which slows code
    that allocates many tiles more than code that allocates a few big matrices (measured on a
    2-core AMD EPYC: the compiled forward at N = 4096 took 1.7x longer, SDPA the same). While
    timing, blocks below 32 MiB (glibc's largest automatic threshold) come from the heap.
    """
    probes.exact_cpu_memory_accounting(32 * 2**20)
    try:
        yield
    finally:
        probes.exact_cpu_memory_accounting()


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_counts(**counts: object) -> None:
    for name, value in counts.items():
        check_int(value, name, low=1)


def _check_bytes(nbytes: int, what: str, fix: str) -> None:
    if nbytes > MAX_BYTES:
        raise ValueError(
            f"{what} would need {nbytes / 2**30:,.1f} GiB of memory (this lab refuses more than "
            f"{MAX_BYTES / 2**30:.0f} GiB at once): {fix}"
        )


def _check_qkv(q: Any, k: Any, v: Any, scale: Any = None) -> torch.Size:
    """q (..., N, d), k (..., M, d), v (..., M, d_v): the broadcast leading shape."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if check_tensor(t, name).ndim < 2 or t.numel() == 0:
            raise ValueError(
                f"{name} must be a non-empty tensor (..., seq_len, head_dim), got {tuple(t.shape)}."
            )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"q and k need the same head dim, k and v the same sequence length; got q "
            f"{tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}."
        )
    if scale is not None:
        check_positive(scale, "scale")
    try:
        return torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading (batch, heads) dims of q, k, v must broadcast, got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}."
        ) from None


def _check_causal(causal: Any) -> None:
    if not isinstance(causal, bool | np.bool_):
        raise ValueError(
            f"causal must be True or False, got {causal!r}: a string such as 'no' counts as "
            "True in Python, so it would silently mask the future."
        )


def _check_naive(q: Any, k: Any, v: Any, causal: Any, scale: Any) -> None:
    _check_causal(causal)
    n_scores = math.prod(_check_qkv(q, k, v, scale)) * q.shape[-2] * k.shape[-2]
    _check_bytes(
        2 * n_scores * q.element_size(),
        f"naive_attention at N={q.shape[-2]:,}, M={k.shape[-2]:,} (the score matrix S and "
        f"P = softmax(S), {n_scores:,} {q.dtype} values each)",
        "use attention.tiled_attention or F.scaled_dot_product_attention (no N x M matrix), "
        "or shorten the sequence.",
    )


def _check_tiled(
    q: Any, k: Any, v: Any, block_size: Any, block_q: Any, scale: Any, causal: Any
) -> None:
    lead = _check_qkv(q, k, v, scale)
    _check_causal(causal)
    bc = check_int(block_size, "block_size", low=1)
    br = bc if block_q is None else check_int(block_q, "block_q", low=1)
    _check_bytes(
        math.prod(lead) * min(br, q.shape[-2]) * min(bc, k.shape[-2]) * q.element_size(),
        f"one score tile of tiled_attention (block_q={br:,} x block_size={bc:,})",
        "use smaller blocks (64-256 rows).",
    )


def _check_tile(o: Any, m: Any, l: Any, s: Any, v: Any) -> None:  # noqa: E741
    """The tile step's shapes: five size comparisons (it runs in the inner loop)."""
    for name, t in (("o", o), ("m", m), ("l", l), ("s", s), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(
                f"{name} must be a torch.Tensor, got {type(t).__name__}: pass the running "
                "state (o, m, l) and this tile's scores s and values v as tensors."
            )
    so, sm, ss, sv = o.shape, m.shape, s.shape, v.shape
    if sm != l.shape or so[:-1] != sm or ss[-2] != sm[-1] or ss[-1] != sv[-2] or so[-1] != sv[-1]:
        raise ValueError(
            "tile_update needs o (..., B_r, d), m and l (..., B_r), s (..., B_r, B_c), "
            f"v (..., B_c, d); got o {tuple(so)}, m {tuple(sm)}, l {tuple(l.shape)}, "
            f"s {tuple(ss)}, v {tuple(sv)}: slice s and v with the same key block."
        )


def _check_softmax(x: Any, block_size: Any = 1) -> None:
    check_tensor(x, "x")
    if x.ndim == 0 or x.numel() == 0:
        raise ValueError(
            f"x must be a non-empty tensor with at least one dimension (softmax runs over the "
            f"last one), got shape {tuple(x.shape)}."
        )
    check_int(block_size, "block_size", low=1)


def _check_io_complexity(n: Any, d: Any, sram_bytes: Any, dtype_bytes: Any) -> None:
    _check_counts(n=n, d=d, sram_bytes=sram_bytes, dtype_bytes=dtype_bytes)
    if sram_bytes < d * dtype_bytes:
        raise ValueError(
            f"sram_bytes={sram_bytes:,} holds {sram_bytes // dtype_bytes:,} elements, fewer than "
            f"one row of d={d}: Theorem 2 needs d <= M; pass the SRAM per SM in bytes "
            "(e.g. attention.SRAM_BYTES_PER_SM['A100'])."
        )


def _check_memory_and_time(
    fns: Any, ns: Any, d: Any, batch_heads: Any, rounds: Any, threads: Any
) -> None:
    if not isinstance(fns, dict) or len(fns) < 2 or not all(map(callable, fns.values())):
        raise ValueError(
            f"fns must be a dict of 2+ functions to compare (name -> attention fn(q, k, v)), "
            f"got {fns!r}."
        )
    if not isinstance(ns, tuple | list):
        raise ValueError(f"ns must be a tuple of sequence lengths such as (512, 1024), got {ns!r}.")
    check_nonempty(ns, "ns (the sequence lengths)")
    check_int(rounds, "rounds", low=3)
    check_int(threads, "threads", low=1)
    for n in ns:
        check_int(n, "each length in ns", low=1)
        _check_counts(d=d, batch_heads=batch_heads)
        _check_bytes(
            3 * batch_heads * n * d * 4,
            f"q, k, v at N={n:,}, d={d}, batch_heads={batch_heads}",
            "use shorter sequences (ns) or fewer batch_heads.",
        )
