"""Notebook 04, part 10: structured pruning, whole channels removed from the architecture.

``prune_channels`` deletes a conv's output channels and the matching input channels of the
layer that consumes them, giving a physically smaller ``nn.Sequential``: fewer parameters,
fewer MACs (a conv's MACs scale with C_in * C_out) and a real speed-up on dense kernels.

Which channels go: each output channel c gets a score (higher = keep), ``channel_scores``:

    l1       sum |W[c]|, the filter's L1 norm (Li et al., 2017): weights alone
    bn       |gamma_c| of the BatchNorm after the conv (network slimming, Liu et al., 2017)
    random   uniform random numbers (seeded): the control every criterion must beat
    taylor   mean over images n of |sum_{h,w} a[n,c,h,w] * dL/da[n,c,h,w]| (Molchanov et al.,
             2017): the first-order change of the loss when channel c's output a is set to 0
    entropy  entropy (bits) of the histogram of channel c's mean activation over the images
             (Luo & Wu, 2017): a channel that says the same for every image says little

``a`` is what the consumer (the next conv, or the Linear after Flatten) receives from channel
c: exactly what ``prune_channels`` cuts away. With BatchNorm after a conv the conv's scale
divides out, BN(s * conv(x)) = BN(conv(x)) for any s > 0 (up to eps), so a filter's norm
alone says nothing about how large its channel's output is.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from labkit.core.errors import check_choice, check_fraction, check_int, check_model

CRITERIA = ("l1", "bn", "random", "taylor", "entropy")
NEEDS_DATA = ("taylor", "entropy")  # scored from activations on a loader
ENTROPY_BINS = 32

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
    _check_pair(conv, bn, consumer, keep)
    keep = torch.as_tensor(keep, dtype=torch.long).to(conv.weight.device)  # (K,)
    new_conv = _conv_like(conv, conv.in_channels, len(keep)).to(conv.weight.dtype)
    with torch.no_grad():
        new_conv.weight.copy_(conv.weight[keep])  # (K, C_in, k, k)
        if conv.bias is not None:
            new_conv.bias.copy_(conv.bias[keep])  # (K,)
    new_bn = _bn_slice(bn, keep) if bn is not None else None
    if isinstance(consumer, nn.Conv2d):
        new_next: nn.Conv2d | nn.Linear = _conv_like(consumer, len(keep), consumer.out_channels)
        cols = keep  # the consumer's input channels
    else:  # a Linear after Flatten: channel c owns the S inputs c*S ... c*S + S-1
        s = consumer.in_features // conv.out_channels
        cols = (keep[:, None] * s + torch.arange(s, device=keep.device)).reshape(-1)  # (K*S,)
        new_next = nn.Linear(len(keep) * s, consumer.out_features, bias=consumer.bias is not None)
    new_next = new_next.to(consumer.weight.device, consumer.weight.dtype)
    with torch.no_grad():
        new_next.weight.copy_(consumer.weight[:, cols])  # (D, K, k, k) or (D, K*S)
        if consumer.bias is not None:
            new_next.bias.copy_(consumer.bias)  # the consumer's outputs are all kept
    for old, new in ((conv, new_conv), (consumer, new_next)):
        new.train(old.training)
    return new_conv, new_bn, new_next


def channel_scores(
    model: nn.Sequential,
    criterion: str = "l1",
    loader: DataLoader | None = None,
    *,
    seed: int = 0,
) -> dict[int, torch.Tensor]:
    """{conv index: (C_out,) score} for every prunable conv of ``model`` (higher = keep).

    "l1", "bn", "random" need no data; "taylor" and "entropy" run ``loader`` through the
    model in eval mode (the model and its .grad are not changed). Formulas: module docstring.
    Used by channel_plan (this module).
    """
    chains = _check_scores(model, criterion, loader, seed)
    if criterion in NEEDS_DATA:
        return _data_scores(model, chains, criterion, loader)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(seed)
    scores = {}
    for i, bn, _ in chains:
        w = model[i].weight.detach()  # (C_out, C_in, k, k)
        if criterion == "l1":
            scores[i] = w.abs().sum(dim=(1, 2, 3))  # (C_out,)
        elif criterion == "bn":
            scores[i] = model[bn].weight.detach().abs()  # (C_out,) |gamma|
        else:
            scores[i] = torch.rand(w.shape[0], generator=gen)  # (C_out,)
    return scores


def channel_plan(
    model: nn.Sequential,
    ratio: float,
    criterion: str = "l1",
    loader: DataLoader | None = None,
    *,
    seed: int = 0,
) -> dict[int, torch.Tensor]:
    """{conv index in the Sequential: sorted channel indices to keep} for ``prune_channels``.

    The round(ratio * C) lowest-scoring channels of each conv go (``channel_scores``; at
    least one channel stays).
    Taught in notebooks/04_pruning.ipynb, "10. Structured pruning: remove whole channels".
    """
    check_fraction(ratio, "ratio")
    plan = {}
    for i, scores in channel_scores(model, criterion, loader, seed=seed).items():
        n_keep = max(1, len(scores) - round(ratio * len(scores)))
        plan[i] = torch.topk(scores, k=n_keep).indices.sort().values  # (K,) sorted
    return plan


def prune_channels(
    model: nn.Sequential,
    ratio: float,
    *,
    criterion: str = "l1",
    keep: Mapping[int, torch.Tensor] | None = None,
    loader: DataLoader | None = None,
    seed: int = 0,
) -> nn.Sequential:
    """A physically smaller copy of ``model`` with ``ratio`` of each conv's output channels removed.

    For every Conv2d that feeds another Conv2d (or a Linear after Flatten): keep the
    channels of ``channel_plan`` (criterion, loader, seed; or ``keep``), slice its BatchNorm and the consumer's input
    channels (``prune_conv_pair``). MACs of a conv scale with C_in * C_out, so removing half
    the channels everywhere cuts them to about a quarter. ``model`` is not changed.
    Taught in notebooks/04_pruning.ipynb, "10. Structured pruning: remove whole channels".
    """
    _check_prune_channels(model, ratio, keep)
    plan = (
        dict(keep) if keep is not None else channel_plan(model, ratio, criterion, loader, seed=seed)
    )
    small = copy.deepcopy(model)
    chains = {i: (bn, c) for i, bn, c in _conv_chains(small)}
    for i in sorted(plan):
        bn, c = chains[i]
        new_bn = small[bn] if bn is not None else None
        small[i], new_bn, small[c] = prune_conv_pair(small[i], new_bn, small[c], plan[i])
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
    _check_plan(model, plan)
    masked = copy.deepcopy(model)
    chains = {i: c for i, _, c in _conv_chains(masked)}
    with torch.no_grad():
        for i, kept in plan.items():
            consumer, c_out = masked[chains[i]], masked[i].out_channels
            drop = torch.ones(c_out, dtype=torch.bool)  # (C_out,)
            drop[torch.as_tensor(kept)] = False
            if isinstance(consumer, nn.Conv2d):
                consumer.weight[:, drop] = 0  # (D, C_out, k, k): inputs from dropped channels
            else:
                s = consumer.in_features // c_out
                consumer.weight[:, drop.repeat_interleave(s)] = 0  # (D, C_out * S)
    return masked


def _data_scores(
    model: nn.Sequential,
    chains: list[tuple[int, int | None, int]],
    criterion: str,
    loader: Iterable,
) -> dict[int, torch.Tensor]:
    """Taylor or entropy scores from what each consumer receives (and the loss gradient)."""
    seen: dict[int, torch.Tensor] = {}  # conv index -> what its consumer receives

    def grab(i: int):  # type: ignore[no-untyped-def]
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            seen[i] = inputs[0]  # (N, C, H, W), or (N, C*S) after Flatten

        return hook

    hooks = [model[c].register_forward_pre_hook(grab(i)) for i, _, c in chains]
    c_out = {i: model[i].out_channels for i, _, _ in chains}
    was_training = model.training
    model.eval()
    taylor = {i: torch.zeros(model[i].out_channels) for i, _, _ in chains}
    pooled: dict[int, list[torch.Tensor]] = {i: [] for i, _, _ in chains}
    n_images = 0
    try:
        for x, y in loader:
            if criterion == "taylor":
                x = x.detach().requires_grad_(True)  # the graph reaches every activation
                loss = F.cross_entropy(model(x), y, reduction="sum")
                grads = torch.autograd.grad(loss, list(seen.values()))  # dL/da; no .grad set
                for (i, a), g in zip(seen.items(), grads, strict=True):
                    ag = (a * g).reshape(len(x), c_out[i], -1)  # (N, C, S), S = H*W
                    taylor[i] += ag.sum(-1).abs().sum(0).detach()  # (C,)
            else:
                with torch.no_grad():
                    model(x)
                for i, a in seen.items():
                    pooled[i].append(a.reshape(len(x), c_out[i], -1).mean(-1))  # (N, C)
            n_images += len(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if criterion == "taylor":
        return {i: t / n_images for i, t in taylor.items()}
    return {i: _entropy_bits(torch.cat(p)) for i, p in pooled.items()}


def _entropy_bits(acts: torch.Tensor, bins: int = ENTROPY_BINS) -> torch.Tensor:
    """(N, C) activations -> (C,) entropy in bits of each column's histogram over its range."""
    out = torch.zeros(acts.shape[1])
    for c, col in enumerate(acts.T):  # col: (N,)
        lo, hi = float(col.min()), float(col.max())
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):  # constant (a dead ReLU): no information
            continue
        p = torch.histc(col, bins=bins, min=lo, max=hi) / len(col)  # (bins,)
        p = p[p > 0]
        out[c] = -(p * p.log2()).sum()
    return out


