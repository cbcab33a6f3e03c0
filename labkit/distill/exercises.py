"""Exercises of notebook 03 (knowledge distillation): softened softmax, the KD loss, RKD-D."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from labkit import distill
from labkit.core.checks import Case, Exercise, _describe, close
from labkit.distill import relational


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
        Case(
            (torch.tensor([[1000.0, 999.0], [0.0, -1.0]]), 1.0),
            label="rows of very different size [[1000, 999], [0, -1]], T = 1 (each row needs "
            "its OWN max: with the batch's max, row 2 underflows to 0/0)",
        ),
        Case(
            (torch.tensor([[-1000.0, -1003.0, -1001.0], [2.0, 1.0, 0.0]]), 1.0),
            label="large negative logits [[-1000, -1003, -1001], [2, 1, 0]], T = 1 "
            "(exp underflows to 0 unless each row is shifted by its own max)",
        ),
        Case(
            (torch.tensor([[2000.0, 1996.0, 1990.0], [4.0, 0.0, -8.0]]), 4.0),
            label="[[2000, 1996, 1990], [4, 0, -8]], T = 4 (the max of z / T, row by row)",
        ),
        Case((torch.zeros(2, 6), 3.0), label="all-equal logits (uniform answer)"),
    ]


# torch functions that do the max shift for you: the exercise is to write it
_HIDDEN_SHIFT = frozenset(
    {"softmax", "log_softmax", "_softmax", "softmin", "logsumexp"}
    | {"special_softmax", "special_log_softmax", "special_logsumexp"}
)


class _Calls(TorchFunctionMode):
    """Records the names of the torch functions called inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.names.add(getattr(func, "__name__", ""))
        return func(*args, **(kwargs or {}))


def _check_softmax(learner: Callable[..., Any]) -> str | None:
    """Values on every case (stability included), no torch softmax, logits left unchanged."""
    compare = close(atol=1e-6, rtol=1e-5)
    for case in _softmax_cases():
        logits, T = case.args
        expected = distill.softmax_t(logits, T)
        given = logits.clone()
        with _Calls() as calls:
            got = learner(given, T)
        hidden = sorted(calls.names & _HIDDEN_SHIFT)
        if hidden:
            return (
                f"on {case.label}: your function calls torch's {hidden[0]}, which subtracts the "
                "max for you: this exercise is to write that shift yourself, with exp, max and sum"
            )
        if not torch.equal(given, logits):
            return (
                f"on {case.label}: your function changed its logits in place (`z /= T`); work on "
                "a copy: `z = logits / T`"
            )
        if got is None:
            return f"returned None on {case.label} - did you forget `return`?"
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            what = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return f"on {case.label}: return a tensor of shape {tuple(expected.shape)}, got {what}"
        if not torch.isfinite(got).all():
            return (
                f"on {case.label}: your result holds NaN or inf: exp overflowed (no shift), or a "
                "whole row underflowed to 0 / 0 (shifted by a max that is not that row's own)"
            )
        msg = compare(got, expected)
        if msg:
            return (
                f"wrong on {case.label}: {msg}.\n   expected {_describe(expected)}\n"
                f"   got      {_describe(got)}"
            )
    return None


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


def _emb(n: int, d: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * scale


def _rkd_cases() -> list[Case]:
    outlier = _emb(6, 3, 4)
    outlier[0] += 12.0  # one far point: distance ratios differ by more than 1 (Huber's linear part)
    line_s = torch.tensor([[0.0], [1.0], [3.0]])
    tri_t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 0.8660254]])
    return [
        Case((line_s, tri_t), label="3 points on a line vs an equilateral triangle (hand-sized)"),
        Case((_emb(8, 4, 0), _emb(8, 16, 1)), label="N=8, student width 4, teacher width 16"),
        Case((_emb(6, 5, 2, 10.0), _emb(6, 5, 3, 0.1)), label="student 100x larger than teacher"),
        Case((outlier, _emb(6, 7, 5)), label="a student point 12 units away (Huber's linear part)"),
        Case((_emb(5, 3, 6), _emb(5, 3, 6) * 3), label="teacher = 3 x student (loss 0)"),
    ]


EXERCISES = {
    "distill.softmax_t": Exercise(
        reference=distill.softmax_t,
        cases=_softmax_cases,
        custom=_check_softmax,
        hint="divide by T first, then make every exponent of a row <= 0 by subtracting that "
        "row's largest value (the ratio does not change); a batch's rows can be 1000 apart.",
        formula="z = logits / T; z = z - z.max(dim=-1, keepdim=True).values; e = z.exp(); "
        "p = e / e.sum(dim=-1, keepdim=True) (keepdim so that each row uses its own max and sum).",
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
    "distill.rkd_distance_loss": Exercise(
        reference=relational.rkd_distance_loss,
        cases=_rkd_cases,
        hint="for each embedding: all pairwise distances, divided by their mean over the pairs "
        "i != j (the diagonal zeros do not count in the mean, nor in the loss); then Huber "
        "(smooth L1), not squared error, between the student's and the teacher's ratios.",
        formula="d = torch.cdist(e, e); mu = d.sum() / (n * (n - 1)); psi = d / mu; "
        "off = ~torch.eye(n, dtype=bool); F.smooth_l1_loss(psi_s[off], psi_t[off])",
    ),
}
