"""Planted wrong answers to notebook 08's exercises must be rejected by the checker."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labkit import attention, checks
from solutions.n08_flash_attention import backward_tile, hbm_traffic, online_softmax, tile_update


def softmax_without_max(x, block_size):  # overflows for large x
    e = torch.exp(x)
    return e / e.sum(-1, keepdim=True)


def softmax_torch(x, block_size):  # issue 19: the right numbers, but not the algorithm
    return torch.softmax(x, dim=-1)


def softmax_two_pass(x, block_size):  # issue 19: the safe softmax, max first, then the sum
    m = x.amax(dim=-1, keepdim=True)
    e = torch.exp(x - m)
    return e / e.sum(dim=-1, keepdim=True)


def softmax_two_pass_blockwise(x, block_size):  # both passes in blocks: still two passes
    m = torch.full(x.shape[:-1], float("-inf"))
    for j in range(0, x.shape[-1], block_size):
        m = torch.maximum(m, x[..., j : j + block_size].amax(-1))
    shift = torch.nan_to_num(m, neginf=0.0)
    total = torch.zeros(x.shape[:-1])
    for j in range(0, x.shape[-1], block_size):
        total = total + torch.exp(x[..., j : j + block_size] - shift[..., None]).sum(-1)
    return torch.exp(x - shift[..., None]) / total[..., None]


def softmax_two_pass_elementwise(x, block_size):  # a max loop, then a sum loop (no reductions)
    m = torch.full(x.shape[:-1], float("-inf"))
    for j in range(x.shape[-1]):
        m = torch.maximum(m, x[..., j])
    shift = torch.nan_to_num(m, neginf=0.0)
    total = torch.zeros(x.shape[:-1])
    for j in range(x.shape[-1]):
        total = total + torch.exp(x[..., j] - shift)
    return torch.exp(x - shift[..., None]) / total[..., None]


def softmax_max_pass_then_stored_exp(x, block_size):  # max in blocks; exp stored, summed later
    m = torch.full(x.shape[:-1], float("-inf"))
    for block in x.split(block_size, dim=-1):
        m = torch.maximum(m, block.amax(-1))
    shift = torch.nan_to_num(m, neginf=0.0)
    e = torch.cat([torch.exp(b - shift[..., None]) for b in x.split(block_size, dim=-1)], -1)
    return e / e.sum(-1, keepdim=True)


def softmax_via_numpy(x, block_size):  # leaves torch: the checker cannot see the passes
    a = x.numpy()
    e = np.exp(a - a.max(-1, keepdims=True))
    return torch.from_numpy(e / e.sum(-1, keepdims=True))


def online_no_rescale(x, block_size):  # issue 19: running max, but the sum is never rescaled
    m = torch.full(x.shape[:-1], float("-inf"))
    total = torch.zeros(x.shape[:-1])
    for j in range(0, x.shape[-1], block_size):
        block = x[..., j : j + block_size]
        m = torch.maximum(m, block.amax(-1))
        total = total + torch.exp(block - torch.nan_to_num(m, neginf=0.0)[..., None]).sum(-1)
    return torch.exp(x - m[..., None]) / total[..., None]


def online_first_value_as_max(x, block_size):  # uses x[0] instead of the running max
    m = x[..., :1]
    e = torch.exp(x - m)
    return e / e.sum(-1, keepdim=True)


def online_wrong_axis(x, block_size):
    if x.ndim == 1:
        return online_softmax(x, block_size)
    return online_softmax(x.transpose(0, -1), block_size).transpose(0, -1)


def online_global_max(x, block_size):  # issue 13: one running max for the whole tensor
    m = torch.tensor(float("-inf"))
    total = torch.zeros(x.shape[:-1])
    for j in range(x.shape[-1]):  # one pass, rescaled, but the max is over every row so far
        new_m = torch.maximum(m, x[..., j].max())
        shift = torch.nan_to_num(new_m, neginf=0.0)
        total = total * torch.exp(m - shift) + torch.exp(x[..., j] - shift)
        m = new_m
    return torch.exp(x - m) / total.unsqueeze(-1)


def online_no_inf_guard(x, block_size):  # -inf - (-inf) = nan when a first block is all masked
    m = torch.full(x.shape[:-1], float("-inf"))
    total = torch.zeros(x.shape[:-1])
    for j in range(0, x.shape[-1], block_size):
        block = x[..., j : j + block_size]
        new_m = torch.maximum(m, block.amax(-1))
        total = total * torch.exp(m - new_m) + torch.exp(block - new_m[..., None]).sum(-1)
        m = new_m
    return torch.exp(x - m.unsqueeze(-1)) / total.unsqueeze(-1)


def online_flattens_rows(x, block_size):  # one softmax over all elements of the tensor
    return online_softmax(x.reshape(-1), block_size).reshape(x.shape)


def online_rescales_wrong_way(x, block_size):  # exp(m_new - m) instead of exp(m - m_new)
    m = torch.full(x.shape[:-1], float("-inf"))
    total = torch.zeros(x.shape[:-1])
    for j in range(x.shape[-1]):
        new_m = torch.maximum(m, x[..., j])
        shift = torch.nan_to_num(new_m, neginf=0.0)
        factor = torch.nan_to_num(torch.exp(shift - m), posinf=0.0)
        total = total * factor + torch.exp(x[..., j] - shift)
        m = new_m
    return torch.exp(x - m.unsqueeze(-1)) / total.unsqueeze(-1)


def online_in_place(x, block_size):  # right numbers, but overwrites the caller's x
    y = online_softmax(x.clone(), block_size)
    x.zero_()
    return y


# correct answers written other ways: the checker must accept each of them
def ok_element_by_element(x, block_size):  # block_size 1, whatever is asked: still one pass
    m = torch.full(x.shape[:-1], float("-inf"))
    total = torch.zeros(x.shape[:-1])
    for j in range(x.shape[-1]):
        new_m = torch.maximum(m, x[..., j])
        shift = torch.nan_to_num(new_m, neginf=0.0)
        total = total * torch.exp(m - shift) + torch.exp(x[..., j] - shift)
        m = new_m
    return torch.exp(x - m.unsqueeze(-1)) / total.unsqueeze(-1)


def ok_split_and_cat(x, block_size):  # x.split once, the output block by block
    m, total = x.new_full(x.shape[:-1], float("-inf")), x.new_zeros(x.shape[:-1])
    blocks = x.split(block_size, dim=-1)
    for b in blocks:
        new_m = torch.maximum(m, b.max(dim=-1).values)
        shift = torch.where(torch.isinf(new_m), torch.zeros_like(new_m), new_m)
        total = total * torch.exp(m - shift) + torch.exp(b - shift[..., None]).sum(-1)
        m = new_m
    return torch.cat([torch.exp(b - m[..., None]) / total[..., None] for b in blocks], dim=-1)


def ok_log_space(x, block_size):  # a running log-sum-exp instead of (m, l)
    lse = torch.full(x.shape[:-1], float("-inf"))
    for j in range(0, x.shape[-1], block_size):
        lse = torch.logaddexp(lse, torch.logsumexp(x[..., j : j + block_size], dim=-1))
    return torch.exp(x - lse[..., None])


def ok_in_place_statistics(x, block_size):  # *= and += on its own accumulators, output filled in
    x = x.float()
    m, total = torch.full(x.shape[:-1], float("-inf")), torch.zeros(x.shape[:-1])
    for j in range(0, x.shape[-1], block_size):
        b = x[..., j : j + block_size]
        new_m = torch.maximum(m, b.amax(-1))
        shift = new_m.nan_to_num(neginf=0.0)
        total *= torch.exp(m - shift)
        total += torch.exp(b - shift.unsqueeze(-1)).sum(-1)
        m = new_m
    y = torch.empty_like(x)
    for j in range(0, x.shape[-1], block_size):
        y[..., j : j + block_size] = (
            torch.exp(x[..., j : j + block_size] - m[..., None]) / total[..., None]
        )
    return y


def tile_no_inf_guard(o, m, l, s, v):  # noqa: E741 (old worked solution: nan if fully masked)
    m_new = torch.maximum(m, s.amax(-1))
    alpha = torch.exp(m - m_new)
    p = torch.exp(s - m_new[..., None])
    return alpha[..., None] * o + p @ v, m_new, alpha * l + p.sum(-1)


def tile_returns_old_max(o, m, l, s, v):  # noqa: E741
    o_new, _, l_new = tile_update(o, m, l, s, v)
    return o_new, m, l_new


def tile_tile_max_only(o, m, l, s, v):  # noqa: E741 (forgets the running max: uses the tile's)
    m_tile = s.amax(-1)
    shift = torch.nan_to_num(m_tile, neginf=0.0)
    alpha = torch.nan_to_num(torch.exp(m - shift), nan=0.0)
    p = torch.exp(s - shift[..., None])
    return alpha[..., None] * o + p @ v, m_tile, alpha * l + p.sum(-1)


def tile_in_place(o, m, l, s, v):  # noqa: E741 (updates the caller's o and l with *=, +=)
    m_new = torch.maximum(m, s.amax(-1))
    shift = torch.nan_to_num(m_new, neginf=0.0)
    alpha = torch.exp(m - shift)
    p = torch.exp(s - shift[..., None])
    o *= alpha[..., None]
    o += p @ v
    l *= alpha  # noqa: E741
    l += p.sum(-1)  # noqa: E741
    return o, m_new, l


def tile_no_rescale_o(o, m, l, s, v):  # noqa: E741
    o_new, m_new, l_new = tile_update(o, m, l, s, v)
    alpha = torch.exp(m - m_new)
    return o_new + (1 - alpha[..., None]) * o, m_new, l_new


def tile_no_rescale_l(o, m, l, s, v):  # noqa: E741
    o_new, m_new, _ = tile_update(o, m, l, s, v)
    return o_new, m_new, l + torch.exp(s - m_new[..., None]).sum(-1)


def tile_old_max(o, m, l, s, v):  # noqa: E741 (exponentiates with the old max)
    m_new = torch.maximum(m, s.amax(-1))
    ref = torch.nan_to_num(m, neginf=0.0)
    p = torch.exp(s - ref[..., None])
    return o + p @ v, m_new, l + p.sum(-1)


def tile_normalises_early(o, m, l, s, v):  # noqa: E741
    o_new, m_new, l_new = tile_update(o, m, l, s, v)
    return o_new / l_new[..., None], m_new, l_new


@pytest.mark.parametrize(
    "wrong",
    [
        softmax_without_max,
        softmax_torch,
        softmax_two_pass,
        softmax_two_pass_blockwise,
        softmax_two_pass_elementwise,
        softmax_max_pass_then_stored_exp,
        softmax_via_numpy,
        online_no_rescale,
        online_first_value_as_max,
        online_wrong_axis,
        online_global_max,
        online_no_inf_guard,
        online_flattens_rows,
        online_rescales_wrong_way,
        online_in_place,
    ],
)
def test_wrong_softmaxes_are_rejected(wrong):
    result = checks.check("attention.online_softmax", wrong)
    assert result.attempted and not result.passed, result.message


@pytest.mark.parametrize(
    "wrong",
    [
        tile_no_rescale_o,
        tile_no_rescale_l,
        tile_old_max,
        tile_normalises_early,
        tile_no_inf_guard,
        tile_returns_old_max,
        tile_tile_max_only,
        tile_in_place,
    ],
)
def test_wrong_tile_updates_are_rejected(wrong):
    result = checks.check("attention.tile_update", wrong)
    assert result.attempted and not result.passed, result.message


@pytest.mark.parametrize(
    ("wrong", "says"),
    [
        (softmax_torch, "calls torch's softmax"),
        (softmax_two_pass, "reduces 5 columns at once"),
        (softmax_two_pass_blockwise, "two-pass softmax"),
        (softmax_two_pass_elementwise, "two-pass softmax"),
        (online_no_rescale, "values differ"),
    ],
)
def test_issue_19_wrong_answers_are_named(wrong, says):
    """torch.softmax and the two-pass softmax give the right numbers: the message says why not."""
    x = torch.randn(3, 7)
    assert torch.allclose(wrong(x, 2), torch.softmax(x, -1), atol=1e-6) == (
        wrong is not online_no_rescale
    )
    result = checks.check("attention.online_softmax", wrong)
    assert not result.passed and says in result.message, result.message


@pytest.mark.parametrize(
    "right", [ok_element_by_element, ok_split_and_cat, ok_log_space, ok_in_place_statistics]
)
def test_one_pass_answers_written_other_ways_pass(right):
    result = checks.check("attention.online_softmax", right)
    assert result.passed, result.message


def test_global_max_gives_a_nan_row_on_the_issue_example():
    x = torch.tensor([[1000.0, 1001.0], [0.0, 1.0]])
    assert torch.isnan(online_global_max(x, 1)[1]).all()
    result = checks.check("attention.online_softmax", online_global_max)
    assert not result.passed and "one max per row" in result.message


def test_worked_solution_keeps_a_fully_masked_first_tile_at_zero():
    o, m, l = torch.zeros(2, 3), torch.full((2,), float("-inf")), torch.zeros(2)  # noqa: E741
    s = torch.tensor([[float("-inf")] * 4, [0.0, 1.0, float("-inf"), 2.0]])
    o2, m2, l2 = tile_update(o, m, l, s, torch.randn(4, 3))
    ref = attention.tile_update(o, m, l, s, torch.randn(4, 3))
    assert torch.equal(o2[0], torch.zeros(3)) and l2[0] == 0 and m2[0] == float("-inf")
    assert not torch.isnan(o2).any() and torch.equal(ref[0][0], o2[0])
    result = checks.check("attention.tile_update", tile_no_inf_guard)
    assert not result.passed and "fully masked" in result.message


def test_worked_solutions_pass():
    from solutions.n08_flash_attention import EXERCISES

    for key, fn in EXERCISES.items():
        result = checks.check(key, fn)
        assert result.passed, result.message


EXERCISE_KEYS = {
    "attention.online_softmax", "attention.tile_update", "attention.backward_tile",
    "attention.hbm_traffic",
}  # fmt: skip


@pytest.mark.parametrize("key", sorted(EXERCISE_KEYS))
def test_hints_nudge_and_formulas_give_the_key_line(key):
    ex = checks.lookup(key)
    assert ex.hint and ex.formula
    assert "torch." not in ex.hint and "=" not in ex.hint.replace("o=0, m=-inf, l=0", "")


# ---------------------------------------------------------------- backward_tile


def bwd_tile_local_delta(q, k, v, do, lse, delta, scale, mask=None):  # D from this tile alone
    s = q @ k.transpose(-2, -1) * scale
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    p = torch.exp(s - lse[..., None])
    dp = do @ v.transpose(-2, -1)
    local = (p * dp).sum(-1)  # rowsum(P ∘ dP) over THIS tile's keys only
    ds = p * (dp - local[..., None])
    return ds @ k * scale, ds.transpose(-2, -1) @ q * scale, p.transpose(-2, -1) @ do


def bwd_tile_softmax(q, k, v, do, lse, delta, scale, mask=None):  # softmax over the tile's keys
    s = q @ k.transpose(-2, -1) * scale
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    dp = do @ v.transpose(-2, -1)
    ds = p * (dp - delta[..., None])
    return ds @ k * scale, ds.transpose(-2, -1) @ q * scale, p.transpose(-2, -1) @ do


def bwd_tile_no_delta(q, k, v, do, lse, delta, scale, mask=None):  # dS = P ∘ dP
    return backward_tile(q, k, v, do, lse, torch.zeros_like(delta), scale, mask)


def bwd_tile_no_scale(q, k, v, do, lse, delta, scale, mask=None):  # forgets the chain rule's scale
    dq, dk, dv = backward_tile(q, k, v, do, lse, delta, scale, mask)
    return dq / scale, dk / scale, dv


def bwd_tile_ignores_mask(q, k, v, do, lse, delta, scale, mask=None):
    return backward_tile(q, k, v, do, lse, delta, scale, None)


def bwd_tile_no_transpose(q, k, v, do, lse, delta, scale, mask=None):  # dK = dS q (shapes!)
    s = q @ k.transpose(-2, -1) * scale
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    p = torch.exp(s - lse[..., None])
    ds = p * (do @ v.transpose(-2, -1) - delta[..., None])
    return (
        ds @ k * scale,
        (ds @ q.transpose(-2, -1)).transpose(-2, -1)[..., : k.shape[-2], :] * scale,
        p.transpose(-2, -1) @ do,
    )


def bwd_tile_exp_over_exp(q, k, v, do, lse, delta, scale, mask=None):  # exp(s) / exp(lse)
    s = q @ k.transpose(-2, -1) * scale
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    p = torch.exp(s) / torch.exp(lse[..., None])  # inf / inf = nan for scores ~100
    ds = p * (do @ v.transpose(-2, -1) - delta[..., None])
    return ds @ k * scale, ds.transpose(-2, -1) @ q * scale, p.transpose(-2, -1) @ do


def bwd_tile_scale_in_exp_only(q, k, v, do, lse, delta, scale, mask=None):  # unscaled scores
    return backward_tile(q, k, v, do, lse, delta, 1.0, mask)


@pytest.mark.parametrize(
    "wrong",
    [
        bwd_tile_local_delta,
        bwd_tile_softmax,
        bwd_tile_no_delta,
        bwd_tile_no_scale,
        bwd_tile_ignores_mask,
        bwd_tile_no_transpose,
        bwd_tile_exp_over_exp,
        bwd_tile_scale_in_exp_only,
    ],
)
def test_wrong_backward_tiles_are_rejected(wrong):
    result = checks.check("attention.backward_tile", wrong)
    assert result.attempted and not result.passed, result.message


def test_backward_tiles_sum_to_autograd():
    """The exercise's tile function, summed over the tiles, is the gradient of attention."""
    g = torch.Generator().manual_seed(0)
    q, k, v, do = (torch.randn(6, 3, generator=g, dtype=torch.float64) for _ in range(4))
    qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
    o = torch.softmax(qq @ kk.T / 3**0.5, -1) @ vv
    (o * do).sum().backward()
    lse = torch.logsumexp(q @ k.T / 3**0.5, -1)
    delta = (do * o.detach()).sum(-1)
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    for j in (0, 2, 4):  # three key tiles of two
        a, b, c = backward_tile(q, k[j : j + 2], v[j : j + 2], do, lse, delta, 3**-0.5)
        dq, dk[j : j + 2], dv[j : j + 2] = dq + a, b, c
    for got, want in ((dq, qq.grad), (dk, kk.grad), (dv, vv.grad)):
        assert torch.allclose(got, want, atol=1e-12)


