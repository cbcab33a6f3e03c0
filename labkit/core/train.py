"""Training and evaluation loops shared by every notebook.

fit: for each epoch, for each batch: loss = loss_fn(model, x, y); loss.backward(); step.
The default loss_fn is cross-entropy of model(x) against y. A text progress line (tqdm's
plain bar, not its widget: a closed widget would leave "model not found" in a saved notebook)
shows progress, except under tests and notebook builds (labkit.env.quiet()).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.std import tqdm

from labkit.core.data import text_batch
from labkit.core.env import quiet
from labkit.core.errors import (
    check_int,
    check_loader,
    check_model,
    check_nonempty,
    check_number,
    check_positive,
    check_tensor,
)

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The default loss: mean cross-entropy of model(x) against labels y."""
    return F.cross_entropy(model(x), y)


def fit(
    model: nn.Module,
    loader: DataLoader,
    *,
    epochs: int = 10,
    lr: float = 1e-2,
    loss_fn: LossFn = cross_entropy_loss,
    optimizer: torch.optim.Optimizer | None = None,
    weight_decay: float = 0.0,
    progress: bool | None = None,
    device: torch.device | str = "cpu",
) -> list[float]:
    """Train ``model`` in place with Adam (or the given optimizer); return mean loss per epoch."""
    _check_fit(model, loader, epochs, lr, weight_decay)
    model.to(device)
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    show = (not quiet()) if progress is None else progress
    history: list[float] = []
    bar = tqdm(range(epochs), desc="train", disable=not show, leave=False)
    for _ in bar:
        model.train()
        total, count = 0.0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = loss_fn(model, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            count += len(y)
        history.append(total / count)
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    model.eval()
    return history


def fit_next_char(
    model: nn.Module,
    ids: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    gen: torch.Generator,
) -> nn.Module:
    """Next-character training in place: AdamW (weight decay 0.01), one-cycle LR, gradients
    clipped at norm 1, ``steps`` batches of ``batch_size`` random windows of ``ids`` drawn with
    ``gen``; returns the model in eval mode. ``model(x)`` gives logits (B, T, V) or a tuple
    whose first item they are. Arguments are checked by the callers.
    Used by train_char_gpt (labkit/generate/gpt.py) and train_char_lm (labkit/qat/char_lm.py).
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for _ in range(steps):
        x, y = text_batch(ids, model.cfg.block_size, batch_size, gen)  # (B, T) each
        out = model(x)
        logits = out[0] if isinstance(out, tuple) else out  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def evaluate(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    loader: DataLoader,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Accuracy (fraction correct) and mean cross-entropy loss of ``model`` on ``loader``."""
    check_loader(loader)
    if isinstance(model, nn.Module):
        model.eval().to(device)
    correct, loss, count = 0, 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return {"accuracy": correct / count, "loss": loss / count}


@torch.no_grad()
def accuracy(
    model: nn.Module | Callable[[torch.Tensor], Any], x: torch.Tensor, y: torch.Tensor
) -> float:
    """Fraction of rows of ``x`` whose arg-max prediction equals ``y``.

    ``model``: an nn.Module (put in eval mode) or any function returning logits (N, C) as a
    tensor or NumPy array, e.g. an ONNX Runtime runner. The one accuracy of the course.
    """
    _check_accuracy(model, x, y)
    if isinstance(model, nn.Module):
        model.eval()
    logits = torch.as_tensor(np.asarray(model(x)) if not isinstance(model, nn.Module) else model(x))
    if logits.ndim != 2 or len(logits) != len(y):
        raise ValueError(
            f"model(x) must give logits of shape ({len(y)}, C), got {tuple(logits.shape)}."
        )
    return float((logits.argmax(1) == y).float().mean())


# ------------------------------------------------------------------------- checks
def _check_fit(model: object, loader: object, epochs: object, lr: object, wd: object) -> None:
    check_model(model)
    check_loader(loader)
    check_int(epochs, "epochs", low=1, high=100_000)
    check_positive(lr, "lr")
    check_number(wd, "weight_decay", low=0)


def _check_accuracy(model: object, x: object, y: object) -> None:
    if not callable(model):
        raise ValueError(
            f"model must be an nn.Module or a function giving logits, got {type(model).__name__}."
        )
    check_nonempty(check_tensor(x, "x", floating=False), "x")
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.ndim != 1:
        raise ValueError(
            f"y must be a 1-D integer tensor of class labels, got {y!r:.60}; use y.long()."
        )
    if len(y) != len(x):
        raise ValueError(f"y has {len(y)} labels but x has {len(x)} rows: one label per row.")