def _conv_like(conv: nn.Conv2d, c_in: int, c_out: int) -> nn.Conv2d:
    """A fresh Conv2d with ``conv``'s settings and c_in -> c_out channels, on its device."""
    return nn.Conv2d(
        c_in,
        c_out,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    ).to(conv.weight.device)


def _bn_slice(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    """A BatchNorm2d with the channels ``keep`` of ``bn`` (affine and running stats)."""
    new = nn.BatchNorm2d(len(keep), bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    new = new.to(keep.device)
    with torch.no_grad():
        if bn.affine:
            new.weight.copy_(bn.weight[keep])
            new.bias.copy_(bn.bias[keep])
        if bn.track_running_stats:
            new.running_mean.copy_(bn.running_mean[keep])
            new.running_var.copy_(bn.running_var[keep])
            new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)


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


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_keep(keep: object, c_out: int, name: str = "keep") -> None:
    try:
        k = torch.as_tensor(keep)  # a tensor, a list or an array of channel indices
    except (TypeError, ValueError, RuntimeError):
        k = None
    ok = k is not None and k.ndim == 1 and k.numel() > 0
    ok = ok and not k.is_floating_point() and k.dtype != torch.bool  # type: ignore[union-attr]
    ok = ok and 0 <= int(k.min()) and int(k.max()) < c_out  # type: ignore[union-attr]
    if not ok or len(torch.unique(k)) != len(k):  # type: ignore[arg-type]
        raise ValueError(
            f"{name} must be a non-empty 1-D list of distinct channel indices in [0, {c_out})."
        )


def _check_pair(conv: object, bn: object, consumer: object, keep: object) -> None:
    if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
        raise ValueError(
            f"conv must be an nn.Conv2d with groups=1, got {type(conv).__name__}: "
            "prune_conv_pair supports ordinary convolutions only."
        )
    c_out = conv.out_channels
    _check_keep(keep, c_out)
    if bn is not None and (not isinstance(bn, nn.BatchNorm2d) or bn.num_features != c_out):
        raise ValueError(f"bn must be None or a BatchNorm2d with the conv's {c_out} channels.")
    if isinstance(consumer, nn.Conv2d) and (consumer.groups != 1 or consumer.in_channels != c_out):
        raise ValueError(
            f"consumer (the next conv) expects {consumer.in_channels} input channels, conv "
            f"gives {c_out} (and ordinary convolutions, groups=1, only)."
        )
    if isinstance(consumer, nn.Linear) and consumer.in_features % c_out:
        raise ValueError(
            f"consumer Linear has {consumer.in_features} inputs, not a multiple of {c_out} channels."
        )
    if not isinstance(consumer, (nn.Conv2d, nn.Linear)):
        raise ValueError(
            f"the consumer must be nn.Conv2d or nn.Linear, got {type(consumer).__name__}."
        )


def _check_sequential(model: object) -> list[tuple[int, int | None, int]]:
    check_model(model)
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"model must be an nn.Sequential such as labkit.models.cnn() (prune_channels cuts "
            f"channels between its layers), got {type(model).__name__}."
        )
    return _conv_chains(model)