# ---------------------------------------------------------------- hbm_traffic


def hbm_swapped_blocks(n, d, sram_elements, order="fa2"):  # B_r and B_c the other way round
    out = hbm_traffic(n, d, sram_elements, order)
    br, bc = out["B_c"], out["B_r"]
    tr, tc, nd = -(-n // br), -(-n // bc), n * d
    if order == "fa2":
        c = {"q_read": nd, "k_read": tr * nd, "v_read": tr * nd, "o_read": 0, "o_write": nd}
    else:
        c = {
            "q_read": tc * nd,
            "k_read": nd,
            "v_read": nd,
            "o_read": tc * nd,
            "o_write": (tc + 1) * nd,
        }
    return {**c, "total": sum(c.values()), "B_r": br, "B_c": bc}


def hbm_floor_blocks(n, d, sram_elements, order="fa2"):  # floor(M / 4d) instead of ceil
    out = hbm_traffic(n, d, sram_elements - (sram_elements % (4 * d)) or 4 * d, order)
    return out


def hbm_fa2_reads_kv_once(n, d, sram_elements, order="fa2"):  # K, V "stay" - they do not
    out = hbm_traffic(n, d, sram_elements, order)
    if order == "fa2":
        out = {**out, "k_read": n * d, "v_read": n * d}
        out["total"] = sum(out[k] for k in ("q_read", "k_read", "v_read", "o_read", "o_write"))
    return out


def hbm_fa1_no_o_reads(n, d, sram_elements, order="fa2"):  # FA-1 rescales O without reading it
    out = hbm_traffic(n, d, sram_elements, order)
    if order == "fa1":
        out = {**out, "o_read": 0}
        out["total"] = sum(out[k] for k in ("q_read", "k_read", "v_read", "o_read", "o_write"))
    return out


def hbm_fa1_no_initial_write(n, d, sram_elements, order="fa2"):  # forgets O = 0 written first
    out = hbm_traffic(n, d, sram_elements, order)
    if order == "fa1":
        out = {**out, "o_write": out["o_write"] - n * d, "total": out["total"] - n * d}
    return out


def hbm_bytes(n, d, sram_elements, order="fa2"):  # fp16 bytes, not elements
    out = hbm_traffic(n, d, sram_elements, order)
    return {k: v * 2 if k not in ("B_r", "B_c") else v for k, v in out.items()}


def hbm_fractional_blocks(n, d, sram_elements, order="fa2"):  # N / B instead of ceil(N / B)
    out = hbm_traffic(n, d, sram_elements, order)
    br, bc, nd = out["B_r"], out["B_c"], n * d
    if order == "fa2":
        c = {"q_read": nd, "k_read": n / br * nd, "v_read": n / br * nd, "o_read": 0, "o_write": nd}
    else:
        c = {
            "q_read": n / bc * nd,
            "k_read": nd,
            "v_read": nd,
            "o_read": n / bc * nd,
            "o_write": (n / bc + 1) * nd,
        }
    return {**c, "total": sum(c.values()), "B_r": br, "B_c": bc}


def hbm_orders_swapped(n, d, sram_elements, order="fa2"):
    return hbm_traffic(n, d, sram_elements, "fa1" if order == "fa2" else "fa2")


@pytest.mark.parametrize(
    "wrong",
    [
        hbm_swapped_blocks,
        hbm_floor_blocks,
        hbm_fa2_reads_kv_once,
        hbm_fa1_no_o_reads,
        hbm_fa1_no_initial_write,
        hbm_bytes,
        hbm_fractional_blocks,
        hbm_orders_swapped,
    ],
)
def test_wrong_hbm_counts_are_rejected(wrong):
    result = checks.check("attention.hbm_traffic", wrong)
    assert result.attempted and not result.passed, result.message


def test_floor_wrong_answer_really_rounds_down():
    """The planted floor answer differs from the solution only through B_c = floor(M / 4d)."""
    assert hbm_floor_blocks(781, 64, 100_000, "fa1")["B_c"] == 390
    assert hbm_traffic(781, 64, 100_000, "fa1")["B_c"] == 391
