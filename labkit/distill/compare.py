"""Notebook 03, part 9: a fair comparison of the distillation variants.

Each variant gets its own (T, alpha), chosen on the validation split over a small grid (one
seed, short training), and is then trained over several seeds; the verdict names a winner only
when its gap to every other variant is larger than the seed noise (a t-test, stats.difference):

    (T*, alpha*)_v = argmax_{(T, alpha) in grid} acc_val(v, T, alpha)
    winner = v_best  only if  difference(acc_test(v_best), acc_test(v)).clear  for every v != v_best
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import nn

from labkit.core import train
from labkit.core.errors import (
    check_choice,
    check_int,
    check_model,
    check_nonempty,
    check_number,
    check_positive,
    check_tensor,
)
from labkit.distill.multi_teacher import multi_teacher_loss, multi_transfer_set
from labkit.distill.relational import at_kd_loss, rkd_kd_loss
from labkit.distill.stats import difference, mean_std
from labkit.distill.training import (
    TransferSet,
    _check_split_head,
    feature_dim,
    hint_kd_loss,
    kd_loss,
    train_student,
    transfer_set,
)

VARIANTS = ("KD", "hint", "AT", "RKD", "TA", "multi-teacher")
ASSISTANT_WIDTH = 128  # the TA variant's assistant: between the CNN teacher and the 32-unit student


class Sets(NamedTuple):
    """The transfer sets every variant draws from (built once by variant_sets)."""

    x: torch.Tensor
    y: torch.Tensor
    teacher: nn.Module
    features: TransferSet  # teacher A's logits and features, (M, C) and (M, d_t)
    multi: TransferSet  # every teacher's logits, (M, K, C)


def variant_sets(x: torch.Tensor, y: torch.Tensor, teachers: Sequence[nn.Module]) -> Sets:
    """Transfer sets for every variant: teachers[0] (logits + features) and all teachers' logits.

    Taught in notebooks/03_knowledge_distillation.ipynb, "9. A fair comparison".
    """
    _check_variant_sets(teachers)
    return Sets(
        x, y, teachers[0], transfer_set(x, y, teachers[0], features=True), multi_transfer_set(x, y, teachers)
    )  # fmt: skip


def train_variant(
    variant: str, sets: Sets, T: float, alpha: float, *, seed: int, epochs: int = 40
) -> nn.Sequential:
    """One 32-unit student trained with ``variant``'s loss at (T, alpha); see VARIANTS.

    KD: distillation_loss; hint: + FitNets (beta 1); AT: + attention transfer (beta 1, the
    teacher's last map 64 x 4 x 4, the student's 32 units as 2 x 4 x 4); RKD: + distance and
    angle (1, 2); TA: teacher -> 128-unit assistant -> student; multi-teacher: confidence weights.
    Taught in notebooks/03_knowledge_distillation.ipynb, "9. A fair comparison".
    """
    _check_variant(variant, sets, epochs)
    fs, kw = sets.features, {"seed": seed, "epochs": epochs}
    if variant == "hint":
        torch.manual_seed(seed)
        reg = nn.Linear(32, feature_dim(sets.teacher))  # type: ignore[arg-type]
        return train_student(fs, hint_kd_loss(reg, T, alpha, 1.0), extra=reg, **kw)
    if variant == "AT":
        return train_student(fs, at_kd_loss((64, 4, 4), (2, 4, 4), T, alpha, 1.0), **kw)
    if variant == "RKD":
        return train_student(fs, rkd_kd_loss(T, alpha), **kw)
    if variant == "TA":
        assistant = train_student(fs, kd_loss(T, alpha), width=ASSISTANT_WIDTH, **kw)
        return train_student(transfer_set(sets.x, sets.y, assistant), kd_loss(T, alpha), **kw)
    if variant == "multi-teacher":
        return train_student(sets.multi, multi_teacher_loss(T, alpha, "confidence"), **kw)
    return train_student(fs, kd_loss(T, alpha), **kw)


def choose_on_validation(
    fit: Callable[[float, float], nn.Module],
    grid: Sequence[tuple[float, float]],
    x_val: torch.Tensor,
    y_val: torch.Tensor,
) -> tuple[tuple[float, float], dict[tuple[float, float], float]]:
    """argmax over (T, alpha) in ``grid`` of the validation accuracy (%) of fit(T, alpha).

    Returns the best pair (the first on ties) and every pair's accuracy.
    Taught in notebooks/03_knowledge_distillation.ipynb, "9. A fair comparison".
    """
    _check_grid(fit, grid, x_val, y_val)
    accs = {(T, a): 100 * train.accuracy(fit(T, a), x_val, y_val) for T, a in grid}
    return max(accs, key=accs.__getitem__), accs


def winner_verdict(accs: Mapping[str, Sequence[float]], unit: str = "points") -> str:
    """'X wins: clearly above every other variant' only if every gap to X is clear; else who ties.

    accs: variant -> per-seed accuracies (>= 2 each). Gaps are Welch t-tests (stats.difference).
    Taught in notebooks/03_knowledge_distillation.ipynb, "9. A fair comparison".
    """
    _check_accs(accs)
    best = max(accs, key=lambda v: mean_std(accs[v])[0])
    ties = [v for v in accs if v != best and not difference(accs[best], accs[v]).clear]
    if not ties:
        return f"{best} wins: clearly above every other variant (t-test over seeds)"
    return (
        f"no clear winner: {best} has the highest mean, but {', '.join(ties)} "
        f"{'is' if len(ties) == 1 else 'are'} within seed noise of it ({unit})"
    )


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_variant_sets(teachers: object) -> None:
    if not isinstance(teachers, (Sequence, nn.ModuleList)) or len(teachers) < 2:
        raise ValueError(
            "teachers must be a list of at least 2 teacher models (the multi-teacher variant "
            f"needs several), got {type(teachers).__name__}; e.g. distill.load_teachers()[0]."
        )
    for i, t in enumerate(teachers):
        check_model(t, f"teachers[{i}]")
    _check_split_head(teachers[0], "teachers[0]")  # its features feed hint, AT and RKD


def _check_variant(variant: object, sets: object, epochs: object) -> None:
    check_choice(variant, "variant", VARIANTS)
    if not isinstance(sets, Sets):
        raise ValueError(
            f"sets must be what distill.variant_sets(x, y, teachers) returns, got "
            f"{type(sets).__name__}."
        )
    check_int(epochs, "epochs", low=1, high=1000)


def _check_grid(fit: object, grid: object, x_val: object, y_val: object) -> None:
    if not callable(fit) or isinstance(fit, nn.Module):
        raise ValueError(
            f"fit must be a function (T, alpha) -> trained model, got {type(fit).__name__}; e.g. "
            "lambda T, a: distill.train_variant('KD', sets, T, a, seed=0)."
        )
    pairs = isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)) and grid
    if not pairs or not all(isinstance(p, Sequence) and len(p) == 2 for p in grid):  # type: ignore[union-attr]
        raise ValueError(
            f"grid must list (T, alpha) pairs, e.g. [(2, 0.5), (8, 0.9)], got {grid!r}."
        )
    for i, (T, a) in enumerate(grid):  # type: ignore[arg-type]
        check_positive(T, f"grid[{i}] T (temperature)")
        check_number(a, f"grid[{i}] alpha", low=0, high=1)
    x = check_nonempty(check_tensor(x_val, "x_val"), "x_val")
    y = check_tensor(y_val, "y_val", floating=False, ndim=1)
    if len(y) != len(x):  # type: ignore[arg-type]
        raise ValueError(f"y_val has {len(y)} labels but x_val has {len(x)} rows: one per row.")  # type: ignore[arg-type]


def _check_accs(accs: object) -> None:
    if not isinstance(accs, Mapping) or len(accs) < 2:
        raise ValueError("accs must map at least 2 variants to their per-seed accuracies.")
    for v, a in accs.items():
        if isinstance(a, (str, bytes)) or not isinstance(a, Sequence) or len(a) < 2:
            raise ValueError(f"accs[{v!r}] needs at least 2 seeds' accuracies, got {a!r}.")
        for i, acc in enumerate(a):
            check_number(acc, f"accs[{v!r}][{i}]")