def _check_scores(
    model: object, criterion: object, loader: object, seed: object
) -> list[tuple[int, int | None, int]]:
    chains = _check_sequential(model)
    check_choice(criterion, "criterion", CRITERIA)
    check_int(seed, "seed", low=0)
    if criterion == "bn" and any(bn is None for _, bn, _ in chains):
        raise ValueError("criterion='bn' needs a BatchNorm2d after the conv.")
    if criterion in NEEDS_DATA:
        if loader is None or isinstance(loader, (str, bytes, dict, torch.Tensor)):
            raise ValueError(
                f"criterion={criterion!r} scores channels from data: pass loader=, e.g. "
                "labkit.data.digits_loaders().train."
            )
        if hasattr(loader, "__len__") and len(loader) == 0:  # type: ignore[arg-type]
            raise ValueError("loader is empty: it yields no batch.")
    return chains


def _check_plan(model: object, plan: object, name: str = "plan") -> None:
    chains = {i: model[i].out_channels for i, _, _ in _check_sequential(model)}  # type: ignore[index]
    if not isinstance(plan, Mapping):
        raise ValueError(f"{name} must be a {{conv index: channels}} dict, got {plan!r}.")
    unknown = set(plan) - set(chains)
    if unknown:
        raise ValueError(f"{name} names layers that are not prunable convs: {sorted(unknown)}.")
    for i, kept in plan.items():
        _check_keep(kept, chains[i], f"{name}[{i}]")


def _check_prune_channels(model: object, ratio: object, keep: object) -> None:
    if keep is None:
        if not _check_sequential(model):
            raise ValueError(
                "model has no Conv2d feeding another Conv2d (or a Linear after Flatten): no "
                "channel can be removed; prune_channels is for conv nets such as labkit.models.cnn()."
            )
        check_fraction(ratio, "ratio")
    else:
        _check_plan(model, keep, "keep")
