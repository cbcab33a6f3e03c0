"""Exercises of notebook 08: online softmax; one tile update of FlashAttention's accumulator."""

from __future__ import annotations

import torch

from labkit import attention
from labkit.checks import Case, Exercise, close

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
    ]


EXERCISES = {
    "attention.online_softmax": Exercise(
        reference=attention.online_softmax,
        cases=_softmax_cases,
        compare=close(atol=1e-6, rtol=1e-5),
        hint="keep m (running max) and l (running sum of exp(x - m)); when a new max arrives, "
        "multiply l by exp(m_old - m_new) before adding exp(x_j - m_new); finally exp(x - m) / l. "
        "While a row has seen only -inf, m_new is -inf too: subtract 0 then, not -inf (nan).",
    ),
    "attention.tile_update": Exercise(
        reference=attention.tile_update,
        cases=_tile_cases,
        compare=close(atol=1e-5, rtol=1e-4),
        hint="m_new = max(m, s.amax(-1)); alpha = exp(m - m_new); p = exp(s - m_new[:, None]); "
        "return (alpha[:, None] * o + p @ v, m_new, alpha * l + p.sum(-1)).",
    ),
}
