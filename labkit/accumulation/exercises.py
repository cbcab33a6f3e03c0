"""Exercises of notebook 02 (gradient accumulation), checked by gradient equality."""

from __future__ import annotations

import torch
from torch import nn

from labkit import accumulation
from labkit.core.checks import Case, Exercise, close


def accumulate_gradients(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, micro_batch_size: int
) -> list[torch.Tensor]:
    """Reference: cross-entropy gradients of the whole batch, accumulated over micro-batches."""
    return accumulation.accumulate_gradients(
        model, nn.functional.cross_entropy, x, y, micro_batch_size
    )


def clip_accumulated(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    micro_batch_size: int,
    max_norm: float,
    scaler: torch.amp.GradScaler,
) -> list[torch.Tensor]:
    """Reference: accumulate scaled losses, unscale, clip the true gradient to max_norm."""
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    model.zero_grad(set_to_none=True)
    for xb, yb in accumulation.micro_batches(x, y, micro_batch_size):
        loss = nn.functional.cross_entropy(model(xb), yb) * (len(xb) / len(x))
        scaler.scale(loss).backward()
    scaler.unscale_(opt)
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return accumulation.gradients(model)


class _StaleGradMLP(nn.Sequential):
    """A small MLP whose .grad already holds junk from an earlier step (zero it first!).

    Built from ``seed`` alone, and deep-copied by rebuilding, so every copy the checker makes
    carries the same weights and the same stale gradients (a plain deepcopy drops .grad).
    """

    def __init__(self, seed: int, width: int = 16) -> None:
        super().__init__(nn.Linear(8, width), nn.Tanh(), nn.Linear(width, 4))
        self.seed, self.width = seed, width
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.4)
                p.grad = torch.randn(p.shape, generator=gen)

    def __deepcopy__(self, memo: dict) -> _StaleGradMLP:
        return _StaleGradMLP(self.seed, self.width)


def _model_with_stale_grads(seed: int) -> nn.Module:
    return _StaleGradMLP(seed)


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=gen), torch.randint(0, 4, (n,), generator=gen)


def _accumulate_cases() -> list[Case]:
    return [
        Case((_model_with_stale_grads(0), *_data(32, 1), 8), label="32 examples, micro-batch 8"),
        Case(
            (_model_with_stale_grads(1), *_data(30, 2), 8),
            label="30 examples, micro-batch 8 (last micro-batch has 6)",
        ),
        Case((_model_with_stale_grads(2), *_data(7, 3), 1), label="micro-batch 1"),
        Case((_model_with_stale_grads(3), *_data(12, 4), 64), label="micro-batch > batch"),
    ]


def _clip_cases() -> list[Case]:
    def scaler() -> torch.amp.GradScaler:
        return torch.amp.GradScaler("cpu", init_scale=2.0**12)

    return [
        Case(
            (_model_with_stale_grads(4), *_data(32, 5), 8, 0.05, scaler()),
            label="max_norm 0.05 (clipping active)",
        ),
        Case(
            (_model_with_stale_grads(5), *_data(20, 6), 8, 100.0, scaler()),
            label="max_norm 100 (no clipping), uneven micro-batches",
        ),
    ]


EXERCISES = {
    "accumulation.accumulate_gradients": Exercise(
        reference=accumulate_gradients,
        cases=_accumulate_cases,
        compare=close(atol=1e-6, rtol=1e-4),
        hint="The big batch's loss is a mean over all N examples. What weight does one "
        "micro-batch's mean loss need so the weights add up to that mean - also when the last "
        "micro-batch is short? And what is in .grad before you start?",
        formula="model.zero_grad() once; for each micro-batch (xb, yb): "
        "(F.cross_entropy(model(xb), yb) * len(xb) / len(x)).backward(); "
        "return [p.grad.clone() for p in model.parameters()].",
    ),
    # Learner-only: no library function of this name; the lesson's clip_order_effect compares
    # clipping orders, this exercise writes the one right order (allow-listed in
    # tests/test_exercise_keys.py).
    "accumulation.clip_accumulated": Exercise(
        reference=clip_accumulated,
        cases=_clip_cases,
        compare=close(atol=1e-6, rtol=1e-4),
        hint="Clipping compares the gradient's norm with max_norm: which gradient must it see, "
        "the one multiplied by the loss scale or the true one? Clip once, after the last "
        "micro-batch.",
        formula="zero_grad; for each micro-batch: scaler.scale(F.cross_entropy(model(xb), yb) "
        "* len(xb) / len(x)).backward(); then scaler.unscale_(opt) BEFORE "
        "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).",
    ),
}
