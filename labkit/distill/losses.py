"""Notebook 03, parts 1-3: soft targets, the distillation loss, and why it carries T^2.

Softened probabilities at temperature T (logits z of shape (N, C)):

    p_i(T) = exp(z_i / T) / sum_j exp(z_j / T)

Distillation loss (Hinton et al., 2015), student logits s, teacher logits t, labels y:

    L = (1 - alpha) * CE(s, y) + alpha * T^2 * KL(p_t(T) || p_s(T))

KL is computed from log-softmax (numerically stable) and averaged over the batch
("batchmean": sum over classes, mean over examples). The T^2 factor keeps the soft
gradient's size independent of T: d KL / d s is (p_s(T) - p_t(T)) / (N T), and p_s - p_t
itself shrinks like 1/T, so without T^2 the soft term fades as 1/T^2.
Also the FitNets hint loss on features (part 4 trains with it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from labkit.core.errors import (
    check_fraction,
    check_model,
    check_nonempty,
    check_positive,
    check_tensor,
)


def softmax_t(logits: torch.Tensor, T: float) -> torch.Tensor:
    """Softened probabilities softmax(logits / T) over the last dimension; same shape.

    p_i = exp(z_i / T - m) / sum_j exp(z_j / T - m), m = max_j z_j / T of the SAME row: the
    shift cancels in the ratio, and every exponent is <= 0 with one exactly 0, so exp cannot
    overflow and the sum is >= 1 (never 0/0). A max over the whole batch would underflow a
    row whose logits are far below it (exp(-1000) = 0 for every class: 0/0 = NaN).
    Taught in notebooks/03_knowledge_distillation.ipynb, "1. Soft targets and the temperature".
    """
    _check_softmax_t(logits, T)
    z = logits / T  # (..., C)
    e = (z - z.amax(dim=-1, keepdim=True)).exp()  # (..., C), each row's max -> exp(0) = 1
    return e / e.sum(dim=-1, keepdim=True)  # (..., C), rows sum to 1


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy -sum p log2 p over the last dimension (bits); shape probs.shape[:-1].

    Zero probabilities contribute 0 (the limit of p log p); the result is >= 0.
    Taught in notebooks/03_knowledge_distillation.ipynb, "1. Soft targets and the temperature".
    """
    _check_probs(probs)
    p = probs.clamp_min(0)
    h = -(p * torch.log2(p.clamp_min(1e-30))).sum(-1)  # (...,)
    return h.clamp_min(0) + 0.0  # + 0.0 turns -0.0 into 0.0 (prints as 0.00, not -0.00)


def soft_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float, scale_t2: bool = True
) -> torch.Tensor:
    """T^2 * KL(p_t(T) || p_s(T)), batchmean; without the T^2 factor if scale_t2=False.

    Shapes: both (N, C) -> scalar. The teacher is detached (no gradient flows into it).
    Taught in notebooks/03_knowledge_distillation.ipynb, "2. The distillation loss".
    """
    _check_logits(student_logits, teacher_logits, T)
    log_p_s = F.log_softmax(student_logits / T, dim=-1)  # (N, C)
    log_p_t = F.log_softmax(teacher_logits.detach() / T, dim=-1)  # (N, C)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)  # ()
    return kl * T * T if scale_t2 else kl


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    T: float,
    alpha: float,
) -> torch.Tensor:
    """(1 - alpha) * CE(student, labels) + alpha * T^2 * KL(p_t(T) || p_s(T)).

    student_logits, teacher_logits: (N, C) float; labels: (N,) int64 in [0, C); T > 0;
    alpha in [0, 1] (alpha = 0: plain cross-entropy, alpha = 1: soft targets only).
    Returns a scalar. KL uses log-softmax of both and reduction 'batchmean'; the teacher
    is detached.
    Taught in notebooks/03_knowledge_distillation.ipynb, "2. The distillation loss".
    """
    _check_distillation_loss(student_logits, teacher_logits, labels, T, alpha)
    hard = F.cross_entropy(student_logits, labels)  # ()
    return (1 - alpha) * hard + alpha * soft_loss(student_logits, teacher_logits, T)


def soft_grad_norm(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float, scale_t2: bool = True
) -> float:
    """L2 norm of d soft_loss / d student_logits (the 1/N of batchmean is inside the loss).

    Taught in notebooks/03_knowledge_distillation.ipynb, "3. Why $T^2$: the soft gradient, measured".
    """
    _check_logits(student_logits, teacher_logits, T)
    s = student_logits.detach().clone().requires_grad_(True)  # (N, C), a leaf
    soft_loss(s, teacher_logits, T, scale_t2).backward()
    return float(s.grad.norm())  # type: ignore[union-attr]


