"""Exercises of notebook 03 (knowledge distillation): softened softmax and the KD loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from labkit import distill
from labkit.core.checks import Case, Exercise, close


def _logits(shape: tuple[int, ...], seed: int, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def _softmax_cases() -> list[Case]:
    return [
        Case((torch.tensor([2.0, 1.0, 0.1]), 1.0), label="1-D logits, T = 1"),
        Case((_logits((3, 5), 0), 4.0), label="a batch (3, 5), T = 4"),
        Case((_logits((4, 4), 1), 0.5), label="a square batch (4, 4), T = 0.5 (sharper)"),
        Case(
            (torch.tensor([[1000.0, 999.0, 990.0]]), 2.0),
            label="large logits [[1000, 999, 990]], T = 2 (exp overflows unless you subtract the max)",
        ),
        Case((torch.zeros(2, 6), 3.0), label="all-equal logits (uniform answer)"),
    ]


def _kd_case(
    n: int, c: int, seed: int, T: float, alpha: float, label: str, teacher_scale: float = 4.0
) -> Case:
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(n, c, generator=g) * 1.5
    teacher = torch.randn(n, c, generator=g) * teacher_scale
    labels = torch.randint(0, c, (n,), generator=g)
    return Case((student, teacher, labels, T, alpha), label=label)


def _kd_cases() -> list[Case]:
    return [
        _kd_case(8, 10, 0, 4.0, 0.9, "N=8, C=10, T=4, alpha=0.9"),
        _kd_case(6, 5, 1, 1.0, 1.0, "soft targets only: T=1, alpha=1"),
        _kd_case(5, 7, 2, 8.0, 0.3, "T=8, alpha=0.3 (mostly hard labels)"),
        _kd_case(4, 3, 3, 2.0, 0.0, "alpha=0: plain cross-entropy"),
        _kd_case(16, 10, 4, 2.0, 0.5, "N=16, C=10, T=2, alpha=0.5"),
    ]


def _check_kd(learner: Callable[..., Any]) -> str | None:
    """Value, gradient into the student, no gradient into the teacher, inputs unchanged.

    The loss is only useful if backward() reaches the student's logits with the right
    gradient: a loss computed on detached student logits has the right value and trains
    nothing. The teacher's logits must get no gradient (they are targets).
    """
    compare = close(atol=1e-5, rtol=1e-4)
    for case in _kd_cases():
        s0, t0, y, T, alpha = case.args
        s_ref = s0.clone().requires_grad_(True)
        expected = distill.distillation_loss(s_ref, t0.clone(), y.clone(), T, alpha)
        expected.backward()
        s = s0.clone().requires_grad_(True)
        t = t0.clone().requires_grad_(True)  # a live teacher: its gradient must stay empty
        y_in = y.clone()
        got = learner(s, t, y_in, T, alpha)
        label = case.label
        if got is None:
            return f"returned None on {label} - did you forget `return`?"
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            return f"on {label}: return the loss as a scalar tensor, got {type(got).__name__}"
        msg = compare(got, expected)
        if msg:
            return (
                f"wrong value on {label}: {msg}: expected {expected.item():.6g}, "
                f"got {got.detach().reshape(()).item():.6g}"
            )
        changed = [
            n
            for n, a, b in (
                ("student_logits", s, s0),
                ("teacher_logits", t, t0),
                ("labels", y_in, y),
            )
            if not torch.equal(a.detach(), b)
        ]
        if changed:
            return f"on {label} your function changed {', '.join(changed)} in place; work on copies"
        if not got.requires_grad:
            return (
                f"on {label} the loss has the right value but carries no gradient: backward() "
                "cannot reach the student. Detach the TEACHER's logits, never the student's"
            )
        got.reshape(()).backward()
        if s.grad is None or not torch.allclose(s.grad, s_ref.grad, atol=1e-6, rtol=1e-4):
            return (
                f"on {label} the value is right but the gradient reaching the student's logits "
                "is wrong: is one of the two terms computed on detached student logits?"
            )
        if t.grad is not None and t.grad.abs().max() > 0:
            return (
                f"on {label} a gradient flows into the teacher's logits: the teacher is a "
                "target, detach it (teacher_logits.detach())"
            )
    return None


EXERCISES = {
    "distill.softmax_t": Exercise(
        reference=distill.softmax_t,
        cases=_softmax_cases,
        compare=close(atol=1e-6, rtol=1e-5),
        hint="the temperature acts on the logits before the softmax, over the class dimension "
        "(the last one), and the function must survive logits of 1000.",
        formula="p = softmax(z / T) over dim=-1: torch.softmax(logits / T, dim=-1) (it subtracts "
        "the max itself, so large logits do not overflow); never change `logits` in place.",
    ),
    "distill.distillation_loss": Exercise(
        reference=distill.distillation_loss,
        cases=_kd_cases,
        custom=_check_kd,
        hint="two terms weighted by alpha: cross-entropy on the labels and the KL between the "
        "teacher's and the student's softened distributions; check which one F.kl_div expects "
        "as log-probabilities, which reduction divides by the batch size only, and what keeps "
        "the soft term's size independent of T. Only the teacher is detached.",
        formula="(1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * "
        "F.kl_div(F.log_softmax(s / T, -1), F.softmax(t.detach() / T, -1), reduction='batchmean')",
    ),
}
