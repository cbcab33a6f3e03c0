"""Notebook 03, parts 7-8: teacher-assistant chains and multi-teacher KD with per-example weights.

Teacher assistant (Mirzadeh et al., 2020). When the teacher is far larger than the student,
distil in steps through a mid-sized assistant:

    teacher -> assistant (width w_a) -> student (width w_s)

each step an ordinary distillation from the previous model's logits.

Multi-teacher with dynamic weights. K teachers with logits t_k (N, C); per example n a weight
w_nk >= 0 with sum_k w_nk = 1 decides how much each teacher's soft targets count:

    L = (1 - alpha) CE(s, y) + alpha T^2 (1/N) sum_n sum_k w_nk KL(p_{t_k,n}(T) || p_{s,n}(T))

    equal:       w_nk = 1 / K
    confidence:  w_nk = softmax_k( -CE(t_k,n, y_n) / tau )   (a teacher that is right and sure counts most)
    max-prob:    w_nk = max_c p_{t_k,n,c} / sum_j max_c p_{t_j,n,c}
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from labkit.core.errors import (
    check_choice,
    check_fraction,
    check_model,
    check_positive,
    check_tensor,
)
from labkit.distill.training import (
    StudentLoss,
    TransferSet,
    _check_labels,
    _check_student_loss_fn,
    _check_width,
    _teachers,
    shifted_copies,
    train_student,
    transfer_set,
)

WEIGHTINGS = ("equal", "confidence", "max-prob")


def assistant_chain(
    x: torch.Tensor,
    y: torch.Tensor,
    teacher: nn.Module,
    widths: Sequence[int],
    loss: StudentLoss,
    *,
    seed: int,
    epochs: int = 40,
) -> list[nn.Sequential]:
    """teacher -> widths[0] -> widths[1] -> ...: each student distilled from the previous model.

    x (N, 1, H, W), y (N,): every step builds transfer_set(x, y, previous model) and trains a
    student of the next width with ``loss``; returns the trained models in order (the last is
    the final student). widths = [w_s] is direct distillation, [w_a, w_s] one assistant.
    Taught in notebooks/03_knowledge_distillation.ipynb, "7. A large capacity gap: the teacher assistant".
    """
    _check_chain(teacher, widths, loss)
    chain, previous = [], teacher
    for w in widths:
        ts = transfer_set(x, y, previous)  # (9N rows) labelled by the previous model
        previous = train_student(ts, loss, seed=seed, width=w, epochs=epochs)
        chain.append(previous)
    return chain


@torch.no_grad()
def teacher_stack(teachers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Every teacher's logits, not averaged: x (N, ...) -> (N, K, C). Teachers run in eval.

    Used by multi_transfer_set (this module).
    """
    return torch.stack([t.eval()(x) for t in _teachers(teachers)], dim=1)  # (N, K, C)


