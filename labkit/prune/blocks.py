"""Notebook 04, part 12: pruning whole transformer blocks (layer pruning).

A pre-LN block adds to its input, x_out = x_in + f(x_in), so a block can be taken out and the
model still runs: the next block reads x_in instead. A block that barely turns its tokens,
x_out ~ x_in, should cost the least to drop. ShortGPT (Men et al., 2024) scores block l by its
**block influence**, one minus the cosine similarity of its input and output tokens:

    BI_l = 1 - mean over examples n and tokens t of cos(x_in[n, t], x_out[n, t])

BI = 0: the block leaves every token's direction as it was; BI near 1: it turns them a lot.
Dropping the blocks of smallest BI is compared with dropping the last blocks.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from labkit.core.errors import check_int, check_same_shape, check_tensor
from labkit.prune.heads import _check_blocks_loader, transformer_blocks


def block_influence(h_in: torch.Tensor, h_out: torch.Tensor) -> torch.Tensor:
    """BI = 1 - mean over tokens of cos(h_in[n, t], h_out[n, t]): ShortGPT's block influence.

    h_in, h_out: (N, T, d), a block's input and output; the cosine is taken per token over the
    d features, then averaged over the N*T tokens. Returns a 0-dim tensor in [0, 2].
    Taught in notebooks/04_pruning.ipynb, "12. Whole blocks: layer pruning".
    """
    _check_influence(h_in, h_out)
    cos = F.cosine_similarity(h_in, h_out, dim=-1)  # (N, T): one cosine per token
    return 1 - cos.mean()


def block_influences(model: nn.Module, loader: DataLoader) -> torch.Tensor:
    """BI of every block of ``model`` on the data of ``loader``: (L,), see block_influence.

    Forward hooks record each block's input and output (the full model runs, no block
    dropped); the per-batch BIs are averaged weighted by the batch's examples.
    Taught in notebooks/04_pruning.ipynb, "12. Whole blocks: layer pruning".
    """
    blocks = _check_blocks_loader(model, loader)
    total, count = torch.zeros(len(blocks)), 0  # (L,)

    def record(layer: int):
        def hook(module: nn.Module, args: tuple, out: tuple) -> None:
            total[layer] += block_influence(args[0], out[0]) * len(args[0])

        return hook

    hooks = [b.register_forward_hook(record(i)) for i, b in enumerate(blocks)]
    try:
        model.eval()
        with torch.no_grad():
            for x, _ in loader:
                model(x)
                count += len(x)
    finally:
        for h in hooks:
            h.remove()
    return total / count  # (L,)


class SkippedBlock(nn.Module):
    """What a dropped block becomes: forward(x) = (x, None), the residual path alone.

    Used by drop_blocks (labkit/prune/blocks.py); it keeps a block's (x, cache) output shape.
    """

    def forward(self, x: torch.Tensor, past: object = None) -> tuple[torch.Tensor, None]:
        return x, None


def drop_blocks(model: nn.Module, drop: Sequence[int]) -> nn.Module:
    """A copy of ``model`` whose blocks ``drop`` (indices in forward order) are taken out.

    Each dropped block is replaced by SkippedBlock (x -> x): its parameters are gone, and the
    next block reads what the dropped one would have read. The original is not modified.
    Taught in notebooks/04_pruning.ipynb, "12. Whole blocks: layer pruning".
    """
    _check_drop(model, drop)
    small = copy.deepcopy(model)
    targets = {id(b) for i, b in enumerate(transformer_blocks(small)) if i in set(drop)}
    for parent in list(small.modules()):
        for name, child in parent.named_children():
            if id(child) in targets:
                setattr(parent, name, SkippedBlock())  # works in a ModuleList too
    return small


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_influence(h_in: object, h_out: object) -> None:
    check_tensor(h_in, "h_in", ndim=3)
    check_tensor(h_out, "h_out", ndim=3)
    check_same_shape(h_in, h_out, "h_in, h_out")
    if h_in.numel() == 0:  # type: ignore[union-attr]
        raise ValueError(
            f"h_in has shape {tuple(h_in.shape)}: need N, T, d all >= 1 (a cosine needs a vector)."  # type: ignore[union-attr]
        )


def _check_drop(model: object, drop: object) -> None:
    n = len(transformer_blocks(model))  # type: ignore[arg-type]
    if not isinstance(drop, Sequence) or isinstance(drop, str):
        raise ValueError(f"drop must be a list of block indices, got {drop!r}.")
    for i in drop:
        check_int(i, "drop[i]", low=0, high=n - 1)
    if len(set(drop)) != len(drop):
        raise ValueError(f"drop lists a block twice: {list(drop)!r}.")
