"""Notebook 04, part 13: the lottery ticket, in brief.

Frankle & Carbin (2019): train a dense network from its initial weights theta_0, prune it by
magnitude (mask m), then **rewind** the survivors to theta_0 and train again with the mask
held, theta_0 * m. Their claim: such a "winning ticket" trains to the dense accuracy, while the
same mask with a **fresh random** initialisation theta'_0 * m does worse. For deeper networks
Frankle et al. (2020) rewind to an early iteration k instead, theta_k * m (k of a few % of
training). The control that decides it: same mask, same training, only the starting values
differ.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from labkit.core import train
from labkit.core.errors import check_fraction, check_int, check_loader, check_model, check_positive
from labkit.prune.unstructured import (
    MAX_EPOCHS,
    apply_masks,
    finetune,
    global_masks,
    prunable_weights,
)

Tickets = dict[tuple[str, float], nn.Module]  # (variant, sparsity) -> trained model


def train_with_snapshot(
    model: nn.Module, loader: DataLoader, *, epochs: int, lr: float, at_step: int
) -> dict[str, torch.Tensor]:
    """Train ``model`` in place (Adam, labkit.train.fit); return its state after ``at_step``
    optimizer steps, theta_k (at_step=0: the initial state theta_0).

    Used by lottery_ticket (labkit/prune/lottery.py).
    """
    _check_snapshot(model, loader, epochs, lr, at_step)
    snaps = {0: copy.deepcopy(model.state_dict())}  # theta_0
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def snapshot(*_: object) -> None:
        snaps["steps"] = snaps.get("steps", 0) + 1  # type: ignore[operator]
        if snaps["steps"] == at_step:
            snaps[at_step] = copy.deepcopy(model.state_dict())  # theta_k

    opt.register_step_post_hook(snapshot)
    train.fit(model, loader, epochs=epochs, optimizer=opt)
    return snaps[at_step]


def lottery_ticket(
    make_model: Callable[[], nn.Module],
    loader: DataLoader,
    sparsities: Sequence[float],
    *,
    epochs: int = 4,
    lr: float = 3e-3,
    rewind_step: int = 10,
    seed: int = 0,
) -> Tickets:
    """Train, prune, rewind, retrain; and the same mask from a fresh random initialisation.

    torch.manual_seed(seed); theta_0 = make_model(); train it ``epochs`` (keeping theta_k,
    k = rewind_step optimizer steps in) -> ("dense", 0.0). For each sparsity s: the global
    magnitude mask m of the trained weights, then three runs of the same training with m held
    (prune.finetune, ``epochs``, ``lr``), differing only in where they start:

        ("rewind to init", s)         theta_0 * m        (Frankle & Carbin, 2019)
        (f"rewind to step {k}", s)    theta_k * m        (Frankle et al., 2020)
        ("random init", s)            theta'_0 * m       theta'_0 = make_model() under seed + 1000

    Taught in notebooks/04_pruning.ipynb, "13. The lottery ticket, in brief".
    """
    _check_lottery(make_model, loader, sparsities, epochs, lr, rewind_step, seed)
    torch.manual_seed(seed)
    dense = make_model()
    theta_0 = copy.deepcopy(dense.state_dict())
    theta_k = train_with_snapshot(dense, loader, epochs=epochs, lr=lr, at_step=rewind_step)
    torch.manual_seed(seed + 1000)
    fresh = make_model().state_dict()  # theta'_0: another draw of the same initialiser
    out: Tickets = {("dense", 0.0): dense}
    starts = {"rewind to init": theta_0, f"rewind to step {rewind_step}": theta_k}
    for s in sparsities:
        masks = global_masks(prunable_weights(dense), s)  # m: what magnitude pruning keeps
        for name, start in (starts | {"random init": fresh}).items():
            ticket = copy.deepcopy(dense)
            ticket.load_state_dict(start)
            apply_masks(ticket, masks)  # theta * m
            finetune(ticket, loader, masks, epochs=epochs, lr=lr)
            out[name, s] = ticket
    return out


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_lottery(
    make_model: object,
    loader: object,
    sparsities: object,
    epochs: object,
    lr: object,
    step: object,
    seed: object,
) -> None:
    if isinstance(make_model, nn.Module) or not callable(make_model):
        raise ValueError(
            "make_model must be a function that builds a fresh model (not a model), e.g. "
            "functools.partial(labkit.models.cnn, 16)."
        )
    if not isinstance(sparsities, Sequence) or isinstance(sparsities, str) or not sparsities:
        raise ValueError(f"sparsities must be a non-empty list such as [0.9], got {sparsities!r}.")
    for i, s in enumerate(sparsities):
        check_fraction(s, f"sparsities[{i}]: sparsity")
    check_int(epochs, "epochs", low=1, high=MAX_EPOCHS)
    _check_sized_loader(loader)
    check_positive(lr, "lr")
    check_int(step, "rewind_step", low=0, high=epochs * len(loader))  # type: ignore[operator, arg-type]
    check_int(seed, "seed", low=0)


def _check_sized_loader(loader: object) -> None:
    check_loader(loader, "loader")
    if not hasattr(loader, "__len__"):
        raise ValueError(
            "loader must be a DataLoader with a length, e.g. labkit.data.digits_loaders().train."
        )


def _check_snapshot(
    model: object, loader: object, epochs: object, lr: object, at_step: object
) -> None:
    check_model(model)
    _check_sized_loader(loader)
    check_int(epochs, "epochs", low=1, high=MAX_EPOCHS)
    check_positive(lr, "lr")
    total = epochs * len(loader)  # type: ignore[operator, arg-type]
    check_int(
        at_step,
        f"at_step (optimizer steps in, 0 .. {total} = epochs * len(loader))",
        low=0,
        high=total,
    )
