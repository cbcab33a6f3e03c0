"""Planted wrong answers to notebook 08's exercises must be rejected by the checker."""

from __future__ import annotations

import pytest
import torch

from labkit import checks
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
    "wrong", [softmax_without_max, online_no_rescale, online_first_value_as_max, online_wrong_axis]
)
def test_wrong_softmaxes_are_rejected(wrong):
    result = checks.check("attention.online_softmax", wrong)
    assert result.attempted and not result.passed, result.message


@pytest.mark.parametrize(
    "wrong", [tile_no_rescale_o, tile_no_rescale_l, tile_old_max, tile_normalises_early]
)
def test_wrong_tile_updates_are_rejected(wrong):
    result = checks.check("attention.tile_update", wrong)
    assert result.attempted and not result.passed, result.message


def test_plain_safe_softmax_passes_online_checker():
    """The checker tests the values, so a correct (if not streaming) softmax passes too."""
    result = checks.check("attention.online_softmax", lambda x: torch.softmax(x, dim=-1))
    assert result.passed, result.message
