"""Worked solutions of notebook 08 (FlashAttention), written as a learner would."""

import torch


def online_softmax(x: torch.Tensor) -> torch.Tensor:
    m = torch.full(x.shape[:-1], float("-inf"))  # running max per row
    total = torch.zeros(x.shape[:-1])  # running sum of exp(x - m)
    for j in range(x.shape[-1]):
        xj = x[..., j]
        new_m = torch.maximum(m, xj)
        # while a row has seen only -inf, shift by 0 instead (-inf - -inf would be nan)
        shift = torch.nan_to_num(new_m, neginf=0.0)
        # rescale the old sum to the new max, then add the new term
        total = total * torch.exp(m - shift) + torch.exp(xj - shift)
        m = new_m
    return torch.exp(x - m.unsqueeze(-1)) / total.unsqueeze(-1)


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


EXERCISES = {"attention.online_softmax": online_softmax, "attention.tile_update": tile_update}
