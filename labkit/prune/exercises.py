"""Exercises of notebook 04 (pruning)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from labkit import prune
from labkit.core.checks import Case, Exercise


# ----------------------------------------------------------------------------- magnitude mask
def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Reference: bool mask, False at the round(sparsity * numel) smallest |w|.

    Ties: exactly k are pruned; which of several weights of equal magnitude at the threshold
    goes is not specified (torch.topk does not promise an order among equal values), so the
    checker accepts any choice among them.
    """
    return prune.magnitude_mask(weight, sparsity)


def _mask_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    big_negative = torch.randn(6, 5, generator=gen)
    big_negative[0, :3] = torch.tensor([-9.0, -8.0, -7.0])
    pruned_before = torch.randn(5, 8, generator=gen)
    pruned_before[pruned_before.abs() < 0.5] = 0.0  # a weight pruned once already: ties at 0
    return [
        Case((torch.randn(10, generator=gen), 0.3), label="10 weights, sparsity 0.3 (prune 3)"),
        Case((big_negative, 0.5), label="a (6, 5) weight whose largest magnitudes are negative"),
        Case(
            (torch.randn(4, 2, 3, 3, generator=gen), 0.8),
            label="a conv weight (4, 2, 3, 3), sparsity 0.8",
        ),
        Case((torch.randn(5, 4, generator=gen), 0.0), label="sparsity 0.0 (prune nothing)"),
        Case(
            (torch.randn(7, generator=gen), 0.8),
            label="7 weights, sparsity 0.8: round(5.6) = 6 pruned",
        ),
        Case((torch.randn(20, 10, generator=gen), 0.95), label="(20, 10) weight, sparsity 0.95"),
        Case(
            (torch.tensor([[-0.1, -5.0, -0.2], [-3.0, -0.05, -4.0]]), 0.5),
            label="all-negative weights [[-0.1, -5, -0.2], [-3, -0.05, -4]], sparsity 0.5",
        ),
        Case(
            (torch.tensor([[0.1, 0.2, 0.3, 0.4], [5.0, 6.0, 7.0, 8.0]]), 0.5),
            label="rows of different scale [[0.1 .. 0.4], [5 .. 8]], sparsity 0.5 "
            "(rank the whole tensor, not each row)",
        ),
        Case(
            (torch.tensor([0.5, -0.2, 0.2, 0.2, -0.2, 0.9, 0.1, 0.2]), 0.375),
            label="ties at the threshold [0.5, -0.2, 0.2, 0.2, -0.2, 0.9, 0.1, 0.2], sparsity "
            "0.375: prune exactly 3 (the 0.1 and two of the five weights of magnitude 0.2)",
        ),
        Case(
            (pruned_before, 0.25),
            label=f"a (5, 8) weight already pruned once ({int((pruned_before == 0).sum())} exact "
            "zeros), sparsity 0.25: prune exactly 10, all of them zeros",
        ),
        Case(
            (torch.randint(-3, 4, (4, 3, 3), generator=gen) / 4, 0.5),
            label="a (4, 3, 3) weight with only 7 distinct values (many ties), sparsity 0.5",
        ),
    ]


def _check_mask(learner: Callable[..., Any]) -> str | None:
    """Exactly k = round(s * n) pruned, none larger than a kept one; any choice among ties."""
    for case in _mask_cases():
        weight, sparsity = case.args
        given = weight.clone()
        got = learner(given, sparsity)
        if not torch.equal(given, weight):
            return (
                f"on {case.label}: your function changed the weight it was given in place "
                "(e.g. `w.abs_()`); work on a copy: `w.abs()`"
            )
        msg = _compare_mask(got, weight, sparsity)
        if msg:
            return f"on {case.label}: {msg}"
    return None


def _compare_mask(got: Any, weight: torch.Tensor, sparsity: float) -> str | None:
    if got is None:
        return "returned None - did you forget `return`?"
    if not isinstance(got, torch.Tensor):
        return f"return a torch.Tensor mask, got {type(got).__name__}"
    if got.shape != weight.shape:
        return f"mask shape {tuple(got.shape)} but the weight has shape {tuple(weight.shape)}"
    if not torch.isin(got.detach().double(), torch.tensor([0.0, 1.0], dtype=torch.float64)).all():
        return "a mask holds only 0/1 (or False/True) values"
    kept, mags = got.bool(), weight.abs()
    n_pruned, k = int((~kept).sum()), round(sparsity * weight.numel())
    if n_pruned != k:
        tied = k and int((mags == mags.flatten().kthvalue(k).values).sum()) > 1
        ties = (
            "; several weights share the threshold magnitude here: prune only as many of "
            "them as you need to reach exactly k"
            if tied
            else ""
        )
        return f"{n_pruned} weights pruned but k = round(sparsity * numel) = {k}{ties}"
    if k and n_pruned < weight.numel() and mags[~kept].max() > mags[kept].min():
        return "the right number is pruned, but not the weights of smallest |w|"
    return None


