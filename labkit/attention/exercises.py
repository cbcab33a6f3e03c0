"""Exercises of notebook 08: online softmax; one tile update of FlashAttention's accumulator."""

from __future__ import annotations

import torch

from labkit import attention
from labkit.core.checks import Case, Exercise, close

INF = float("inf")


def _x(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def _softmax_cases() -> list[Case]:
    return [
        Case((torch.tensor([1.0, 2.0, 3.0]),), label="x = [1, 2, 3]"),
        Case((_x(4, 9, seed=0),), label="a (4, 9) batch of rows"),
        Case(
            (torch.tensor([1000.0, 1001.0, 999.0]),),
            label="large values (exp overflows without the max)",
        ),
        Case((torch.tensor([5.0, 1.0, 0.0, -3.0]),), label="largest value first"),
        Case(
            (torch.tensor([-3.0, 0.0, 1.0, 5.0]),),
            label="increasing values (the max changes at every step)",
        ),
        Case((torch.tensor([[-INF, 2.0, 0.5, -INF]]),), label="masked entries (-inf)"),
        Case((_x(2, 3, 17, seed=1, scale=50.0),), label="3-D input, values up to ~150"),
        Case(
            (torch.tensor([[1000.0, 1001.0], [0.0, 1.0]]),),
            label="rows on very different scales ([[1000, 1001], [0, 1]]: one max per row)",
        ),
        Case(
            (torch.tensor([[0.0, 1.0, 2.0], [3.0, 2.0, 1.0]]),),
            label="a (2, 3) batch (softmax over the LAST dim)",
        ),
    ]


def _state(rows: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A plausible running state (o, m, l) after some earlier tiles."""
    o = _x(rows, d, seed=seed)
    m = _x(rows, seed=seed + 1)
    l = torch.rand(rows, generator=torch.Generator().manual_seed(seed + 2)) + 0.5  # noqa: E741
    return o, m, l


def _tile_cases() -> list[Case]:
    first = (torch.zeros(3, 2), torch.full((3,), -INF), torch.zeros(3))
    o, m, l = _state(3, 2, 10)  # noqa: E741
    bigger = _x(3, 4, seed=20) + 5.0  # this tile's scores exceed the running max
    masked = _x(3, 4, seed=21).masked_fill(torch.tensor([False, True, True, False]), -INF)
    # causal masking: the first key tile can be entirely in the future for some query rows
    row_masked = _x(3, 4, seed=22).masked_fill(torch.tensor([[False], [True], [False]]), -INF)
    return [
        Case(
            (*first, _x(3, 4, seed=0), _x(4, 2, seed=1)), label="the first tile (o=0, m=-inf, l=0)"
        ),
        Case(
            (o, m, l, _x(3, 4, seed=2) - 5.0, _x(4, 2, seed=3)), label="a tile with smaller scores"
        ),
        Case(
            (o, m, l, bigger, _x(4, 2, seed=4)), label="a tile whose scores raise the running max"
        ),
        Case((o, m, l, masked, _x(4, 2, seed=5)), label="a tile with masked (-inf) columns"),
        Case((*_state(5, 3, 30), _x(5, 1, seed=6), _x(1, 3, seed=7)), label="a tile one key wide"),
        Case(
            (*first, row_masked, _x(4, 2, seed=8)),
            label="the first tile with row 1 fully masked (it must stay o=0, m=-inf, l=0, no nan)",
        ),
        Case(
            (*_state(2, 3, 40), _x(2, 4, seed=9) + 100.0, _x(4, 3, seed=11)),
            label="scores 100 above the running max (exp would overflow without m_new)",
        ),
    ]


EXERCISES = {
    "attention.online_softmax": Exercise(
        reference=attention.online_softmax,
        cases=_softmax_cases,
        compare=close(atol=1e-6, rtol=1e-5),
        hint="Each row needs its OWN running max and running sum (shape x.shape[:-1]). When the "
        "max of a row grows, the sum collected so far was computed against the old max: it must "
        "be corrected before you add the new term. Try a row that starts with -inf.",
        formula="m_new = max(m, x_j);  l = l·exp(m − m_new) + exp(x_j − m_new);  m = m_new;  "
        "result exp(x − m[..., None]) / l[..., None]. While m_new is −inf, subtract 0 instead "
        "(−inf − (−inf) is nan).",
    ),
    "attention.tile_update": Exercise(
        reference=attention.tile_update,
        cases=_tile_cases,
        compare=close(atol=1e-5, rtol=1e-4),
        hint="Find the new running max per row first; everything accumulated so far (o AND l) was "
        "computed against the old max and must shrink by the same factor. Do not divide by l "
        "here. A row whose scores are all -inf so far must stay o=0, m=-inf, l=0.",
        formula="m_new = max(m, s.amax(-1));  m_safe = 0 where m_new is −inf else m_new;  "
        "α = exp(m − m_safe);  p = exp(s − m_safe[..., None]);  "
        "return (α[..., None]·o + p @ v, m_new, α·l + p.sum(-1)).",
    ),
}
