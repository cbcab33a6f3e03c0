"""Pruning: remove weights (unstructured) or whole channels (structured).

Unstructured magnitude pruning keeps the largest |w|:
    k = round(s * numel)  weights with the smallest |w| get mask 0, the rest mask 1,
exactly like ``torch.nn.utils.prune.l1_unstructured`` (same rounding, same ``topk``).
Layer-wise pruning applies sparsity s to every layer; global pruning ranks all layers'
weights together, so layers with many small weights lose more.

Structured channel pruning (``prune_channels``) deletes a conv's output channels and the
matching input channels of the layer that consumes them, giving a physically smaller
``nn.Sequential`` with fewer MACs and a real speed-up on dense kernels. A mask alone
(zeros in a dense tensor) saves neither time nor memory until the zeros are stored in a
sparse format (``storage_bytes``: CSR or bitmask) or run on sparse hardware (2:4, ``nm_mask``).
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from labkit import bench, train
from labkit.core.errors import check_fraction, check_positive, check_tensor

PRUNABLE = (nn.Conv2d, nn.Linear)
# Layers between a conv and its consumer that act on each channel separately.
CHANNELWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.Dropout,
    nn.Identity,
)


# ----------------------------------------------------------------------------- unstructured
def _n_to_prune(sparsity: float, numel: int) -> int:
    """Number of weights to prune: round(sparsity * numel), Python's round like torch's prune."""
    return round(check_fraction(sparsity, "sparsity") * numel)


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask (same shape as ``weight``) that zeroes the round(s*numel) smallest |w|.

    mask[i] = False for the k = round(sparsity * numel) entries of smallest magnitude,
    True elsewhere; sparsity in [0, 1). Matches torch.nn.utils.prune.l1_unstructured.
    Taught in notebooks/04_pruning.ipynb, "2. Unstructured magnitude pruning".
    """
    w = check_tensor(weight, "weight")
    k = _n_to_prune(sparsity, w.numel())
    mask = torch.ones(w.shape, dtype=torch.bool, device=w.device)
    if k:
        idx = torch.topk(w.detach().abs().reshape(-1), k=k, largest=False).indices
        mask.view(-1)[idx] = False
    return mask


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights pruning acts on: ``{"<module name>.weight": param}`` of every Conv2d/Linear.

    Taught in notebooks/04_pruning.ipynb, "1. A model worth pruning".
    """
    found = {
        f"{name}.weight": m.weight for name, m in model.named_modules() if isinstance(m, PRUNABLE)
    }
    if not found:
        raise ValueError("the model has no nn.Conv2d or nn.Linear layer to prune.")
    return found


def global_masks(weights: Mapping[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Global magnitude pruning: rank |w| of all tensors together and prune round(s*N) overall.

    Equal to torch.nn.utils.prune.global_unstructured(..., L1Unstructured, amount=sparsity).
    Each returned mask has its tensor's shape.
    Taught in notebooks/04_pruning.ipynb, "3. Layer-wise or global?".
    """
    if not weights:
        raise ValueError("global_masks needs at least one weight tensor.")
    tensors = {k: check_tensor(v, k) for k, v in weights.items()}
    flat = torch.cat([t.detach().abs().reshape(-1) for t in tensors.values()])
    mask = magnitude_mask(flat, sparsity)
    out, start = {}, 0
    for name, t in tensors.items():
        out[name] = mask[start : start + t.numel()].reshape(t.shape)
        start += t.numel()
    return out


