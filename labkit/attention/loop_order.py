"""Notebook 08, part 6: FlashAttention-1 vs -2 loop order, and the HBM traffic of each.

Both loop nests compute the same output; they differ in which operand stays on chip. Tiles:
Q_i (B_r rows), K_j, V_j (B_c rows), T_r = ⌈N / B_r⌉ query blocks, T_c = ⌈M / B_c⌉ key blocks.

FlashAttention-1 (Dao et al. 2022, Algorithm 1): outer loop over K/V blocks, inner over Q blocks.
    K, V read once;  Q read T_c times;  O (and l, m) read and written back at every step.
FlashAttention-2 (Dao 2023): outer loop over Q blocks, inner over K/V blocks.
    Q read once, O written once;  K and V read T_r times.
Each query block of FA-2 is an independent program (its o, m, l never leave the chip), so a GPU
runs all T_r · batch · heads of them in parallel; in FA-1 every outer step rewrites all of O, and
splitting the outer loop across programs would make them race on the same O_i.

Block sizes from SRAM of M elements (Algorithm 1, line 1): B_c = ⌈M / 4d⌉, B_r = min(⌈M / 4d⌉, d),
so that Q_i, K_j, V_j, O_i (4 blocks of d columns) fit in M.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from labkit.attention.lesson import _check_qkv, tile_update
from labkit.core.errors import check_choice, check_int

ORDERS = ("fa1", "fa2")
COUNTS = ("q_read", "k_read", "v_read", "o_read", "o_write")


def flash_block_sizes(sram_elements: int, d: int) -> tuple[int, int]:
    """(B_r, B_c) for SRAM of ``sram_elements`` elements and head dim d (FA-1 Algorithm 1):

        B_c = ⌈M / 4d⌉,   B_r = min(⌈M / 4d⌉, d)
    Taught in notebooks/08_flash_attention.ipynb, "6. FlashAttention-1 vs -2: loop order and HBM traffic".
    """
    _check_sizes(sram_elements=sram_elements, d=d)
    bc = -(-sram_elements // (4 * d))  # ⌈M / 4d⌉ in integers
    return min(bc, d), bc


def hbm_traffic(n: int, d: int, sram_elements: int, order: str = "fa2") -> dict[str, int]:
    """Elements of Q, K, V, O moved between HBM and the chip by one head of N x N attention.

    (B_r, B_c) = flash_block_sizes(M, d),  T_r = ⌈N / B_r⌉,  T_c = ⌈N / B_c⌉:
        fa2: q_read = N·d,        k_read = v_read = T_r·N·d,   o_read = 0,        o_write = N·d
        fa1: q_read = T_c·N·d,    k_read = v_read = N·d,       o_read = T_c·N·d,  o_write = (T_c + 1)·N·d
    (FA-1 first writes O = 0 to HBM, then reads, rescales and writes every O_i at each outer step.)
    Returns these five counts, their "total", and "B_r", "B_c". Non-causal; l and m not counted.
    Taught in notebooks/08_flash_attention.ipynb, "6. FlashAttention-1 vs -2: loop order and HBM traffic".
    """
    _check_sizes(n=n, sram_elements=sram_elements, d=d)
    br, bc = flash_block_sizes(sram_elements, d)
    tr, tc, nd = -(-n // br), -(-n // bc), n * d  # blocks of queries, of keys; one matrix
    if check_choice(order, "order", ORDERS) == "fa2":
        counts = dict(zip(COUNTS, (nd, tr * nd, tr * nd, 0, nd), strict=True))
    else:
        counts = dict(zip(COUNTS, (tc * nd, nd, nd, tc * nd, (tc + 1) * nd), strict=True))
    return {**counts, "total": sum(counts.values()), "B_r": br, "B_c": bc}


def loop_order_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_q: int,
    block_k: int,
    order: str = "fa2",
) -> tuple[torch.Tensor, dict[str, int]]:
    """Attention of one head, q (N, d), k and v (M, d), in FA-1's or FA-2's loop nest, counting
    every element loaded from or stored to the full ("HBM") tensors q, k, v, o.

    fa2: for each Q_i: (o, m, l) on chip; for each K_j, V_j: tile_update; write O_i = o / l once.
    fa1 (Algorithm 1): O = 0, l = 0, m = −∞ in HBM; for each K_j, V_j: for each Q_i: read Q_i,
    O_i, l_i, m_i; m̃ = rowmax(S), P̃ = exp(S − m̃), l̃ = rowsum(P̃); m' = max(m_i, m̃),
    l' = e^{m_i−m'} l_i + e^{m̃−m'} l̃;  O_i ← (l_i e^{m_i−m'} O_i + e^{m̃−m'} P̃ V_j) / l'; write back.
    Returns (o, counts) with the keys of COUNTS. Non-causal.
    Taught in notebooks/08_flash_attention.ipynb, "6. FlashAttention-1 vs -2: loop order and HBM traffic".
    """
    _check_loop_order(q, k, v, block_q, block_k, order)
    counts = dict.fromkeys(COUNTS, 0)

    def read(name: str, t: torch.Tensor, a: int, b: int) -> torch.Tensor:
        counts[f"{name}_read"] += t[a:b].numel()
        return t[a:b]

    scale, n, m_len = 1.0 / math.sqrt(q.shape[-1]), q.shape[0], k.shape[0]
    o = q.new_zeros(n, v.shape[-1])  # (N, d_v) in HBM
    if order == "fa2":
        for i0 in range(0, n, block_q):
            qi = read("q", q, i0, i0 + block_q) * scale  # (B_r, d), stays on chip
            acc = q.new_zeros(qi.shape[0], v.shape[-1])  # (B_r, d_v) on chip
            mi, li = q.new_full((qi.shape[0],), -math.inf), q.new_zeros(qi.shape[0])
            for j0 in range(0, m_len, block_k):
                kj, vj = read("k", k, j0, j0 + block_k), read("v", v, j0, j0 + block_k)
                acc, mi, li = tile_update(acc, mi, li, qi @ kj.T, vj)  # (B_r, B_c) scores
            o[i0 : i0 + block_q] = acc / li.unsqueeze(-1)  # written once
            counts["o_write"] += acc.numel()
        return o, counts
    m_hbm, l_hbm = q.new_full((n,), -math.inf), q.new_zeros(n)  # (N,) each, in HBM
    counts["o_write"] += o.numel()  # O = 0 written to HBM first
    for j0 in range(0, m_len, block_k):
        kj, vj = read("k", k, j0, j0 + block_k), read("v", v, j0, j0 + block_k)  # stay on chip
        for i0 in range(0, n, block_q):
            qi, oi = read("q", q, i0, i0 + block_q), read("o", o, i0, i0 + block_q)
            mi, li = m_hbm[i0 : i0 + block_q], l_hbm[i0 : i0 + block_q]
            s = qi @ kj.T * scale  # (B_r, B_c)
            m_t = s.amax(-1)  # (B_r,) this tile's max
            p_t = torch.exp(s - m_t.unsqueeze(-1))  # (B_r, B_c)
            m_new = torch.maximum(mi, m_t)
            a, b = torch.exp(mi - m_new), torch.exp(m_t - m_new)  # rescale old, new
            l_new = a * li + b * p_t.sum(-1)
            o_new = ((li * a).unsqueeze(-1) * oi + b.unsqueeze(-1) * (p_t @ vj)) / l_new.unsqueeze(
                -1
            )
            o[i0 : i0 + block_q], m_hbm[i0 : i0 + block_q], l_hbm[i0 : i0 + block_q] = (
                o_new,
                m_new,
                l_new,
            )
            counts["o_write"] += o_new.numel()
    return o, counts


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_sizes(**sizes: Any) -> None:
    for name, value in sizes.items():
        check_int(value, name, low=1)


def _check_loop_order(q: Any, k: Any, v: Any, block_q: Any, block_k: Any, order: Any) -> None:
    _check_qkv(q, k, v)
    if q.ndim != 2 or k.ndim != 2 or v.ndim != 2:
        raise ValueError(
            f"loop_order_forward takes one head: q (N, d), k and v (M, d); got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}: pass q[0, 0] etc. for batch 0, head 0."
        )
    _check_sizes(block_q=block_q, block_k=block_k)
    check_choice(order, "order", ORDERS)
