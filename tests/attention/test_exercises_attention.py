"""Planted wrong answers to notebook 08's exercises must be rejected by the checker."""

from __future__ import annotations

import pytest
import torch

from labkit import attention, checks
from solutions.n08_flash_attention import online_softmax, tile_update


def softmax_without_max(x):  # overflows for large x
    e = torch.exp(x)
    return e / e.sum(-1, keepdim=True)


def online_no_rescale(x):  # forgets to rescale the running sum when the max grows
    m = torch.full(x.shape[:-1], float("-inf"))
    total = torch.zeros(x.shape[:-1])
    for j in range(x.shape[-1]):
        m = torch.maximum(m, x[..., j])
        total = total + torch.exp(x[..., j] - torch.nan_to_num(m, neginf=0.0))
    return torch.exp(x - m.unsqueeze(-1)) / total.unsqueeze(-1)


def online_first_value_as_max(x):  # uses x[0] instead of the running max
    m = x[..., :1]
    e = torch.exp(x - m)
    return e / e.sum(-1, keepdim=True)


def online_wrong_axis(x):
    return online_softmax(x.transpose(0, -1)).transpose(0, -1) if x.ndim > 1 else online_softmax(x)


def online_global_max(x):  # issue 13: one max for the whole tensor, not one per row
    m = x.max()
    total = torch.zeros(x.shape[:-1])
    for j in range(x.shape[-1]):
        total = total + torch.exp(x[..., j] - m)
    return torch.exp(x - m) / total.unsqueeze(-1)


def online_no_inf_guard(x):  # -inf - (-inf) = nan when a row starts with a masked entry
    m = torch.full(x.shape[:-1], float("-inf"))
    total = torch.zeros(x.shape[:-1])
    for j in range(x.shape[-1]):
        new_m = torch.maximum(m, x[..., j])
        total = total * torch.exp(m - new_m) + torch.exp(x[..., j] - new_m)
        m = new_m
    return torch.exp(x - m.unsqueeze(-1)) / total.unsqueeze(-1)


def online_flattens_rows(x):  # one softmax over all elements of the tensor
    return online_softmax(x.reshape(-1)).reshape(x.shape)


def online_rescales_wrong_way(x):  # exp(m_new - m) instead of exp(m - m_new)
    m = torch.full(x.shape[:-1], float("-inf"))
    total = torch.zeros(x.shape[:-1])
    for j in range(x.shape[-1]):
        new_m = torch.maximum(m, x[..., j])
        shift = torch.nan_to_num(new_m, neginf=0.0)
        factor = torch.nan_to_num(torch.exp(shift - m), posinf=0.0)
        total = total * factor + torch.exp(x[..., j] - shift)
        m = new_m
    return torch.exp(x - m.unsqueeze(-1)) / total.unsqueeze(-1)


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
        online_no_rescale,
        online_first_value_as_max,
        online_wrong_axis,
        online_global_max,
        online_no_inf_guard,
        online_flattens_rows,
        online_rescales_wrong_way,
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


def test_plain_safe_softmax_passes_online_checker():
    """The checker tests the values, so a correct (if not streaming) softmax passes too."""
    result = checks.check("attention.online_softmax", lambda x: torch.softmax(x, dim=-1))
    assert result.passed, result.message


def test_global_max_gives_a_nan_row_on_the_issue_example():
    x = torch.tensor([[1000.0, 1001.0], [0.0, 1.0]])
    assert torch.isnan(online_global_max(x)[1]).all()
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


@pytest.mark.parametrize("key", ["attention.online_softmax", "attention.tile_update"])
def test_hints_nudge_and_formulas_give_the_key_line(key):
    ex = checks.lookup(key)
    assert ex.hint and ex.formula
    assert "torch." not in ex.hint and "=" not in ex.hint.replace("o=0, m=-inf, l=0", "")