def layer_masks(weights: Mapping[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Layer-wise magnitude pruning: the same sparsity in every tensor.

    Taught in notebooks/04_pruning.ipynb, "3. Layer-wise or global?".
    """
    return {k: magnitude_mask(v, sparsity) for k, v in weights.items()}


def nm_mask(weight: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Semi-structured N:M mask: in every group of m consecutive weights along the input
    dimension keep the n largest |w| (2:4 is what NVIDIA sparse tensor cores run).

    weight: (out, in, ...) with in*prod(...) divisible by m. Returns a bool mask, same shape.
    Taught in notebooks/04_pruning.ipynb, "Semi-structured 2:4 sparsity (GPUs)".
    """
    w = check_tensor(weight, "weight", ndim=(2, 3, 4))
    if not (isinstance(n, int) and isinstance(m, int) and 0 < n < m):
        raise ValueError(f"need integers 0 < n < m, got n={n!r}, m={m!r}.")
    rows = w.detach().reshape(w.shape[0], -1)
    if rows.shape[1] % m:
        raise ValueError(f"each row has {rows.shape[1]} weights, not divisible by m={m}.")
    groups = rows.abs().reshape(-1, m)
    keep = torch.topk(groups, k=n, dim=1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, keep, True)
    return mask.reshape(w.shape)


def prune_model(
    model: nn.Module, sparsity: float, scope: str = "global"
) -> dict[str, torch.Tensor]:
    """Magnitude-prune every Conv2d/Linear weight of ``model`` in place; return the masks.

    scope="global" ranks all weights together, scope="layer" prunes each layer to ``sparsity``.
    Taught in notebooks/04_pruning.ipynb, "3. Layer-wise or global?".
    """
    weights = prunable_weights(model)
    if scope == "global":
        masks = global_masks(weights, sparsity)
    elif scope == "layer":
        masks = layer_masks(weights, sparsity)
    else:
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}.")
    apply_masks(model, masks)
    return masks


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """weight <- weight * mask for each named weight (in place, no gradient).

    Taught in notebooks/04_pruning.ipynb, "9. Why a mask alone does not make the model faster".
    """
    params = dict(model.named_parameters())
    missing = set(masks) - set(params)
    if missing:
        raise ValueError(f"masks name parameters the model does not have: {sorted(missing)}.")
    with torch.no_grad():
        for name, mask in masks.items():
            if mask.shape != params[name].shape:
                raise ValueError(
                    f"mask for {name} has shape {tuple(mask.shape)}, weight {tuple(params[name].shape)}."
                )
            params[name].mul_(mask)


def sparsity(model_or_tensor: nn.Module | torch.Tensor) -> float:
    """Fraction of exact zeros in a tensor, or over all Conv2d/Linear weights of a model.

    Taught in notebooks/04_pruning.ipynb, "2. Unstructured magnitude pruning".
    """
    if isinstance(model_or_tensor, torch.Tensor):
        tensors: Iterable[torch.Tensor] = [model_or_tensor]
    else:
        tensors = prunable_weights(model_or_tensor).values()
    zeros = total = 0
    for t in tensors:
        zeros += int((t == 0).sum())
        total += t.numel()
    return zeros / total


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of zeros in each Conv2d/Linear weight.

    Taught in notebooks/04_pruning.ipynb, "3. Layer-wise or global?".
    """
    return {k: sparsity(v) for k, v in prunable_weights(model).items()}


def fine_tune(
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
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    check_positive(lr, "lr (learning rate)")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if masks:
        opt.register_step_post_hook(lambda *_: apply_masks(model, masks))
    return train.fit(model, loader, epochs=epochs, optimizer=opt, loss_fn=loss_fn)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader: DataLoader, batches: int | None = None) -> nn.Module:
    """Re-estimate every BatchNorm's running mean/var on ``loader`` (no gradient, in place).

    Pruning changes each conv's output statistics, so the running stats BN learned before
    no longer fit. With momentum=None torch keeps a plain average over the batches seen:
    running_mean = mean over batches of the per-batch channel means (same for var).
    Returns ``model`` in eval mode.
    Taught in notebooks/04_pruning.ipynb, "5. A cheap rescue: re-calibrate BatchNorm".
    """
    if batches is not None and (
        isinstance(batches, bool) or not isinstance(batches, int) or batches < 1
    ):
        raise ValueError(f"batches must be None (all) or a positive integer, got {batches!r}.")
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    for i, (x, _) in enumerate(loader):
        if batches is not None and i >= batches:
            break
        model(x)
    for bn, momentum in zip(bns, saved, strict=True):
        bn.momentum = momentum
    return model.eval()


def sensitivity_scan(
    model: nn.Module,
    loader: DataLoader,
    sparsities: Sequence[float],
) -> dict[str, list[float]]:
    """Accuracy when ONE layer at a time is magnitude-pruned (no fine-tune).

    Returns {weight name: [accuracy at each sparsity]}; the model itself is not changed.
    Taught in notebooks/04_pruning.ipynb, "4. Sensitivity scan: which layer can lose what?".
    """
    if not sparsities:
        raise ValueError("sparsities must list at least one sparsity, e.g. [0.5, 0.9].")
    for s in sparsities:
        check_fraction(s, "sparsity")
    result: dict[str, list[float]] = {}
    for name in prunable_weights(model):
        accs = []
        for s in sparsities:
            pruned = copy.deepcopy(model)
            w = prunable_weights(pruned)[name]
            apply_masks(pruned, {name: magnitude_mask(w, s)})
            accs.append(train.evaluate(pruned, loader)["accuracy"])
        result[name] = accs
    return result


def sparsity_schedule(final: float, steps: int) -> list[float]:
    """Cubic schedule of Zhu & Gupta (2017): s_i = s_f * (1 - (1 - i/steps)^3), i = 1..steps.

    Prunes fast while many redundant weights remain, slowly near the end.
    Taught in notebooks/04_pruning.ipynb, "7. Iterative pruning with a schedule".
    """
    check_fraction(final, "final sparsity")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
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
    history = []
    for s in sparsity_schedule(final_sparsity, steps):
        masks = prune_model(model, s, scope)
        before = train.evaluate(model, eval_loader)["accuracy"]
        fine_tune(model, train_loader, masks, epochs=epochs, lr=lr)
        after = train.evaluate(model, eval_loader)["accuracy"]
        history.append({"sparsity": s, "acc_pruned": before, "acc_finetuned": after})
    return history


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """sum |w| over every Conv2d/Linear weight (pushes small weights to exactly 0).

    Taught in notebooks/04_pruning.ipynb, "8. L1 regularisation: teaching the model to be prunable".
    """
    return sum(w.abs().sum() for w in prunable_weights(model).values())  # type: ignore[return-value]


def l1_loss_fn(lam: float) -> train.LossFn:
    """Loss for labkit.train.fit: cross_entropy(model(x), y) + lam * sum |w|.

    Taught in notebooks/04_pruning.ipynb, "8. L1 regularisation: teaching the model to be prunable".
    """
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not lam >= 0:
        raise ValueError(f"lam must be a number >= 0 (e.g. 1e-4), got {lam!r}.")

    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y) + lam * l1_penalty(model)

    return loss


# ----------------------------------------------------------------------------- storage
def storage_bytes(
    weight: torch.Tensor, value_bytes: int = 4, index_bytes: int = 4
) -> dict[str, int]:
    """Bytes to store ``weight`` densely, as CSR and as a bitmask (viewed as (rows, cols)).

    rows = weight.shape[0], cols = numel / rows, nnz = number of non-zeros:
      dense   = numel * value_bytes
      csr     = nnz * (value_bytes + index_bytes) + (rows + 1) * index_bytes
      bitmask = nnz * value_bytes + ceil(numel / 8)
    Taught in notebooks/04_pruning.ipynb, "Where unstructured sparsity does pay: storage".
    """
    w = check_tensor(weight, "weight")
    for name, v in (("value_bytes", value_bytes), ("index_bytes", index_bytes)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer (bytes), got {v!r}.")
    rows = w.shape[0] if w.ndim else 1
    nnz = int((w != 0).sum())
    return {
        "dense": w.numel() * value_bytes,
        "csr": nnz * (value_bytes + index_bytes) + (rows + 1) * index_bytes,
        "bitmask": nnz * value_bytes + math.ceil(w.numel() / 8),
    }


def model_storage_bytes(
    model: nn.Module, value_bytes: int = 4, index_bytes: int = 4
) -> dict[str, int]:
    """``storage_bytes`` summed over every Conv2d/Linear weight of ``model``.

    Taught in notebooks/04_pruning.ipynb, "Where unstructured sparsity does pay: storage".
    """
    total = {"dense": 0, "csr": 0, "bitmask": 0}
    for w in prunable_weights(model).values():
        for k, v in storage_bytes(w, value_bytes, index_bytes).items():
            total[k] += v
    return total


# ----------------------------------------------------------------------------- structured
def channel_scores(
    conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None, criterion: str = "l1"
) -> torch.Tensor:
    """Importance of each output channel, shape (C_out,).

    "l1": sum |W[c]| of the filter (Li et al., 2017); "bn": |gamma_c| of the following
    BatchNorm (network slimming, Liu et al., 2017).
    Taught in notebooks/04_pruning.ipynb, "10. Structured pruning: remove whole channels".
    """
    if criterion == "l1":
        return conv.weight.detach().abs().sum(dim=(1, 2, 3))
    if criterion == "bn":
        if bn is None:
            raise ValueError("criterion='bn' needs a BatchNorm2d after the conv.")
        return bn.weight.detach().abs()
    raise ValueError(f"criterion must be 'l1' or 'bn', got {criterion!r}.")


def keep_channels(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Sorted indices of the channels to keep: drop the round(ratio*C) lowest scores
    (at least one channel always stays).
    Taught in notebooks/04_pruning.ipynb, "10. Structured pruning: remove whole channels".
    """
    c = scores.numel()
    n_keep = max(1, c - _n_to_prune(check_fraction(ratio, "ratio"), c))
    return torch.topk(scores, k=n_keep).indices.sort().values


def prune_conv_pair(
    conv: nn.Conv2d,
    bn: nn.BatchNorm2d | None,
    consumer: nn.Conv2d | nn.Linear,
    keep: torch.Tensor,
) -> tuple[nn.Conv2d, nn.BatchNorm2d | None, nn.Conv2d | nn.Linear]:
    """New (conv, bn, consumer) with only the output channels ``keep`` of ``conv``.

    conv.weight (C_out, C_in, k, k) -> (K, C_in, k, k); bias, BN gamma/beta/running stats
    -> (K,). Consumer Conv2d weight (D, C_out, k, k) -> (D, K, k, k). Consumer Linear after a
    Flatten: each channel owns S = in_features / C_out consecutive inputs (c*S ... c*S+S-1),
    so weight (D, C_out*S) -> (D, K*S). The originals are not modified.
    Taught in notebooks/04_pruning.ipynb, "10. Structured pruning: remove whole channels".
    """
    if conv.groups != 1 or (isinstance(consumer, nn.Conv2d) and consumer.groups != 1):
        raise ValueError("prune_conv_pair supports ordinary convolutions (groups=1) only.")
    keep = torch.as_tensor(keep, dtype=torch.long).to(conv.weight.device)
    c_out = conv.out_channels
    if keep.ndim != 1 or keep.numel() == 0 or int(keep.min()) < 0 or int(keep.max()) >= c_out:
        raise ValueError(f"keep must be a non-empty 1-D list of channel indices in [0, {c_out}).")
    k = keep.numel()
    new_conv = nn.Conv2d(
        conv.in_channels,
        k,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    ).to(conv.weight.device, conv.weight.dtype)
    with torch.no_grad():
        new_conv.weight.copy_(conv.weight[keep])  # (K, C_in, k, k)
        if conv.bias is not None:
            new_conv.bias.copy_(conv.bias[keep])
    new_bn = None
    if bn is not None:
        if bn.num_features != c_out:
            raise ValueError(
                f"BatchNorm has {bn.num_features} features but the conv {c_out} channels."
            )
        new_bn = nn.BatchNorm2d(k, bn.eps, bn.momentum, bn.affine, bn.track_running_stats).to(
            conv.weight.device
        )
        with torch.no_grad():
            if bn.affine:
                new_bn.weight.copy_(bn.weight[keep])
                new_bn.bias.copy_(bn.bias[keep])
            if bn.track_running_stats:
                new_bn.running_mean.copy_(bn.running_mean[keep])
                new_bn.running_var.copy_(bn.running_var[keep])
                new_bn.num_batches_tracked.copy_(bn.num_batches_tracked)
        new_bn.train(bn.training)
    if isinstance(consumer, nn.Conv2d):
        if consumer.in_channels != c_out:
            raise ValueError(
                f"next conv expects {consumer.in_channels} input channels, conv gives {c_out}."
            )
        new_next: nn.Conv2d | nn.Linear = nn.Conv2d(
            k,
            consumer.out_channels,
            consumer.kernel_size,
            consumer.stride,
            consumer.padding,
            consumer.dilation,
            bias=consumer.bias is not None,
            padding_mode=consumer.padding_mode,
        )
        cols = keep
    elif isinstance(consumer, nn.Linear):
        if consumer.in_features % c_out:
            raise ValueError(
                f"Linear has {consumer.in_features} inputs, not a multiple of {c_out} channels."
            )
        s = consumer.in_features // c_out
        cols = (keep[:, None] * s + torch.arange(s, device=keep.device)).reshape(-1)
        new_next = nn.Linear(k * s, consumer.out_features, bias=consumer.bias is not None)
    else:
        raise ValueError(
            f"the consumer must be nn.Conv2d or nn.Linear, got {type(consumer).__name__}."
        )
    new_next = new_next.to(consumer.weight.device, consumer.weight.dtype)
    with torch.no_grad():
        new_next.weight.copy_(consumer.weight[:, cols])
        if consumer.bias is not None:
            new_next.bias.copy_(consumer.bias)
    for old, new in ((conv, new_conv), (consumer, new_next)):
        new.train(old.training)
    return new_conv, new_bn, new_next


def _conv_chains(model: nn.Sequential) -> list[tuple[int, int | None, int]]:
    """(conv index, its BatchNorm index or None, consumer index) for each prunable conv."""
    chains = []
    layers = list(model)
    for i, layer in enumerate(layers):
        if not isinstance(layer, nn.Conv2d):
            continue
        bn, flattened, consumer = None, False, None
        for j in range(i + 1, len(layers)):
            nxt = layers[j]
            if isinstance(nxt, nn.BatchNorm2d) and bn is None and not flattened:
                bn = j
            elif isinstance(nxt, nn.Flatten):
                flattened = True
            elif (
                isinstance(nxt, nn.Conv2d)
                and not flattened
                or isinstance(nxt, nn.Linear)
                and flattened
            ):
                consumer = j
                break
            elif not isinstance(nxt, CHANNELWISE):
                raise ValueError(
                    f"layer {j} ({type(nxt).__name__}) sits between conv {i} and its consumer; "
                    "prune_channels handles Conv2d/BatchNorm2d/activations/pooling/Flatten/Linear only."
                )
        if consumer is not None:  # a conv whose output is the model's output cannot shrink
            chains.append((i, bn, consumer))
    return chains


def channel_plan(
    model: nn.Sequential, ratio: float, criterion: str = "l1"
) -> dict[int, torch.Tensor]:
    """{conv index in the Sequential: sorted channel indices to keep} for ``prune_channels``.

    Taught in notebooks/04_pruning.ipynb, "10. Structured pruning: remove whole channels".
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError("prune_channels works on an nn.Sequential such as labkit.models.cnn().")
    plan = {}
    for i, bn, _ in _conv_chains(model):
        scores = channel_scores(model[i], model[bn] if bn is not None else None, criterion)
        plan[i] = keep_channels(scores, ratio)
    return plan


def prune_channels(
    model: nn.Sequential,
    ratio: float,
    *,
    criterion: str = "l1",
    keep: Mapping[int, torch.Tensor] | None = None,
) -> nn.Sequential:
    """A physically smaller copy of ``model`` with ``ratio`` of each conv's output channels removed.

    For every Conv2d that feeds another Conv2d (or a Linear after Flatten): keep the
    channels of ``channel_plan`` (or ``keep``), slice its BatchNorm and the consumer's input
    channels (``prune_conv_pair``). MACs of a conv scale with C_in * C_out, so removing half
    the channels everywhere cuts them to about a quarter. ``model`` is not changed.
    Taught in notebooks/04_pruning.ipynb, "10. Structured pruning: remove whole channels".
    """
    plan = dict(keep) if keep is not None else channel_plan(model, ratio, criterion)
    small = copy.deepcopy(model)
    chains = {i: (bn, c) for i, bn, c in _conv_chains(small)}
    unknown = set(plan) - set(chains)
    if unknown:
        raise ValueError(f"keep names layers that are not prunable convs: {sorted(unknown)}.")
    for i in sorted(plan):
        bn, c = chains[i]
        conv, new_bn, nxt = prune_conv_pair(
            small[i], small[bn] if bn is not None else None, small[c], plan[i]
        )
        small[i], small[c] = conv, nxt
        if bn is not None:
            small[bn] = new_bn
    return small


def masked_forward_equivalent(
    model: nn.Sequential, plan: Mapping[int, torch.Tensor]
) -> nn.Sequential:
    """A same-size copy where the removed channels are cut off from the rest of the network:
    the consumer's input weights from them are zeroed. Its output equals
    ``prune_channels(model, keep=plan)``'s output: the reference for tests and the notebook.
    Taught in notebooks/04_pruning.ipynb, "10. Structured pruning: remove whole channels".
    """
    masked = copy.deepcopy(model)
    chains = {i: c for i, _, c in _conv_chains(masked)}
    with torch.no_grad():
        for i, kept in plan.items():
            consumer = masked[chains[i]]
            c_out = masked[i].out_channels
            drop = torch.ones(c_out, dtype=torch.bool)
            drop[torch.as_tensor(kept)] = False
            if isinstance(consumer, nn.Conv2d):
                consumer.weight[:, drop] = 0
            else:
                s = consumer.in_features // c_out
                consumer.weight[:, drop.repeat_interleave(s)] = 0
    return masked


# ----------------------------------------------------------------------------- timing plumbing
# Below: how the lesson times things, not what it teaches. Every comparison is one interleaved
# labkit.bench.compare run (taught in notebook 00); these functions only build the variants.


def inference_fn(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> model(x)`` in eval mode under torch.inference_mode (what we time).

    Taught in notebooks/04_pruning.ipynb, "10. Structured pruning: remove whole channels".
    """
    model.eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return run


MAX_MATMUL_BYTES = 2 * 2**30  # refuse a W or X above 2 GiB before allocating it


def sparse_matmul_latency(
    rows: int,
    cols: int,
    batch: int,
    sparsities: Sequence[float],
    *,
    threads: int = 2,
    rounds: int = 9,
    repeats: int = 5,
    seed: int = 0,
) -> tuple[list[dict[str, float | str]], bench.Comparison]:
    """Time W @ X, W (rows, cols) magnitude-pruned, X (cols, batch): ONE dense baseline
    against torch's CSR kernel at each sparsity, in one interleaved ``bench.compare`` run.

    Dense cost ~ rows*cols*batch whatever the zeros (the dense kernel multiplies them
    too), so the dense matmul is timed once per shape, on the unpruned W. CSR cost ~
    nnz*batch + an overhead per non-zero (index load, irregular access), so CSR wins only
    at high sparsity. Returns (rows {"sparsity", "csr_ms", "speedup", "iqr_low",
    "iqr_high", "verdict"}, the Comparison with "dense" as baseline).
    Taught in notebooks/04_pruning.ipynb, "Where unstructured sparsity does pay: sparse kernels at high sparsity".
    """
    for name, v in (("rows", rows), ("cols", cols), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}.")
    biggest = max(rows * cols, cols * batch, rows * batch) * 4
    if biggest > MAX_MATMUL_BYTES:
        raise ValueError(
            f"rows={rows}, cols={cols}, batch={batch} needs a {biggest / 2**30:.1f} GiB tensor "
            f"(limit {MAX_MATMUL_BYTES / 2**30:.0f} GiB); use sizes around 1024."
        )
    if not sparsities:
        raise ValueError("sparsities must name at least one sparsity, e.g. [0.5, 0.9].")
    levels = [check_fraction(s, "sparsity") for s in sparsities]
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=gen)
    x = torch.randn(cols, batch, generator=gen)
    fns: dict[str, Callable[[], object]] = {"dense": functools.partial(torch.mm, w, x)}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        for s in levels:
            wm = w * magnitude_mask(w, s)
            csr = wm.to_sparse_csr()
            if not torch.allclose(torch.mm(csr, x), wm @ x, atol=1e-3, rtol=1e-4):
                raise RuntimeError(
                    "CSR and dense products differ; the sparse kernel is broken here."
                )
            fns[f"csr {s:g}"] = functools.partial(torch.mm, csr, x)
        cmp = bench.compare(fns, baseline="dense", rounds=rounds, repeats=repeats, threads=threads)
    out: list[dict[str, float | str]] = []
    for s in levels:
        name = f"csr {s:g}"
        lo, hi = cmp.spread[name]
        out.append(
            {
                "sparsity": s,
                "csr_ms": cmp.median_ms[name],
                "speedup": cmp.speedup[name],
                "iqr_low": lo,
                "iqr_high": hi,
                "verdict": "CSR faster"
                if cmp.clear(name) and cmp.speedup[name] > 1
                else "dense faster"
                if cmp.clear(name)
                else "no clear difference",
            }
        )
    return out, cmp


