"""Notebook 04, parts 1-8: unstructured magnitude pruning, and how to keep the accuracy.

Unstructured magnitude pruning keeps the largest |w|:
    k = round(s * numel)  weights with the smallest |w| get mask 0, the rest mask 1,
exactly like ``torch.nn.utils.prune.l1_unstructured`` (same rounding, same ``topk``).
Layer-wise pruning applies sparsity s to every layer; global pruning ranks all layers'
weights together, so layers with many small weights lose more. Then the rescues: a per-layer
sensitivity scan, BatchNorm re-calibration, fine-tuning with the mask held, an iterative
schedule, and L1 regularisation that teaches the model to be prunable (as a penalty in the
loss, and as a proximal soft-threshold step that makes exact zeros).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from labkit.core import train
from labkit.core.errors import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_loader,
    check_model,
    check_nonempty,
    check_number,
    check_positive,
    check_tensor,
)

PRUNABLE = (nn.Conv2d, nn.Linear)
MAX_EPOCHS, MAX_STEPS = 100, 10_000  # beyond these a digits run takes many minutes: a typo


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights pruning acts on: ``{"<module name>.weight": param}`` of every Conv2d/Linear.

    Taught in notebooks/04_pruning.ipynb, "1. A model worth pruning".
    """
    _check_prunable(model)
    return {f"{n}.weight": m.weight for n, m in model.named_modules() if isinstance(m, PRUNABLE)}


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask (same shape as ``weight``) that zeroes the round(s*numel) smallest |w|.

    mask[i] = False for the k = round(sparsity * numel) entries of smallest magnitude,
    True elsewhere; sparsity in [0, 1). Matches torch.nn.utils.prune.l1_unstructured.
    Taught in notebooks/04_pruning.ipynb, "2. Unstructured magnitude pruning".
    """
    _check_mask(weight, sparsity)
    k = round(sparsity * weight.numel())  # Python's round, as torch.nn.utils.prune
    mask = torch.ones(weight.shape, dtype=torch.bool, device=weight.device)
    if k:
        idx = torch.topk(weight.detach().abs().reshape(-1), k=k, largest=False).indices  # (k,)
        mask.view(-1)[idx] = False
    return mask


def global_masks(weights: Mapping[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Global magnitude pruning: rank |w| of all tensors together and prune round(s*N) overall.

    Equal to torch.nn.utils.prune.global_unstructured(..., L1Unstructured, amount=sparsity).
    Each returned mask has its tensor's shape. Used by prune_model (this module).
    """
    _check_weights(weights, sparsity)
    flat = torch.cat([w.detach().abs().reshape(-1) for w in weights.values()])  # (N,)
    parts = magnitude_mask(flat, sparsity).split([w.numel() for w in weights.values()])
    return {name: p.reshape(w.shape) for (name, w), p in zip(weights.items(), parts, strict=True)}


def prune_model(
    model: nn.Module, sparsity: float, scope: str = "global"
) -> dict[str, torch.Tensor]:
    """Magnitude-prune every Conv2d/Linear weight of ``model`` in place; return the masks.

    scope="global" ranks all weights together, scope="layer" prunes each layer to ``sparsity``.
    Taught in notebooks/04_pruning.ipynb, "3. Layer-wise or global?".
    """
    check_choice(scope, "scope", ("global", "layer"))
    weights = prunable_weights(model)
    if scope == "global":
        masks = global_masks(weights, sparsity)
    else:
        masks = {name: magnitude_mask(w, sparsity) for name, w in weights.items()}
    apply_masks(model, masks)
    return masks


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """weight <- weight * mask for each named weight (in place, no gradient).

    Taught in notebooks/04_pruning.ipynb, "9. Why a mask alone does not make the model faster".
    """
    _check_masks(model, masks)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask)


