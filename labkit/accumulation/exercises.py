"""Exercises of notebook 02 (gradient accumulation), checked by gradient equality."""

from __future__ import annotations

import math

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


class _SpyScaler(torch.amp.GradScaler):
    """A real CPU GradScaler that writes down what the exercise asks of it.

    ``log``: ("scale", 0.0) for each scale() call, ("unscale_", norm) for each unscale_() call,
    with the global L2 norm of the optimizer's gradients just before they are unscaled: it is
    S x (true norm) when nothing touched them first, max_norm when they were clipped first.
    """

    def __init__(self, init_scale: float) -> None:
        super().__init__("cpu", init_scale=init_scale)
        self.log: list[tuple[str, float]] = []

    def scale(self, outputs):  # noqa: ANN001, ANN201 (GradScaler's own signature)
        self.log.append(("scale", 0.0))
        return super().scale(outputs)

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm = (
            float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
            if grads
            else 0.0
        )
        self.log.append(("unscale_", norm))
        super().unscale_(optimizer)


# (model seed, data (n, seed), micro-batch, max_norm, loss scale, label); every scale != 1, so
# a function that skips the scaler, or unscales at the wrong time, is seen in the log or the
# numbers
_CLIP_CASES = [
    (4, (32, 5), 8, 0.05, 2.0**12, "max_norm 0.05 (clipping active), S = 2^12"),
    (5, (20, 6), 8, 100.0, 2.0**12, "max_norm 100 (no clipping), uneven micro-batches, S = 2^12"),
    (6, (24, 7), 5, 0.5, 2.0**16, "max_norm 0.5, S = 2^16, uneven micro-batches"),
]


def _check_clip_accumulated(fn) -> str | None:  # noqa: ANN001 (the learner's function)
    """Gradients equal to the reference's, AND the scaler used as the exercise asks: the loss
    went through scaler.scale, scaler.unscale_ ran exactly once, on gradients nothing had
    clipped yet (their norm then equals the reference's: S x the true norm)."""
    compare = close(atol=1e-6, rtol=1e-4)
    for seed, (n, data_seed), mb, max_norm, scale, label in _CLIP_CASES:
        x, y = _data(n, data_seed)
        ref_scaler, spy = _SpyScaler(scale), _SpyScaler(scale)
        expected = clip_accumulated(_StaleGradMLP(seed), x, y, mb, max_norm, ref_scaler)
        got = fn(_StaleGradMLP(seed), x.clone(), y.clone(), mb, max_norm, spy)
        if got is None:
            return f"returned None on {label} - did you forget `return`?"
        msg = compare(got, expected)
        if msg:
            return f"wrong on {label}: {msg} (the true gradient, clipped to max_norm, is expected)"
        unscaled = [norm for op, norm in spy.log if op == "unscale_"]
        ref_norm = next(norm for op, norm in ref_scaler.log if op == "unscale_")
        if not any(op == "scale" for op, _ in spy.log):
            return (
                f"on {label} your function never called scaler.scale(loss): with fp16 the small "
                "gradients underflow without it. Scale each micro-batch's loss before backward()."
            )
        if not unscaled:
            return (
                f"on {label} your function never called scaler.unscale_(optimizer): clip and return "
                "the true gradients, unscaled by the scaler itself (divided by hand, "
                "scaler.step(optimizer) would unscale them a second time and skip its inf/NaN "
                "check)."
            )
        if len(unscaled) > 1:
            return f"on {label} scaler.unscale_ ran {len(unscaled)} times; once per step."
        if not math.isclose(unscaled[0], ref_norm, rel_tol=1e-4):
            return (
                f"on {label} the gradients had norm {unscaled[0]:.4g} when you called "
                f"scaler.unscale_, not the scaled norm {ref_norm:.4g}: something (clipping?) "
                "changed them first. Unscale first, then clip."
            )
    return None


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
        custom=_check_clip_accumulated,
        hint="Clipping compares the gradient's norm with max_norm: which gradient must it see, "
        "the one multiplied by the loss scale or the true one? Use the scaler you are given for "
        "both steps, and clip once, after the last micro-batch.",
        formula="zero_grad; for each micro-batch: scaler.scale(F.cross_entropy(model(xb), yb) "
        "* len(xb) / len(x)).backward(); then scaler.unscale_(opt) BEFORE "
        "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).",
    ),
}
