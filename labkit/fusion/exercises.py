"""Exercises of notebook 07: fold a BatchNorm into a conv; fuse three linears into one."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from labkit import fusion
from labkit.core.checks import Case, Exercise, close


def _random_bn(c: int, seed: int, eps: float = 1e-5) -> nn.BatchNorm2d:
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(c, eps=eps)
    bn.running_mean = torch.randn(c, generator=g)
    bn.running_var = torch.rand(c, generator=g) * 3 + 0.05
    with torch.no_grad():
        bn.weight.copy_(torch.randn(c, generator=g))
        bn.bias.copy_(torch.randn(c, generator=g))
    return bn.eval()


def _conv(c_in: int, c_out: int, k: int, seed: int, **kw: Any) -> nn.Conv2d:
    torch.manual_seed(seed)
    kw.setdefault("padding", k // 2)
    return nn.Conv2d(c_in, c_out, k, **kw).eval()


def _same_module(example: torch.Tensor, kind: type[nn.Module]) -> Any:
    """Compare two modules by what they compute on ``example`` (and by their type)."""
    compare = close(atol=1e-5, rtol=1e-4)

    def check(got: Any, expected: Any) -> str | None:
        if not isinstance(got, kind):
            return f"expected an nn.{kind.__name__}, got {type(got).__name__}"
        with torch.no_grad():
            msg = compare(got(example), expected(example))
        return f"its output differs from the reference: {msg}" if msg else None

    return check


def _fold_cases() -> list[Case]:
    return [
        Case((_conv(4, 4, 3, 0, bias=False), _random_bn(4, 1)), label="conv without bias"),
        Case((_conv(4, 6, 3, 2, bias=True), _random_bn(6, 3)), label="conv with bias"),
        Case((_conv(4, 6, 3, 4, groups=2), _random_bn(6, 5)), label="grouped conv (groups=2)"),
        Case(
            (_conv(4, 4, 1, 6, groups=4), _random_bn(4, 7, eps=0.5)), label="depthwise 1x1, eps=0.5"
        ),
        Case(
            (_conv(4, 6, 3, 8, stride=2), _random_bn(6, 9)), label="stride 2 (a downsampling conv)"
        ),
        Case(
            (_conv(4, 4, 3, 10, padding=0, bias=False), _random_bn(4, 11)),
            label="no padding (padding=0)",
        ),
        Case(
            (_conv(4, 4, 3, 12, padding=2, dilation=2), _random_bn(4, 13)),
            label="dilated conv (dilation=2, padding=2)",
        ),
        Case(
            (_conv(4, 8, 3, 14, stride=(2, 1), padding=(1, 0), groups=4), _random_bn(8, 15)),
            label="stride (2, 1), padding (1, 0), groups=4",
        ),
    ]


def _linear(d_in: int, d_out: int, seed: int, bias: bool = True) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d_in, d_out, bias=bias)


def _qkv_cases() -> list[Case]:
    return [
        Case(tuple(_linear(8, 8, s) for s in (0, 1, 2)), label="three 8->8 linears with bias"),
        Case(tuple(_linear(8, 8, s, bias=False) for s in (3, 4, 5)), label="no biases"),
        Case(
            (_linear(8, 8, 6), _linear(8, 2, 7), _linear(8, 2, 8)),
            label="smaller K and V (8, 2, 2)",
        ),
        Case(
            (_linear(8, 4, 9), _linear(8, 6, 10), _linear(8, 2, 11)),
            label="three different widths (4, 6, 2)",
        ),
        Case(
            (_linear(8, 8, 12, bias=False), _linear(8, 8, 13), _linear(8, 8, 14, bias=False)),
            label="only K has a bias (a missing bias counts as zeros)",
        ),
    ]


EXERCISES = {
    "fusion.fold_conv_bn": Exercise(
        reference=fusion.fold_conv_bn,
        cases=_fold_cases,
        compare=_same_module(
            torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(9)), nn.Conv2d
        ),
        hint="In eval mode BN is a fixed scale and shift per OUTPUT channel; find both from the running "
        "statistics, then push them into the conv's weight and bias. The new conv must keep "
        "every setting of the old one (kernel, stride, padding, dilation, groups).",
        formula="s = γ / sqrt(running_var + eps);  W' = W · s[:, None, None, None];  "
        "b' = (b − running_mean) · s + β  (b = 0 when conv.bias is None); easiest: "
        "copy.deepcopy(conv) and overwrite its weight and bias.",
    ),
    "fusion.fuse_qkv": Exercise(
        reference=fusion.fuse_qkv,
        cases=_qkv_cases,
        compare=_same_module(
            torch.randn(3, 8, generator=torch.Generator().manual_seed(10)), nn.Linear
        ),
        hint="nn.Linear stores weight as (out_features, in_features). The three layers read the "
        "same input, so which dimension grows when you put their outputs side by side? Mind "
        "the biases too: some layers may have none.",
        formula="W = torch.cat([Wq, Wk, Wv], dim=0) of shape (d_q + d_k + d_v, d_in); "
        "b = torch.cat([b_q, b_k, b_v]) with zeros for a missing bias (bias=False if none has one).",
    ),
}
