"""Notebook 04, part 11: pruning a transformer's attention heads.

A block's attention output is its heads side by side, y = [y_1 | ... | y_H] (B, T, H*hs), and
the output projection mixes them: proj(y) = sum_h y_h W_h^T + b, with W_h = proj.weight[:, h*hs:
(h+1)*hs]. Give every head a gate g_h (Michel et al., 2019):

    proj(y; g) = sum_h g_h * y_h W_h^T + b        g_h = 1: the model as it is; g_h = 0: head h off

so masking head h equals zeroing its columns W_h of the projection (``mask_heads``), a change
the deployed model keeps with no extra code. Which heads go, each head gets a score:

    gradient   I_h = mean over examples n of |dL_n / dg_h| at g = 1 (Michel et al., 2019): the
               first-order change of example n's loss when head h is switched off, one backward
    ablation   the accuracy lost when head h alone is switched off: one evaluation per head

The gates act through a forward pre-hook on each block's ``proj`` (``head_gates``), so any model
built from labkit.models.TransformerBlock works as it is (the digit transformer of notebook 09).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from labkit.core import models, train
from labkit.core.errors import check_int, check_loader, check_model


def transformer_blocks(model: nn.Module) -> list[models.TransformerBlock]:
    """The labkit.models.TransformerBlock modules of ``model``, in forward order.

    Taught in notebooks/04_pruning.ipynb, "11. Attention heads: which can go?".
    """
    _check_has_blocks(model)
    return [m for m in model.modules() if isinstance(m, models.TransformerBlock)]


@contextmanager
def head_gates(model: nn.Module, gates: torch.Tensor) -> Iterator[torch.Tensor]:
    """Inside the ``with``, head h of block l is multiplied by gates[..., l, h].

    gates: (L, H) for every example alike, or (N, L, H), one row per example of the batch
    (per-example gradients in one backward). The hook on block l's proj sees
    y (N, T, H*hs) and returns (y.view(N, T, H, hs) * g[:, None, :, None]).view(N, T, H*hs).
    Taught in notebooks/04_pruning.ipynb, "11. Attention heads: which can go?".
    """
    blocks = _check_gates(model, gates)
    hooks = []
    for layer, block in enumerate(blocks):

        def gate(module: nn.Module, args: tuple[torch.Tensor], layer: int = layer) -> tuple:
            (y,) = args  # (N, T, H*hs): the heads side by side
            n, t, d = y.shape
            g = gates[..., layer, :].reshape(-1, 1, gates.shape[-1], 1)  # (N or 1, 1, H, 1)
            return ((y.view(n, t, gates.shape[-1], d // gates.shape[-1]) * g).view(n, t, d),)

        hooks.append(block.proj.register_forward_pre_hook(gate))
    try:
        yield gates
    finally:
        for h in hooks:
            h.remove()


def head_importance(model: nn.Module, loader: DataLoader) -> torch.Tensor:
    """I[l, h] = mean over examples n of |dL_n / dg[n, l, h]| at g = 1 (Michel et al., 2019).

    Each example gets its own gates (N, L, H), all 1: the model's output is unchanged, and since
    g[n] touches only example n's loss, one backward of sum_n L_n gives every example's
    gradient. Returns (L, H); larger = the loss depends more on that head.
    Taught in notebooks/04_pruning.ipynb, "11. Attention heads: which can go?".
    """
    blocks = _check_blocks_loader(model, loader)
    shape = (len(blocks), blocks[0].n_head)  # (L, H)
    total, count = torch.zeros(shape), 0
    model.eval()
    for x, y in loader:
        g = torch.ones(len(x), *shape, requires_grad=True)  # (N, L, H)
        with head_gates(model, g):
            loss = F.cross_entropy(model(x), y, reduction="sum")  # sum_n L_n
        (grad,) = torch.autograd.grad(loss, g)  # (N, L, H): dL_n / dg[n]
        total += grad.abs().sum(0)
        count += len(x)
    return total / count  # (L, H)


def accuracy_removing_heads(
    model: nn.Module, loader: DataLoader, order: Sequence[tuple[int, int]]
) -> list[float]:
    """Accuracy with the first k heads of ``order`` gated off, for k = 0 .. len(order).

    order: (layer, head) pairs, the first to go first. Element k of the result is
    train.evaluate's accuracy (a fraction) with k heads off; element 0 is the model as it is.
    Taught in notebooks/04_pruning.ipynb, "11. Attention heads: which can go?".
    """
    blocks = _check_order(model, order, "order", loader)
    gates = torch.ones(len(blocks), blocks[0].n_head)  # (L, H)
    accs = []
    with torch.no_grad(), head_gates(model, gates):
        for k in range(len(order) + 1):
            if k:
                gates[tuple(order[k - 1])] = 0.0  # the hooks read the tensor at every call
            accs.append(train.evaluate(model, loader)["accuracy"])
    return accs


def head_ablation(model: nn.Module, loader: DataLoader) -> torch.Tensor:
    """drop[l, h] = accuracy with every head on - accuracy with head (l, h) alone off (fractions).

    One evaluation of ``loader`` per head: the direct measurement the gradient score estimates.
    Taught in notebooks/04_pruning.ipynb, "11. Attention heads: which can go?".
    """
    blocks = _check_blocks_loader(model, loader)
    gates = torch.ones(len(blocks), blocks[0].n_head)  # (L, H)
    drop = torch.zeros_like(gates)  # (L, H)
    with torch.no_grad(), head_gates(model, gates):
        full = train.evaluate(model, loader)["accuracy"]
        for layer, head in [(i, j) for i in range(gates.shape[0]) for j in range(gates.shape[1])]:
            gates[layer, head] = 0.0  # head (layer, head) alone off
            drop[layer, head] = full - train.evaluate(model, loader)["accuracy"]
            gates[layer, head] = 1.0
    return drop


def mask_heads(model: nn.Module, heads: Sequence[tuple[int, int]]) -> nn.Module:
    """A copy of ``model`` with each (layer, head) of ``heads`` off for good.

    Block l's proj.weight (d, H*hs): columns h*hs .. (h+1)*hs-1, the ones head h's output is
    multiplied by, set to 0; the same as gating the head with 0. The original is not modified.
    Taught in notebooks/04_pruning.ipynb, "11. Attention heads: which can go?".
    """
    _check_order(model, heads, "heads")
    small = copy.deepcopy(model)
    blocks = transformer_blocks(small)
    hs = blocks[0].proj.in_features // blocks[0].n_head  # features per head
    with torch.no_grad():
        for layer, head in heads:
            blocks[layer].proj.weight[:, head * hs : (head + 1) * hs] = 0.0  # (d, hs)
    return small


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_has_blocks(model: object) -> None:
    check_model(model)
    blocks = [m for m in model.modules() if isinstance(m, models.TransformerBlock)]  # type: ignore[union-attr]
    if not blocks:
        raise ValueError(
            "model has no labkit.models.TransformerBlock: head and block pruning need a "
            "transformer built from it (e.g. the digit transformer of notebook 09)."
        )
    if len({b.n_head for b in blocks}) != 1:
        raise ValueError("every TransformerBlock of the model must have the same number of heads.")


def _check_gates(model: object, gates: object) -> list[models.TransformerBlock]:
    blocks = transformer_blocks(model)  # type: ignore[arg-type]
    shape = (len(blocks), blocks[0].n_head)
    ok = isinstance(gates, torch.Tensor) and gates.dim() in (2, 3)
    if not ok or tuple(gates.shape[-2:]) != shape:  # type: ignore[union-attr]
        got = tuple(gates.shape) if isinstance(gates, torch.Tensor) else type(gates).__name__
        raise ValueError(
            f"gates must be a tensor of shape {shape} (blocks, heads) or (N, {shape[0]}, "
            f"{shape[1]}) (one row per example), got {got}; start from torch.ones{shape}."
        )
    return blocks


_NO_LOADER = object()  # mask_heads has no loader to check


def _check_order(
    model: object, order: object, name: str, loader: object = _NO_LOADER
) -> list[models.TransformerBlock]:
    blocks = transformer_blocks(model)  # type: ignore[arg-type]
    n_layer, n_head = len(blocks), blocks[0].n_head
    pairs = list(order) if isinstance(order, Sequence) and not isinstance(order, str) else None
    if pairs is None or not all(isinstance(p, Sequence) and len(p) == 2 for p in pairs):
        raise ValueError(f"{name} must be a list of (layer, head) pairs, got {order!r}.")
    for i, (layer, head) in enumerate(pairs):
        check_int(layer, f"{name}[{i}]: layer", low=0, high=n_layer - 1)
        check_int(head, f"{name}[{i}]: head", low=0, high=n_head - 1)
    if len(set(map(tuple, pairs))) != len(pairs):
        raise ValueError(f"{name} lists a (layer, head) pair twice: {order!r}.")
    if loader is not _NO_LOADER:
        check_loader(loader, "loader")
    return blocks


def _check_blocks_loader(model: object, loader: object) -> list[models.TransformerBlock]:
    blocks = transformer_blocks(model)  # type: ignore[arg-type]
    check_loader(loader, "loader")
    return blocks