def semi_structured_latency(
    rows: int = 4096, cols: int = 4096, batch: int = 4096, rounds: int = 10, repeats: int = 5
) -> dict[str, float | str]:
    """CUDA only: y = x @ W.T in fp16 with W dense vs W stored 2:4 semi-structured
    (torch.sparse.to_sparse_semi_structured, sparse tensor cores, compute capability >= 8.0).

    One interleaved ``bench.compare`` run. Returns median ms of both, the speed-up, the
    verdict sentence and the max |difference| of the outputs.
    Taught in notebooks/04_pruning.ipynb, "Semi-structured 2:4 sparsity (GPUs)".
    """
    from torch.sparse import to_sparse_semi_structured

    from labkit.core.errors import MissingDependency, require_cuda

    dev = require_cuda("2:4 semi-structured sparse matmul")
    if torch.cuda.get_device_capability(dev) < (8, 0):
        raise MissingDependency(
            "2:4 sparse tensor cores need an Ampere or newer GPU (compute capability >= 8.0)."
        )
    gen = torch.Generator(device=dev).manual_seed(0)
    w = torch.randn(rows, cols, device=dev, dtype=torch.float16, generator=gen)
    w = w * nm_mask(w, 2, 4)
    x = torch.randn(batch, cols, device=dev, dtype=torch.float16, generator=gen)
    w_sparse = to_sparse_semi_structured(w)

    def synced(weight: torch.Tensor) -> Callable[[], object]:
        def run() -> object:  # GPU work is asynchronous: wait for it inside the timed call
            out = F.linear(x, weight)
            torch.cuda.synchronize()
            return out

        return run

    cmp = bench.compare(
        {"dense": synced(w), "2:4 sparse": synced(w_sparse)}, rounds=rounds, repeats=repeats
    )
    diff = (F.linear(x, w_sparse) - F.linear(x, w)).abs().max().item()
    return {
        "dense_ms": cmp.median_ms["dense"],
        "sparse_ms": cmp.median_ms["2:4 sparse"],
        "speedup": cmp.speedup["2:4 sparse"],
        "verdict": cmp.verdict("2:4 sparse"),
        "max_abs_diff": diff,
    }