# ----------------------------------------------------------------------------- channel removal
def prune_conv_pair(
    conv: nn.Conv2d, next_conv: nn.Conv2d, keep: torch.Tensor
) -> tuple[nn.Conv2d, nn.Conv2d]:
    """Reference: new (conv, next_conv) keeping only output channels ``keep`` of ``conv``.

    The learner writes the conv -> conv case of labkit.prune.prune_conv_pair (no BatchNorm
    between the two: bn=None), so the signature drops ``bn`` and the result drops its None.
    """
    small, _, nxt = prune.prune_conv_pair(conv, None, next_conv, keep)
    assert isinstance(nxt, nn.Conv2d)
    return small, nxt


def _pairs() -> list[tuple[str, nn.Conv2d, nn.Conv2d, torch.Tensor]]:
    torch.manual_seed(0)
    return [
        (
            "Conv2d(3, 6) -> Conv2d(6, 4), with biases, keep [0, 2, 5]",
            nn.Conv2d(3, 6, 3, padding=1),
            nn.Conv2d(6, 4, 3, padding=1),
            torch.tensor([0, 2, 5]),
        ),
        (
            "no biases, keep a single channel [1]",
            nn.Conv2d(2, 4, 3, padding=1, bias=False),
            nn.Conv2d(4, 3, 3, padding=1, bias=False),
            torch.tensor([1]),
        ),
        (
            "stride 2 and a 1x1 next conv, keep [1, 2, 3, 6]",
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.Conv2d(8, 5, 1),
            torch.tensor([1, 2, 3, 6]),
        ),
        (
            "a dilated conv (padding 2, dilation 2, no bias) -> a next conv with stride 2, "
            "padding 2, dilation 2 and a bias, keep [0, 3, 4]",
            nn.Conv2d(4, 6, 3, padding=2, dilation=2, bias=False),
            nn.Conv2d(6, 5, 3, stride=2, padding=2, dilation=2),
            torch.tensor([0, 3, 4]),
        ),
        (
            "rectangular kernels and reflect padding: (1, 3) -> (3, 1) with stride (2, 1), "
            "keep [1, 4]",
            nn.Conv2d(2, 5, (1, 3), padding=(0, 1), padding_mode="reflect", bias=False),
            nn.Conv2d(5, 3, (3, 1), stride=(2, 1), padding=(1, 0), padding_mode="reflect"),
            torch.tensor([1, 4]),
        ),
    ]


SETTINGS = ("kernel_size", "stride", "padding", "dilation", "groups", "padding_mode")