def hint_loss(
    student_features: torch.Tensor, teacher_features: torch.Tensor, regressor: nn.Module
) -> torch.Tensor:
    """FitNets hint loss: mean((regressor(f_s) - f_t)^2); f_s (N, d_s), f_t (N, d_t) -> scalar.

    The regressor maps the student's d_s features to the teacher's d_t (e.g. nn.Linear);
    it is trained with the student. The teacher features are detached.
    Used by hint_kd_loss (labkit/distill/training.py).
    """
    _check_hint_loss(student_features, teacher_features, regressor)
    mapped = regressor(student_features)  # (N, d_t)
    return F.mse_loss(mapped, teacher_features.detach())


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_softmax_t(logits: object, T: object) -> None:
    _check_no_nan(check_nonempty(check_tensor(logits, "logits"), "logits"), "logits")
    check_positive(T, "T (temperature)")


def _check_probs(probs: object) -> None:
    p = check_nonempty(check_tensor(probs, "probs"), "probs")
    if not bool(((p >= 0) & (p <= 1)).all()):  # NaN fails both comparisons
        raise ValueError(
            "probs must hold probabilities in [0, 1] (got a value outside it, or NaN); pass "
            "softmax_t(logits, T), not the logits themselves."
        )


def _check_no_nan(x: torch.Tensor, name: str) -> None:
    if bool(torch.isnan(x).any()):
        raise ValueError(
            f"{name} contains NaN; find where it first appears (torch.isnan) and fix that step "
            "(a diverged teacher, a too-large learning rate, a division by zero)."
        )


def _check_logits(student_logits: object, teacher_logits: object, T: object) -> None:
    if teacher_logits is None:
        raise ValueError(
            "teacher_logits is None: the distillation loss needs the teacher's logits; "
            "build the transfer set with a teacher: distill.transfer_set(x, y, teacher)."
        )
    s = check_tensor(student_logits, "student_logits", ndim=2)
    t = check_tensor(teacher_logits, "teacher_logits", ndim=2)
    if s.shape != t.shape:
        raise ValueError(
            f"student_logits {tuple(s.shape)} and teacher_logits {tuple(t.shape)} must have "
            "the same shape (N, C): the same examples and the same classes."
        )
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(
            f"student_logits has shape {tuple(s.shape)}: need at least one example (N >= 1) "
            "and one class (C >= 1)."
        )
    if math.isnan(float(s.detach().sum()) + float(t.detach().sum())):  # any NaN makes it NaN
        _check_no_nan(s, "student_logits")
        _check_no_nan(t, "teacher_logits")
    check_positive(T, "T (temperature)")


def _check_distillation_loss(
    student_logits: object, teacher_logits: object, labels: object, T: object, alpha: object
) -> None:
    _check_logits(student_logits, teacher_logits, T)
    y = check_tensor(labels, "labels", floating=False, ndim=1)
    n, n_classes = student_logits.shape  # type: ignore[union-attr]
    if y.shape[0] != n:
        raise ValueError(f"labels has {y.shape[0]} entries but the logits have {n} rows.")
    if y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"labels must be class indices (int64), got dtype {y.dtype}.")
    low, high = (int(v) for v in torch.aminmax(y))  # one pass: this runs every batch
    if low < 0 or high >= n_classes:
        raise ValueError(f"labels must be class indices in [0, {n_classes}).")
    check_fraction(alpha, "alpha", include_one=True)


def _check_hint_loss(student_features: object, teacher_features: object, regressor: object) -> None:
    if teacher_features is None:
        raise ValueError(
            "teacher_features is None: the hint loss needs the teacher's features; build "
            "the set with transfer_set(..., features=True)."
        )
    f_s = check_tensor(student_features, "student_features", ndim=2)
    f_t = check_tensor(teacher_features, "teacher_features", ndim=2)
    if len(f_s) == 0:
        raise ValueError("student_features is empty (0 rows): the hint loss needs >= 1 example.")
    linears = [m for m in check_model(regressor, "regressor").modules() if isinstance(m, nn.Linear)]
    d_in, d_out = (linears[0].in_features, linears[-1].out_features) if linears else (None, None)
    if (
        len(f_s) != len(f_t)
        or d_in not in (None, f_s.shape[1])
        or d_out not in (None, f_t.shape[1])
    ):
        raise ValueError(
            f"regressor maps student features {tuple(f_s.shape)} to ({len(f_s)}, {d_out}) but "
            f"the teacher features are {tuple(f_t.shape)}; use nn.Linear(d_s, d_t) on the "
            "same rows."
        )