def sparsity(model_or_tensor: nn.Module | torch.Tensor) -> float:
    """Fraction of exact zeros in a tensor, or over all Conv2d/Linear weights of a model.

    Used by layer_sparsity (this module).
    """
    _check_sparsity_of(model_or_tensor)
    if isinstance(model_or_tensor, torch.Tensor):
        tensors: Iterable[torch.Tensor] = [model_or_tensor]
    else:
        tensors = prunable_weights(model_or_tensor).values()
    counts = [(int((t == 0).sum()), t.numel()) for t in tensors]  # (zeros, size) per tensor
    return sum(z for z, _ in counts) / sum(n for _, n in counts)


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of zeros in each Conv2d/Linear weight.

    Taught in notebooks/04_pruning.ipynb, "3. Layer-wise or global?".
    """
    return {k: sparsity(v) for k, v in prunable_weights(model).items()}


def sensitivity_scan(
    model: nn.Module, loader: DataLoader, sparsities: Sequence[float]
) -> dict[str, list[float]]:
    """Accuracy when ONE layer at a time is magnitude-pruned (no fine-tune).

    Returns {weight name: [accuracy at each sparsity]}; the model itself is not changed.
    Taught in notebooks/04_pruning.ipynb, "4. Sensitivity scan: which layer can lose what?".
    """
    _check_scan(model, loader, sparsities)
    result: dict[str, list[float]] = {}
    for name in prunable_weights(model):
        accs = []
        for s in sparsities:
            pruned = copy.deepcopy(model)
            apply_masks(pruned, {name: magnitude_mask(prunable_weights(pruned)[name], s)})
            accs.append(train.evaluate(pruned, loader)["accuracy"])
        result[name] = accs
    return result


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader: DataLoader, batches: int | None = None) -> nn.Module:
    """Re-estimate every BatchNorm's running mean/var on ``loader`` (no gradient, in place).

    Pruning changes each conv's output statistics, so the running stats BN learned before
    no longer fit. With momentum=None torch keeps a plain average over the batches seen:
    running_mean = mean over batches of the per-batch channel means (same for var).
    Returns ``model`` in eval mode.
    Taught in notebooks/04_pruning.ipynb, "5. A cheap rescue: re-calibrate BatchNorm".
    """
    bns = _check_recalibrate(model, loader, batches)
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a plain average over the batches seen
    model.train()
    for x, _ in itertools.islice(loader, batches):  # batches=None: all of them
        model(x)
    for bn, momentum in zip(bns, saved, strict=True):
        bn.momentum = momentum
    return model.eval()


def finetune(
    model: nn.Module,
    loader: DataLoader,
    masks: Mapping[str, torch.Tensor] | None = None,
    *,
    epochs: int = 3,
    lr: float = 1e-3,
    loss_fn: train.LossFn = train.cross_entropy_loss,
) -> list[float]:
    """Train with labkit.train.fit, re-applying ``masks`` after every optimizer step so
    pruned weights stay exactly zero. Returns the mean loss per epoch.

    Taught in notebooks/04_pruning.ipynb, "6. Prune, then fine-tune".
    """
    _check_finetune(model, loader, masks, epochs, lr, loss_fn)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if masks:
        opt.register_step_post_hook(lambda *_: apply_masks(model, masks))
    return train.fit(model, loader, epochs=epochs, optimizer=opt, loss_fn=loss_fn)


def sparsity_schedule(final: float, steps: int) -> list[float]:
    """Cubic schedule of Zhu & Gupta (2017): s_i = s_f * (1 - (1 - i/steps)^3), i = 1..steps.

    Prunes fast while many redundant weights remain, slowly near the end.
    Taught in notebooks/04_pruning.ipynb, "7. Iterative pruning with a schedule".
    """
    _check_schedule(final, steps)
    return [final * (1 - (1 - i / steps) ** 3) for i in range(1, steps + 1)]


def iterative_prune(
    model: nn.Module,
    train_loader: DataLoader,
    eval_loader: DataLoader,
    final_sparsity: float,
    *,
    steps: int = 4,
    epochs: int = 1,
    lr: float = 1e-3,
    scope: str = "global",
) -> list[dict[str, float]]:
    """Prune -> fine-tune, ``steps`` times, following ``sparsity_schedule`` (in place).

    Each step prunes to the scheduled sparsity (pruned weights stay pruned: they are the
    smallest, value 0), fine-tunes ``epochs`` epochs with the mask held, and records the
    accuracy before and after the fine-tune.
    Taught in notebooks/04_pruning.ipynb, "7. Iterative pruning with a schedule".
    """
    _check_iterative(model, train_loader, eval_loader, final_sparsity, steps, epochs, lr, scope)
    history = []
    for s in sparsity_schedule(final_sparsity, steps):
        masks = prune_model(model, s, scope)
        before = train.evaluate(model, eval_loader)["accuracy"]
        finetune(model, train_loader, masks, epochs=epochs, lr=lr)
        after = train.evaluate(model, eval_loader)["accuracy"]
        history.append({"sparsity": s, "acc_pruned": before, "acc_finetuned": after})
    return history


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """sum |w| over every Conv2d/Linear weight (pushes small weights to exactly 0).

    Used by l1_loss_fn (this module).
    """
    return sum(w.abs().sum() for w in prunable_weights(model).values())  # type: ignore[return-value]


def l1_loss_fn(lam: float) -> train.LossFn:
    """Loss for labkit.train.fit: cross_entropy(model(x), y) + lam * sum |w|.

    Used by fit_l1 (this module).
    """
    check_number(lam, "lam (the L1 strength, e.g. 1e-4)", low=0)

    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y) + lam * l1_penalty(model)

    return loss


@torch.no_grad()
def l1_proximal_step(model: nn.Module, lam: float, lr: float, on: str = "weights") -> int:
    """The proximal (soft-threshold) step of L1, in place, on every Conv2d/Linear weight
    (on="weights") or on every BatchNorm scale gamma (on="bn": network slimming):

        w <- sign(w) * max(|w| - lr * lam, 0)

    Run it after each optimizer step (``opt.register_step_post_hook``). A gradient step on
    lam * |w| only flips a small weight's sign back and forth around 0; the soft threshold
    sets every |w| <= lr * lam to exactly 0, and a zero stays 0 until the loss gradient moves
    it further than the threshold. Returns the number of exact zeros afterwards.
    Used by fit_l1 (this module).
    """
    _check_prox(model, lam, lr, on)
    tau = lr * lam  # the shrink of one step
    if on == "weights":
        tensors = list(prunable_weights(model).values())
    else:
        bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        tensors = [bn.weight for bn in bns if bn.affine]  # gamma of each BatchNorm
    zeros = 0
    for w in tensors:
        w.copy_(w.sign() * (w.abs() - tau).clamp_min(0))  # soft threshold, same shape as w
        zeros += int((w == 0).sum())
    return zeros


def fit_l1(
    model: nn.Module,
    loader: DataLoader,
    lam: float,
    *,
    proximal: bool = True,
    on: str = "weights",
    epochs: int = 8,
    lr: float = 3e-3,
    lr_bn: float | None = None,
) -> list[float]:
    """Train with Adam and an L1 pull on every Conv2d/Linear weight (on="bn": every BatchNorm
    gamma, network slimming), the learning rates decaying linearly to 0.

    proximal=True: cross-entropy, then ``l1_proximal_step(model, lam, lr_now, on)`` after each
    step (exact zeros; decoupled from Adam's scaling, like AdamW's weight decay).
    proximal=False: cross-entropy + lam * sum |w| (``l1_loss_fn``; weights only): Adam sees
    lam * sign(w) in the gradient, and no weight lands on exactly 0.
    lr_bn: the BatchNorm gammas' learning rate (default ``lr``). Adam moves a parameter by at
    most about lr per step and gamma starts at 1: at lr = 3e-3 for 8 epochs on the digits (272
    decaying steps) a gamma travels at most about 0.4, so slimming needs a larger lr_bn.
    Returns the mean loss per epoch.
    Taught in notebooks/04_pruning.ipynb, "8. L1 regularisation: teaching the model to be prunable".
    """
    _check_fit_l1(model, loader, lam, proximal, on, epochs, lr, lr_bn)
    gammas = [m.weight for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    gammas = [g for g in gammas if g is not None]
    rest = [p for p in model.parameters() if all(p is not g for g in gammas)]
    groups = [{"params": rest}] + ([{"params": gammas, "lr": lr_bn or lr}] if gammas else [])
    opt = torch.optim.Adam(groups, lr=lr)
    total = epochs * len(loader)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 - t / total)  # lr -> 0
    target = opt.param_groups[-1] if on == "bn" else opt.param_groups[0]  # whose lr sets tau

    def after_step(*_: object) -> None:
        if proximal:
            l1_proximal_step(model, lam, target["lr"], on)
        decay.step()

    opt.register_step_post_hook(after_step)
    loss_fn = train.cross_entropy_loss if proximal else l1_loss_fn(lam)
    return train.fit(model, loader, epochs=epochs, optimizer=opt, loss_fn=loss_fn)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_prunable(model: object) -> None:
    check_model(model)
    if not any(isinstance(m, PRUNABLE) for m in model.modules()):  # type: ignore[union-attr]
        raise ValueError("the model has no nn.Conv2d or nn.Linear layer to prune.")


def _check_mask(weight: object, sparsity: object) -> None:
    w = check_nonempty(check_tensor(weight, "weight"), "weight")
    if bool(torch.isnan(w).any()):  # type: ignore[arg-type]
        raise ValueError(
            "weight contains NaN: its magnitude cannot be ranked; find where the training "
            "diverged (a too-large learning rate) and prune a finite model."
        )
    check_fraction(sparsity, "sparsity")


def _check_weights(weights: object, sparsity: object) -> None:
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError(
            "weights must be a non-empty {name: tensor} dict, e.g. prune.prunable_weights(model)."
        )
    for name, w in weights.items():
        check_nonempty(check_tensor(w, f"weights[{name!r}]"), f"weights[{name!r}]")
    check_fraction(sparsity, "sparsity")


def _check_masks(model: object, masks: object) -> None:
    params = dict(check_model(model).named_parameters())
    if not isinstance(masks, Mapping):
        raise ValueError(f"masks must be a {{name: bool tensor}} dict, got {type(masks).__name__}.")
    missing = set(masks) - set(params)
    if missing:
        raise ValueError(f"masks name parameters the model does not have: {sorted(missing)}.")
    for name, mask in masks.items():
        if not isinstance(mask, torch.Tensor) or mask.shape != params[name].shape:
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(
                f"masks: the mask for {name} has shape {shape}, the weight "
                f"{tuple(params[name].shape)}; build it with prune.magnitude_mask(weight, s)."
            )
        if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(
                f"masks: the mask for {name} holds values other than 0 and 1 (dtype "
                f"{mask.dtype}): pass bool masks such as prune.magnitude_mask(w, s), not weights."
            )


def _check_sparsity_of(model_or_tensor: object) -> None:
    if isinstance(model_or_tensor, torch.Tensor):
        check_nonempty(model_or_tensor, "model_or_tensor")
    elif not any(
        isinstance(m, PRUNABLE) for m in check_model(model_or_tensor, "model_or_tensor").modules()
    ):
        raise ValueError(
            "model_or_tensor has no nn.Conv2d or nn.Linear layer whose zeros to count."
        )


def _check_scan(model: object, loader: object, sparsities: object) -> None:
    if (
        isinstance(sparsities, (str, bytes))
        or not isinstance(sparsities, Sequence)
        or not sparsities
    ):
        raise ValueError("sparsities must list at least one sparsity, e.g. [0.5, 0.9].")
    for i, s in enumerate(sparsities):
        check_fraction(s, f"sparsities[{i}]: sparsity")
    check_model(model)
    check_loader(loader, "loader")


def _check_recalibrate(model: object, loader: object, batches: object) -> list[nn.Module]:
    """The model's BatchNorm layers, after checking the arguments."""
    bns = [
        m for m in check_model(model).modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if not bns:
        raise ValueError(
            "model has no BatchNorm layer: there are no running statistics to re-estimate."
        )
    check_loader(loader, "loader")
    if batches is not None:
        check_int(batches, "batches (None: all)", low=1)
    return bns


def _check_finetune(
    model: object, loader: object, masks: object, epochs: object, lr: object, loss_fn: object
) -> None:
    check_model(model)
    check_loader(loader, "loader")
    if masks is not None:
        _check_masks(model, masks)
    check_int(epochs, "epochs", low=1, high=MAX_EPOCHS)
    _check_reusable(loader, "loader", epochs)  # type: ignore[arg-type]
    check_positive(lr, "lr (learning rate)")
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be a function (model, x, y) -> loss, got {loss_fn!r}.")


def _check_prox(model: object, lam: object, lr: object, on: object) -> None:
    _check_prunable(model)
    check_number(lam, "lam (the L1 strength, e.g. 0.1)", low=0)
    check_positive(lr, "lr (the optimizer's learning rate)")
    check_choice(on, "on", ("weights", "bn"))
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]  # type: ignore[union-attr]
    if on == "bn" and not any(bn.affine for bn in bns):
        raise ValueError("on='bn' needs a BatchNorm layer with a scale (affine=True).")