def _check_remove(learner: Callable[..., Any]) -> str | None:
    for label, conv, nxt, keep in _pairs():
        before = (copy.deepcopy(conv.state_dict()), copy.deepcopy(nxt.state_dict()))
        got = learner(conv, nxt, keep.clone())
        if not (isinstance(got, tuple | list) and len(got) == 2):
            return f"{label}: return a tuple (new_conv, new_next_conv), got {type(got).__name__}"
        a, b = got
        if not (isinstance(a, nn.Conv2d) and isinstance(b, nn.Conv2d)):
            return f"{label}: both returned layers must be nn.Conv2d"
        for old, state in zip((conv, nxt), before, strict=True):
            now = old.state_dict()
            if any(now[k].shape != v.shape or not torch.equal(now[k], v) for k, v in state.items()):
                return f"{label}: you changed the original layers; build new ones (torch.no_grad + copy_)"
        for name, new, orig in (("new conv", a, conv), ("next conv", b, nxt)):
            diff = [
                f"{x}={getattr(new, x)!r}" for x in SETTINGS if getattr(new, x) != getattr(orig, x)
            ]
            if diff:
                want = ", ".join(
                    f"{x.split('=')[0]}={getattr(orig, x.split('=')[0])!r}" for x in diff
                )
                return f"{label}: {name} has {', '.join(diff)} but the original has {want}: copy every setting"
        k = len(keep)
        if a.out_channels != k or a.weight.shape[0] != k:
            return f"{label}: new conv has out_channels={a.out_channels}, weight {tuple(a.weight.shape)}; expected {k} channels"
        if b.in_channels != k or b.weight.shape[1] != k:
            return (
                f"{label}: next conv has in_channels={b.in_channels}, weight {tuple(b.weight.shape)}; "
                f"slice its INPUT dimension (weight[:, keep]) to {k}"
            )
        if (a.bias is None) != (conv.bias is None) or (b.bias is None) != (nxt.bias is None):
            return f"{label}: keep a bias exactly where the original layer had one"
        x = torch.randn(2, conv.in_channels, 9, 9, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            h = conv(x)
            ha = a(x)
            if ha.shape != h[:, keep].shape:
                return f"{label}: new conv output {tuple(ha.shape)} vs {tuple(h[:, keep].shape)}; copy stride/padding"
            if not torch.allclose(ha, h[:, keep], atol=1e-5):
                return (
                    f"{label}: new conv(x) is not conv(x)[:, keep]; slice weight AND bias by keep"
                )
            cut = torch.zeros_like(h)
            cut[:, keep] = h[:, keep]
            expected = nxt(cut)
            out = b(ha)
            if out.shape != expected.shape:
                return (
                    f"{label}: next conv's output {tuple(out.shape)} vs {tuple(expected.shape)}; "
                    "copy its stride, padding and dilation"
                )
            if not torch.allclose(out, expected, atol=1e-5):
                return (
                    f"{label}: next conv's output differs from the original fed with the removed "
                    "channels set to 0; slice weight[:, keep] and keep its bias whole"
                )
    return None


# ----------------------------------------------------------------------------- block influence
def block_influence(h_in: torch.Tensor, h_out: torch.Tensor) -> torch.Tensor:
    """Reference: 1 - mean over the N*T tokens of cos(h_in[n, t], h_out[n, t])."""
    return prune.block_influence(h_in, h_out)


def _influence_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4, 8, generator=gen), torch.randn(2, 4, 8, generator=gen)
    loud = torch.randn(1, 8, 6, generator=gen)
    loud[0, 0] *= 100.0  # one token 100x longer than the others
    other = torch.randn(1, 8, 6, generator=gen)
    other[0, 0] = loud[0, 0]  # that token unchanged, the other 7 turned at random
    c = torch.randn(3, 5, 16, generator=gen)
    return [
        Case((a, b), label="random h_in, h_out of shape (2, 4, 8)"),
        Case((a, 3.0 * a), label="h_out = 3 * h_in: same directions, longer (BI = 0)"),
        Case((a, -a), label="h_out = -h_in: every token reversed (BI = 2)"),
        Case(
            (loud, other),
            label="(1, 8, 6): token 0 is 100x longer and unchanged, the other 7 turned at "
            "random (each token counts once, whatever its length)",
        ),
        Case(
            (c, c + 0.3 * torch.randn(3, 5, 16, generator=gen)),
            label="a residual block: h_out = h_in + small noise, shape (3, 5, 16)",
        ),
        Case(
            (torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[0.0, 2.0]]])),
            label="one token, [1, 0] -> [0, 2]: orthogonal (BI = 1)",
        ),  # fmt: skip
    ]


EXERCISES = {
    "prune.magnitude_mask": Exercise(
        reference=magnitude_mask,
        cases=_mask_cases,
        custom=_check_mask,
        hint="rank the weights by size whatever their sign, count how many to prune with "
        "round(), prune exactly that many even when several weights tie at the threshold, and "
        "do not change the weight you were given (no in-place abs_).",
        formula="k = round(sparsity * weight.numel()); the k smallest of weight.abs().flatten() "
        "(torch.topk(..., k, largest=False).indices: exactly k indices, ties or not) get mask "
        "False; k = 0 prunes nothing. A threshold test |w| > t prunes every tie at t.",
    ),
    "prune.prune_conv_pair": Exercise(
        reference=prune_conv_pair,
        custom=_check_remove,
        hint="build two NEW layers: the first loses output channels, the second loses the "
        "matching INPUT channels; copy every constructor setting of BOTH layers (the next one "
        "has its own stride, padding, dilation, padding mode) and the biases that belong.",
        formula="nn.Conv2d(conv.in_channels, len(keep), conv.kernel_size, conv.stride, "
        "conv.padding, conv.dilation, bias=conv.bias is not None, padding_mode=conv.padding_mode)"
        ": weight = conv.weight[keep], bias = conv.bias[keep]; next: the same constructor from "
        "next_conv's settings with len(keep) inputs, weight = next_conv.weight[:, keep], bias "
        "unchanged.",
    ),
    "prune.block_influence": Exercise(
        reference=block_influence,
        cases=_influence_cases,
        hint="compare directions, not lengths, one token at a time (each token's d features "
        "are one vector), average over all N*T tokens, and remember it is ONE MINUS the "
        "similarity: a block that changes nothing scores 0.",
        formula="cos = (h_in * h_out).sum(-1) / (h_in.norm(dim=-1) * h_out.norm(dim=-1))  "
        "# (N, T); return 1 - cos.mean()  (or torch.nn.functional.cosine_similarity(h_in, "
        "h_out, dim=-1)).",
    ),
}
