"""Exercises of notebook 03 (knowledge distillation): softened softmax and the KD loss."""

from __future__ import annotations

import torch

from labkit import distill
from labkit.checks import Case, Exercise, close


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


EXERCISES = {
    "distill.softmax_t": Exercise(
        reference=distill.softmax_t,
        cases=_softmax_cases,
        compare=close(atol=1e-6, rtol=1e-5),
        hint="divide the logits by T, then softmax over the LAST dimension: "
        "torch.softmax(logits / T, dim=-1) (it subtracts the max, so large logits do not "
        "overflow).",
    ),
    "distill.distillation_loss": Exercise(
        reference=distill.distillation_loss,
        cases=_kd_cases,
        compare=close(atol=1e-5, rtol=1e-4),
        hint="(1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * "
        "F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction='batchmean'): "
        "the student goes in as LOG-probabilities, the teacher as probabilities (KL(p_t || p_s)), "
        "'batchmean' divides by N (not N*C), and T^2 keeps the soft gradient's size.",
    ),
}
