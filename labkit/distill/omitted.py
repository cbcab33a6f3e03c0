"""Notebook 03, part 4 (end): Hinton's omitted-class experiment, a digit the student never sees.

Hinton, Vinyals and Dean (2015) distilled an MNIST net with every 3 removed from the transfer
set. The student never saw a 3, yet its logit for 3 learned from the teacher's soft targets
on the other digits ("this 5 looks a little like a 3"); with that class's bias raised by 3.5
it recognised 98.6 % of the test 3s. A student trained on the hard labels alone gets no
signal towards the class (its logit is only pushed down).

    logits'_c = logits_c + b   for the omitted class c only (bias b chosen on validation)

``without_class`` builds the transfer images, ``class_bias_sweep`` picks b on validation
(and returns a copy with it), ``recognised`` counts the omitted digit's images predicted as it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from labkit.core.errors import check_int, check_model, check_nonempty, check_number, check_tensor


def without_class(x: torch.Tensor, y: torch.Tensor, omit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) with every example of class ``omit`` removed: x (N, ...), y (N,) -> (M, ...), (M,).

    Taught in notebooks/03_knowledge_distillation.ipynb, "An unseen digit: Hinton's omitted-class experiment".
    """
    _check_without(x, y, omit)
    keep = y != omit  # (N,) bool
    return x[keep], y[keep]


@torch.no_grad()
def class_bias_sweep(
    model: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    cls: int,
    offsets: Sequence[float],
) -> tuple[float, nn.Sequential]:
    """The offset of class ``cls``'s bias with the best accuracy on (x, y), and that model.

    Each offset b gives accuracy(argmax(logits + b * e_cls)); the first best wins (ties go to
    the smallest offset when ``offsets`` is ascending). Choose it on validation, not test.
    Taught in notebooks/03_knowledge_distillation.ipynb, "An unseen digit: Hinton's omitted-class experiment".
    """
    _check_sweep(model, x, y, cls, offsets)
    logits = model.eval()(x)  # (N, C)
    onehot = torch.zeros(logits.shape[1])
    onehot[cls] = 1.0  # (C,)
    accs = [float(((logits + b * onehot).argmax(1) == y).float().mean()) for b in offsets]
    best = max(range(len(offsets)), key=lambda i: (accs[i], -i))
    shifted = copy.deepcopy(model)
    shifted[-1].bias[cls] += float(offsets[best])  # one logit moves; the others are unchanged
    return float(offsets[best]), shifted.eval()


@torch.no_grad()
def recognised(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cls: int) -> tuple[int, int]:
    """(how many images of class ``cls`` the model predicts as ``cls``, how many there are).

    Taught in notebooks/03_knowledge_distillation.ipynb, "An unseen digit: Hinton's omitted-class experiment".
    """
    _check_recognised(model, x, y, cls)
    is_cls = y == cls  # (N,)
    pred = model.eval()(x[is_cls]).argmax(1)  # (n,)
    return int((pred == cls).sum()), int(is_cls.sum())


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_xy(x: object, y: object) -> None:
    check_nonempty(check_tensor(x, "x"), "x")
    check_tensor(y, "y", floating=False)
    if y.dtype.is_floating_point or y.ndim != 1 or len(y) != len(x):  # type: ignore[union-attr, arg-type]
        raise ValueError("y must be a 1-D tensor of integer labels, one per row of x.")


def _check_without(x: object, y: object, omit: object) -> None:
    _check_xy(x, y)
    check_int(omit, "omit (the class to remove)", low=0)
    if bool((y == omit).all()):  # type: ignore[operator]
        raise ValueError(f"every example is of class {omit}: nothing would be left.")
    if not bool((y == omit).any()):  # type: ignore[operator]
        raise ValueError(
            f"omit={omit}: y holds no example of class {omit}, so nothing would be removed; "
            "pick a class that occurs in y."
        )


def _check_head(model: object, cls: object) -> None:
    check_model(model)
    last = model[-1] if isinstance(model, nn.Sequential) and len(model) else None
    if not isinstance(last, nn.Linear) or last.bias is None:
        raise ValueError("model must be an nn.Sequential ending in a Linear layer with a bias.")
    check_int(cls, "cls (the class whose bias moves)", low=0, high=last.out_features - 1)


def _check_sweep(model: object, x: object, y: object, cls: object, offsets: object) -> None:
    _check_head(model, cls)
    _check_xy(x, y)
    if isinstance(offsets, (str, bytes)) or not isinstance(offsets, Sequence) or not offsets:
        raise ValueError("offsets must list at least one bias offset, e.g. [0, 0.5, 1, ...].")
    for i, b in enumerate(offsets):
        check_number(b, f"offsets[{i}]")


def _check_recognised(model: object, x: object, y: object, cls: object) -> None:
    check_model(model)
    _check_xy(x, y)
    check_int(cls, "cls", low=0)
    if not bool((y == cls).any()):  # type: ignore[operator]
        raise ValueError(f"cls={cls}: y holds no example of class {cls}: nothing to recognise.")
