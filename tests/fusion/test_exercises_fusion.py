"""Planted wrong answers to notebook 07's exercises must be rejected by the checker."""

from __future__ import annotations

import copy

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


def _fold_into(new_conv, conv, bn):
    """Fill ``new_conv`` with the correctly folded weights of conv + bn."""
    good = fold_conv_bn(conv, bn)
    with torch.no_grad():
        new_conv.weight.copy_(good.weight)
        new_conv.bias.copy_(good.bias)
    return new_conv


def fold_without_stride(conv, bn):  # issue 13: the new conv is built without stride=
    new = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
    )
    return _fold_into(new, conv, bn)


def fold_without_padding(conv, bn):
    new = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        dilation=conv.dilation,
        groups=conv.groups,
    )
    return _fold_into(new, conv, bn)


def fold_same_padding_guess(conv, bn):  # assumes padding = kernel // 2 ("same" for odd kernels)
    new = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.kernel_size[0] // 2,
        groups=conv.groups,
    )
    return _fold_into(new, conv, bn)


def fold_without_dilation(conv, bn):
    new = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        groups=conv.groups,
    )
    return _fold_into(new, conv, bn)


def fold_scales_input_channels(conv, bn):  # scale on dim 1 (input channels) instead of dim 0
    out = copy.deepcopy(conv)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    with torch.no_grad():
        w = conv.weight.transpose(0, 1) * scale[: conv.weight.shape[1]].view(-1, 1, 1, 1)
        out.weight.copy_(w.transpose(0, 1))
        out.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
    return out


def fold_forgets_beta(conv, bn):
    out = fold_conv_bn(conv, bn)
    with torch.no_grad():
        out.bias.sub_(bn.bias)
    return out


def fold_keeps_old_bias(conv, bn):  # scales the weight but leaves the conv's bias as it was
    out = fold_conv_bn(conv, bn)
    with torch.no_grad():
        out.bias.copy_(conv.bias if conv.bias is not None else torch.zeros(conv.out_channels))
    return out


def fold_in_place(conv, bn):  # right numbers, but rewrites the caller's conv
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    with torch.no_grad():
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
    return conv


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


def qkv_bias_only_if_q_has_one(q, k, v):  # the first layer decides, K's bias is lost
    if q.bias is None:
        fused = nn.Linear(q.in_features, q.out_features + k.out_features + v.out_features, False)
        with torch.no_grad():
            fused.weight.copy_(torch.cat([q.weight, k.weight, v.weight]))
        return fused
    return fuse_qkv(q, k, v)


def qkv_assumes_equal_widths(q, k, v):  # 3 * d_q outputs: wrong for grouped-query attention
    fused = nn.Linear(q.in_features, 3 * q.out_features, bias=q.bias is not None)
    with torch.no_grad():
        w = torch.cat([q.weight, k.weight, v.weight])
        fused.weight.zero_()
        fused.weight[: w.shape[0]] = w[: 3 * q.out_features]
        if q.bias is not None and k.bias is not None and v.bias is not None:
            b = torch.cat([q.bias, k.bias, v.bias])
            fused.bias.zero_()
            fused.bias[: b.shape[0]] = b[: 3 * q.out_features]
    return fused


def qkv_transposed_weight(q, k, v):  # sums the three projections instead of stacking them
    fused = nn.Linear(q.in_features, q.out_features, bias=q.bias is not None)
    with torch.no_grad():
        if q.out_features == k.out_features == v.out_features:
            fused.weight.copy_(q.weight + k.weight + v.weight)
    return fused


@pytest.mark.parametrize(
    "wrong",
    [
        fold_without_eps,
        fold_var_not_std,
        fold_forgets_conv_bias,
        fold_forgets_mean,
        fold_ignores_groups,
        fold_without_stride,
        fold_without_padding,
        fold_same_padding_guess,
        fold_without_dilation,
        fold_scales_input_channels,
        fold_forgets_beta,
        fold_keeps_old_bias,
        fold_in_place,
    ],
)
def test_wrong_folds_are_rejected(wrong):
    result = checks.check("fusion.fold_conv_bn", wrong)
    assert result.attempted and not result.passed, result.message


@pytest.mark.parametrize(
    "wrong",
    [
        qkv_cat_on_input_dim,
        qkv_drops_bias,
        qkv_wrong_order,
        qkv_bias_only_if_q_has_one,
        qkv_assumes_equal_widths,
        qkv_transposed_weight,
    ],
)
def test_wrong_qkv_fusions_are_rejected(wrong):
    result = checks.check("fusion.fuse_qkv", wrong)
    assert result.attempted and not result.passed, result.message


def test_not_attempted_returns_the_reference():
    def stub(conv, bn):
        raise NotImplementedError

    result = checks.check("fusion.fold_conv_bn", stub)
    assert not result.attempted and "not attempted" in result.message


def test_worked_solutions_pass():
    from solutions.n07_operator_fusion import EXERCISES

    for key, fn in EXERCISES.items():
        result = checks.check(key, fn)
        assert result.passed, result.message


@pytest.mark.parametrize("key", ["fusion.fold_conv_bn", "fusion.fuse_qkv"])
def test_hints_nudge_and_formulas_give_the_key_line(key):
    ex = checks.lookup(key)
    assert ex.hint and ex.formula
    # the nudge names no formula: no torch call, no equation
    assert "torch." not in ex.hint and "=" not in ex.hint


def test_folding_in_place_is_named_as_such():
    result = checks.check("fusion.fold_conv_bn", fold_in_place)
    assert not result.passed and "in place" in result.message
