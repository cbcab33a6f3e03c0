"""Planted wrong answers to notebook 07's exercises must be rejected by the checker."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labkit import checks
from solutions.n07_operator_fusion import fold_conv_bn, fuse_qkv


def fold_without_eps(conv, bn):
    out = fold_conv_bn(conv, bn)
    scale_err = torch.sqrt(bn.running_var + bn.eps) / torch.sqrt(bn.running_var)
    with torch.no_grad():
        out.weight.mul_(scale_err.view(-1, 1, 1, 1))
    return out


def fold_var_not_std(conv, bn):  # divides by var + eps instead of its square root
    out = fold_conv_bn(conv, bn)
    with torch.no_grad():
        out.weight.div_(torch.sqrt(bn.running_var + bn.eps).view(-1, 1, 1, 1))
    return out


def fold_forgets_conv_bias(conv, bn):
    no_bias = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        padding=conv.padding,
        groups=conv.groups,
        bias=False,
    )
    no_bias.weight = conv.weight
    return fold_conv_bn(no_bias, bn)


def fold_forgets_mean(conv, bn):
    bn2 = nn.BatchNorm2d(bn.num_features, eps=bn.eps).eval()
    bn2.load_state_dict(bn.state_dict())
    bn2.running_mean.zero_()
    return fold_conv_bn(conv, bn2)


def fold_ignores_groups(conv, bn):
    wide = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding)
    with torch.no_grad():
        wide.weight.zero_()
        per = conv.in_channels // conv.groups
        outs = conv.out_channels // conv.groups
        for g in range(conv.groups):
            wide.weight[g * outs : (g + 1) * outs, :per] = conv.weight[g * outs : (g + 1) * outs]
        wide.bias = conv.bias
    return fold_conv_bn(wide, bn)


def qkv_cat_on_input_dim(q, k, v):
    fused = nn.Linear(q.in_features * 3, q.out_features, bias=q.bias is not None)
    with torch.no_grad():
        fused.weight.copy_(torch.cat([q.weight, k.weight, v.weight], dim=1))
    return fused


def qkv_drops_bias(q, k, v):
    fused = fuse_qkv(q, k, v)
    if fused.bias is not None:
        with torch.no_grad():
            fused.bias.zero_()
    return fused


def qkv_wrong_order(q, k, v):
    return fuse_qkv(k, q, v)


@pytest.mark.parametrize(
    "wrong",
    [
        fold_without_eps,
        fold_var_not_std,
        fold_forgets_conv_bias,
        fold_forgets_mean,
        fold_ignores_groups,
    ],
)
def test_wrong_folds_are_rejected(wrong):
    result = checks.check("fusion.fold_conv_bn", wrong)
    assert result.attempted and not result.passed, result.message


@pytest.mark.parametrize("wrong", [qkv_cat_on_input_dim, qkv_drops_bias, qkv_wrong_order])
def test_wrong_qkv_fusions_are_rejected(wrong):
    result = checks.check("fusion.fuse_qkv", wrong)
    assert result.attempted and not result.passed, result.message


def test_not_attempted_returns_the_reference():
    def stub(conv, bn):
        raise NotImplementedError

    result = checks.check("fusion.fold_conv_bn", stub)
    assert not result.attempted and "not attempted" in result.message
