"""Worked solutions of notebook 08 (FlashAttention), written as a learner would."""

import torch


def online_softmax(x: torch.Tensor, block_size: int) -> torch.Tensor:
    m = torch.full(x.shape[:-1], float("-inf"))  # running max per row
    total = torch.zeros(x.shape[:-1])  # running sum of exp(x - m)
    for j in range(0, x.shape[-1], block_size):  # ONE pass over x for both statistics
        block = x[..., j : j + block_size]
        new_m = torch.maximum(m, block.amax(dim=-1))
        # while a row has seen only -inf, shift by 0 instead (-inf - -inf would be nan)
        shift = torch.nan_to_num(new_m, neginf=0.0)
        # rescale the old sum to the new max, then add this block's terms
        total = total * torch.exp(m - shift) + torch.exp(block - shift[..., None]).sum(dim=-1)
        m = new_m
    return torch.exp(x - m[..., None]) / total[..., None]  # the second read: the output


def tile_update(o, m, l, s, v):  # noqa: E741
    m_new = torch.maximum(m, s.max(dim=-1).values)
    # a row that has seen only -inf (fully masked so far) keeps m_new = -inf: shift by 0
    # there, or exp(-inf - -inf) = exp(nan) poisons o and l
    shift = torch.nan_to_num(m_new, neginf=0.0)
    correction = torch.exp(m - shift)  # how much the old accumulators shrink
    p = torch.exp(s - shift[..., None])
    l_new = correction * l + p.sum(dim=-1)
    o_new = correction[..., None] * o + p @ v
    return o_new, m_new, l_new


def backward_tile(q, k, v, do, lse, delta, scale, mask=None):
    s = q @ k.transpose(-2, -1) * scale  # recompute this tile's scores
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))  # masked keys get probability 0
    p = torch.exp(s - lse[..., None])  # the softmax of the WHOLE row, from its log-sum-exp
    dv = p.transpose(-2, -1) @ do
    dp = do @ v.transpose(-2, -1)
    ds = p * (dp - delta[..., None])  # delta = rowsum(dO * O): the whole row's, given
    dq = ds @ k * scale  # the scores were q kᵀ · scale: the chain rule brings the scale
    dk = ds.transpose(-2, -1) @ q * scale
    return dq, dk, dv


def hbm_traffic(n, d, sram_elements, order="fa2"):
    bc = -(-sram_elements // (4 * d))  # ceil(M / 4d): Q_i, K_j, V_j, O_i must fit in SRAM
    br = min(bc, d)
    tr, tc = -(-n // br), -(-n // bc)  # number of query blocks, of key blocks (rounded up)
    nd = n * d
    if order == "fa2":  # Q_i stays on chip; K and V are re-read for every query block
        counts = {"q_read": nd, "k_read": tr * nd, "v_read": tr * nd, "o_read": 0, "o_write": nd}
    else:  # FA-1: K_j, V_j stay; Q and O are re-read (and O re-written) at every key block
        counts = {
            "q_read": tc * nd,
            "k_read": nd,
            "v_read": nd,
            "o_read": tc * nd,
            "o_write": (tc + 1) * nd,  # + the O = 0 written first
        }
    return {**counts, "total": sum(counts.values()), "B_r": br, "B_c": bc}


EXERCISES = {
    "attention.online_softmax": online_softmax,
    "attention.tile_update": tile_update,
    "attention.backward_tile": backward_tile,
    "attention.hbm_traffic": hbm_traffic,
}