def _check_fit_l1(
    model: object,
    loader: object,
    lam: object,
    proximal: object,
    on: object,
    epochs: object,
    lr: object,
    lr_bn: object,
) -> None:
    _check_prox(model, lam, lr, on)
    if lr_bn is not None:
        check_positive(lr_bn, "lr_bn (the BatchNorm gammas' learning rate; None: lr)")
    check_loader(loader, "loader")
    if not hasattr(loader, "__len__"):
        raise ValueError(
            "loader must have a length (a DataLoader): the decay needs the step count."
        )
    _check_reusable(loader, "loader", 2)
    check_bool(proximal, "proximal")
    if not proximal and on != "weights":
        raise ValueError("the L1 penalty in the loss acts on the weights: use on='weights'.")
    check_int(epochs, "epochs", low=1, high=MAX_EPOCHS)


def _check_reusable(loader: object, name: str, epochs: int) -> None:
    if epochs > 1 and iter(loader) is loader:  # type: ignore[call-overload]
        raise ValueError(
            f"{name} is a one-shot iterator: the second epoch would see no batch; pass the "
            "DataLoader itself (e.g. labkit.data.digits_loaders().train), not iter(loader)."
        )


def _check_iterative(
    model: object,
    train_loader: object,
    eval_loader: object,
    final_sparsity: object,
    steps: object,
    epochs: object,
    lr: object,
    scope: object,
) -> None:
    _check_prunable(model)
    check_loader(train_loader, "train_loader")
    check_loader(eval_loader, "eval_loader")
    check_fraction(final_sparsity, "final_sparsity")
    check_int(steps, "steps", low=1, high=MAX_STEPS)
    check_int(epochs, "epochs", low=1, high=MAX_EPOCHS)
    check_positive(lr, "lr (learning rate)")
    check_choice(scope, "scope", ("global", "layer"))


def _check_schedule(final: object, steps: object) -> None:
    check_fraction(final, "final sparsity")
    check_int(steps, "steps", low=1, high=MAX_STEPS)
