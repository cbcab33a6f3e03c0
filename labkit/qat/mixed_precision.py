"""Per-layer sensitivity -> mixed precision: which layers can take fewer bits under a size budget.

Sensitivity of layer l at b bits = validation loss with ONLY l quantised (static PTQ) minus
the float loss. ``assign_bits`` spends a byte budget (bytes as ``size_bytes`` counts them)
greedily: narrow the layer that costs the least sensitivity per byte saved, then widen the
layer that buys the most per extra byte while the model still fits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from labkit.core import models
from labkit.core.errors import check_int, check_model, check_nonempty, check_tensor
from labkit.core.train import cross_entropy_loss
from labkit.qat.lesson import quantizable_layers, size_bytes, static_ptq


@torch.no_grad()
def _val_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(cross_entropy_loss(model.eval(), x, y))


def sensitivity(
    model: nn.Module,
    calib: list[torch.Tensor],
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    bits_list: Iterable[int] = (2, 3, 4, 8),
) -> dict[str, dict[int, float]]:
    """Per-layer sensitivity: validation loss increase when ONLY that layer is quantised
    (weights and input activation at b bits, static PTQ), every other layer float.

    Returns {layer: {bits: loss(quantised) - loss(float)}}.

    Taught in notebooks/06_ptq_and_qat.ipynb, "5. Per-layer sensitivity → mixed precision".
    """
    bits_list = _check_sensitivity(model, calib, x_val, y_val, bits_list)
    folded = models.fold_batchnorm(model)
    base = _val_loss(folded, x_val, y_val)
    names = quantizable_layers(folded)
    out: dict[str, dict[int, float]] = {}
    for name in names:
        out[name] = {}
        for b in bits_list:
            only = {n: (b if n == name else None) for n in names}
            out[name][b] = _val_loss(static_ptq(model, calib, only), x_val, y_val) - base
    return out


def assign_bits(
    model: nn.Module,
    sens: Mapping[str, Mapping[int, float]],
    budget_bytes: int,
) -> dict[str, int]:
    """Greedy mixed precision under a size budget (bytes as ``size_bytes`` counts them).

    1. Start every layer at its widest bit width in ``sens``; repeatedly lower the one layer
       whose next narrower width costs the least sensitivity per byte saved, until
       size_bytes(model, bits) <= budget_bytes.
    2. Spend what is left: repeatedly raise the layer whose next wider width lowers the
       sensitivity most per extra byte, as long as the model still fits.

    Returns {layer name: bits}. ValueError when even the narrowest assignment does not fit.

    Taught in notebooks/06_ptq_and_qat.ipynb, "5. Per-layer sensitivity → mixed precision".
    """
    _check_assign_bits(model, sens, budget_bytes)
    folded = models.fold_batchnorm(model)
    choice = {n: max(s) for n, s in sens.items()}
    size = size_bytes(folded, choice)
    while size > budget_bytes:  # 1. (cost per byte saved, layer, narrower bits, new size)
        moves = []
        for n, b in choice.items():
            if lower := [c for c in sens[n] if c < b]:
                nb = max(lower)
                new = size_bytes(folded, {**choice, n: nb})
                moves.append(((sens[n][nb] - sens[n][b]) / max(size - new, 1), n, nb, new))
        _, n, nb, size = min(moves, key=lambda m: m[0])  # first of the cheapest
        choice[n] = nb
    while True:  # 2. (gain per extra byte, layer, wider bits, new size), while it still fits
        moves = []
        for n, b in choice.items():
            if wider := [c for c in sens[n] if c > b]:
                nb = min(wider)
                new = size_bytes(folded, {**choice, n: nb})
                gain = (sens[n][b] - sens[n][nb]) / max(new - size, 1)
                if new <= budget_bytes and gain > 0:
                    moves.append((gain, n, nb, new))
        if not moves:
            return choice
        _, n, nb, size = max(moves, key=lambda m: m[0])  # first of the best
        choice[n] = nb


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_sensitivity(model: Any, calib: Any, x_val: Any, y_val: Any, bits_list: Any) -> list[int]:
    check_model(model, "model")
    if not isinstance(calib, list | tuple) or not calib:
        raise ValueError("calib must be a non-empty list of input batches (calibration_batches).")
    check_nonempty(check_tensor(x_val, "x_val"), "x_val")
    if not isinstance(y_val, torch.Tensor) or y_val.shape[:1] != x_val.shape[:1]:
        raise ValueError(
            f"y_val must be a tensor of {x_val.shape[0]} labels (one per x_val row), "
            f"got {getattr(y_val, 'shape', type(y_val).__name__)}."
        )
    if isinstance(bits_list, str) or not isinstance(bits_list, Iterable):
        raise ValueError(
            f"bits_list must be a list of bit widths, e.g. (2, 4, 8), got {bits_list!r}."
        )
    bits = [check_int(b, "bits in bits_list", low=2, high=16) for b in bits_list]
    check_nonempty(bits, "bits_list")
    return bits


def _check_assign_bits(model: Any, sens: Any, budget_bytes: Any) -> None:
    check_int(budget_bytes, "budget_bytes", low=1)
    names = quantizable_layers(models.fold_batchnorm(model))
    if not isinstance(sens, Mapping) or set(sens) != set(names):
        raise ValueError("sens must have one entry per Conv2d/Linear layer (use sensitivity()).")
    for n, s in sens.items():
        if not isinstance(s, Mapping) or not s:
            raise ValueError(f"sens[{n!r}] must map bit widths to loss changes, got {s!r}.")
        for b in s:
            check_int(b, f"bits in sens[{n!r}]", low=2, high=16)
    narrowest = size_bytes(model, {n: min(s) for n, s in sens.items()})
    if narrowest > budget_bytes:
        raise ValueError(
            f"budget_bytes={budget_bytes} is below the smallest assignment "
            f"({narrowest} B with every layer at its narrowest width); raise budget_bytes "
            "or add narrower widths to sens."
        )