def multi_transfer_set(
    x: torch.Tensor, y: torch.Tensor, teachers: Sequence[nn.Module], max_shift: int = 1
) -> TransferSet:
    """Like transfer_set, but teacher_logits keeps each teacher: (M, K, C), M = (2s+1)^2 N.

    Taught in notebooks/03_knowledge_distillation.ipynb, "8. Several teachers, weighted per example".
    """
    _check_multi(x, y, teachers)
    xa = shifted_copies(x, max_shift)  # (M, 1, H, W); checks x and max_shift
    ya = y.repeat(len(xa) // len(x))  # (M,)
    return TransferSet(xa, ya, teacher_stack(teachers, xa))


def confidence_weights(
    teacher_logits: torch.Tensor, labels: torch.Tensor, mode: str = "confidence", tau: float = 1.0
) -> torch.Tensor:
    """Per-example teacher weights w (N, K), rows summing to 1, from logits (N, K, C), labels (N,).

    mode "confidence": softmax_k(-CE(t_k, y) / tau); "max-prob": max_c p_k normalised over k;
    "equal": 1 / K.
    Taught in notebooks/03_knowledge_distillation.ipynb, "8. Several teachers, weighted per example".
    """
    _check_weights(teacher_logits, labels, mode, tau)
    n, k, c = teacher_logits.shape
    if mode == "equal":
        return torch.full((n, k), 1.0 / k)  # (N, K)
    if mode == "max-prob":
        top = teacher_logits.softmax(-1).amax(-1)  # (N, K): each teacher's confidence
        return top / top.sum(1, keepdim=True)  # (N, K)
    ce = F.cross_entropy(
        teacher_logits.reshape(n * k, c), labels.repeat_interleave(k), reduction="none"
    )
    return (-ce.view(n, k) / tau).softmax(dim=1)  # (N, K)


def multi_teacher_loss(
    T: float = 4.0, alpha: float = 0.9, weighting: str = "confidence", tau: float = 1.0
) -> StudentLoss:
    """(1 - alpha) CE + alpha T^2 mean_n sum_k w_nk KL(p_tk || p_s), w from confidence_weights.

    The transfer set's teacher_logits must be (M, K, C) (multi_transfer_set).
    Taught in notebooks/03_knowledge_distillation.ipynb, "8. Several teachers, weighted per example".
    """
    _check_multi_loss(T, alpha, weighting, tau)

    def loss(student: nn.Module, b: TransferSet, progress: float) -> torch.Tensor:
        s = student(b.x)  # (B, C)
        t = b.teacher_logits  # (B, K, C)
        w = confidence_weights(t, b.y, weighting, tau)  # type: ignore[arg-type]  # (B, K)
        log_p_s = F.log_softmax(s / T, -1).unsqueeze(1)  # (B, 1, C)
        log_p_t = F.log_softmax(t / T, -1)  # type: ignore[operator]  # (B, K, C)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)  # (B, K): KL per example and teacher
        soft = (w * kl).sum(1).mean() * T * T  # ()
        return (1 - alpha) * F.cross_entropy(s, b.y) + alpha * soft

    return loss


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_chain(teacher: object, widths: object, loss: object) -> None:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
        raise ValueError(
            f"widths must list at least one student width, e.g. [64, 8], got {widths!r}."
        )
    for i, w in enumerate(widths):
        _check_width(w, f"widths[{i}]")
    check_model(teacher, "teacher")
    _check_student_loss_fn(loss)


def _check_multi(x: object, y: object, teachers: object) -> None:
    group = _teachers(teachers)
    if len(group) < 2:
        raise ValueError("multi_transfer_set needs a list of at least 2 teachers.")
    for i, t in enumerate(group):
        check_model(t, f"teachers[{i}]")
    _check_labels(check_tensor(x, "x", ndim=4), y)


def _check_weights(logits: object, labels: object, mode: object, tau: object) -> None:
    t = check_tensor(logits, "teacher_logits", ndim=3)
    y = check_tensor(labels, "labels", floating=False, ndim=1)
    if y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"labels must be class indices (int64), got dtype {y.dtype}; use .long().")
    if len(y) != len(t) or t.numel() == 0:
        raise ValueError(
            f"teacher_logits {tuple(t.shape)} must be (N, K, C) with N = len(labels) = {len(y)}, "
            "all >= 1: build it with multi_transfer_set."
        )
    if int(y.min()) < 0 or int(y.max()) >= t.shape[2]:
        raise ValueError(
            f"labels must be class indices in [0, {t.shape[2]}) (C = teacher_logits.shape[2])."
        )
    check_choice(mode, "mode", WEIGHTINGS)
    check_positive(tau, "tau")


def _check_multi_loss(T: object, alpha: object, weighting: object, tau: object) -> None:
    check_positive(T, "T (temperature)")
    check_fraction(alpha, "alpha", include_one=True)
    check_choice(weighting, "weighting", WEIGHTINGS)
    check_positive(tau, "tau")
