"""Planted wrong answers to notebook 04's exercises must be rejected; right variants accepted."""

import math

import torch
from torch import nn

from labkit import checks
from solutions.n04_pruning import magnitude_mask, prune_conv_pair


def test_worked_solutions_pass() -> None:
    assert checks.check("prune.magnitude_mask", magnitude_mask).passed
    assert checks.check("prune.prune_conv_pair", prune_conv_pair).passed


def test_float_mask_and_threshold_version_are_accepted() -> None:
    def float_mask(weight, sparsity):
        k = round(sparsity * weight.numel())
        if k == 0:
            return torch.ones_like(weight)
        threshold = weight.abs().flatten().kthvalue(k).values
        return (weight.abs() > threshold).float()

    assert checks.check("prune.magnitude_mask", float_mask).passed


def test_mask_without_abs_is_rejected() -> None:
    def no_abs(weight, sparsity):
        k = round(sparsity * weight.numel())
        mask = torch.ones_like(weight, dtype=torch.bool)
        if k:
            mask.view(-1)[torch.topk(weight.flatten(), k, largest=False).indices] = False
        return mask

    res = checks.check("prune.magnitude_mask", no_abs)
    assert not res.passed and "smallest |w|" in res.message


def test_mask_pruning_the_largest_is_rejected() -> None:
    def largest(weight, sparsity):
        k = round(sparsity * weight.numel())
        mask = torch.ones_like(weight, dtype=torch.bool)
        if k:
            mask.view(-1)[torch.topk(weight.abs().flatten(), k).indices] = False
        return mask

    assert not checks.check("prune.magnitude_mask", largest).passed


def test_mask_with_floor_instead_of_round_is_rejected() -> None:
    def floor(weight, sparsity):
        k = math.floor(sparsity * weight.numel())
        mask = torch.ones_like(weight, dtype=torch.bool)
        if k:
            mask.view(-1)[torch.topk(weight.abs().flatten(), k, largest=False).indices] = False
        return mask

    res = checks.check("prune.magnitude_mask", floor)
    assert not res.passed and "round(sparsity * numel)" in res.message


def test_mask_keeping_the_threshold_weight_is_rejected() -> None:
    def off_by_one(weight, sparsity):
        k = round(sparsity * weight.numel())
        if k == 0:
            return torch.ones_like(weight, dtype=torch.bool)
        threshold = weight.abs().flatten().kthvalue(k).values
        return weight.abs() >= threshold  # keeps the k-th smallest: prunes only k-1

    assert not checks.check("prune.magnitude_mask", off_by_one).passed


def test_mask_inverted_is_rejected() -> None:
    def inverted(weight, sparsity):
        return ~magnitude_mask(weight, sparsity)

    assert not checks.check("prune.magnitude_mask", inverted).passed


def test_mask_crashing_at_zero_sparsity_is_reported() -> None:
    def no_zero_case(weight, sparsity):
        k = round(sparsity * weight.numel())
        threshold = weight.abs().flatten().kthvalue(k).values  # k = 0 raises
        return weight.abs() > threshold

    res = checks.check("prune.magnitude_mask", no_zero_case)
    assert not res.passed and res.attempted and "raised" in res.message


def _new_pair(conv, next_conv, k, bias_a=None, bias_b=None):
    a = nn.Conv2d(
        conv.in_channels,
        k,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        bias=conv.bias is not None if bias_a is None else bias_a,
    )
    b = nn.Conv2d(
        k,
        next_conv.out_channels,
        next_conv.kernel_size,
        next_conv.stride,
        next_conv.padding,
        bias=next_conv.bias is not None if bias_b is None else bias_b,
    )
    return a, b


def test_slicing_the_next_convs_outputs_is_rejected() -> None:
    def wrong_dim(conv, next_conv, keep):
        a, b = _new_pair(conv, next_conv, len(keep))
        with torch.no_grad():
            a.weight.copy_(conv.weight[keep])
            if conv.bias is not None:
                a.bias.copy_(conv.bias[keep])
            b.weight.copy_(next_conv.weight[keep])  # wrong dimension
        return a, b

    res = checks.check("prune.prune_conv_pair", wrong_dim)
    assert not res.passed


def test_forgetting_the_bias_is_rejected() -> None:
    def no_bias(conv, next_conv, keep):
        a, b = _new_pair(conv, next_conv, len(keep), bias_a=False)
        with torch.no_grad():
            a.weight.copy_(conv.weight[keep])
            b.weight.copy_(next_conv.weight[:, keep])
            if next_conv.bias is not None:
                b.bias.copy_(next_conv.bias)
        return a, b

    res = checks.check("prune.prune_conv_pair", no_bias)
    assert not res.passed and "bias" in res.message


def test_slicing_the_next_convs_bias_is_rejected() -> None:
    def sliced_next_bias(conv, next_conv, keep):
        a, b = prune_conv_pair(conv, next_conv, keep)
        if next_conv.bias is not None:
            with torch.no_grad():
                b.bias.zero_()  # dropped what slicing by keep cannot give back
        return a, b

    assert not checks.check("prune.prune_conv_pair", sliced_next_bias).passed


def test_editing_the_original_in_place_is_rejected() -> None:
    def in_place(conv, next_conv, keep):
        conv.weight = nn.Parameter(conv.weight[keep].detach())
        if conv.bias is not None:
            conv.bias = nn.Parameter(conv.bias[keep].detach())
        conv.out_channels = len(keep)
        next_conv.weight = nn.Parameter(next_conv.weight[:, keep].detach())
        next_conv.in_channels = len(keep)
        return conv, next_conv

    res = checks.check("prune.prune_conv_pair", in_place)
    assert not res.passed and "changed the original" in res.message


def test_stale_channel_attributes_are_rejected() -> None:
    def stale(conv, next_conv, keep):
        a, b = prune_conv_pair(conv, next_conv, keep)
        a.out_channels, b.in_channels = conv.out_channels, next_conv.in_channels
        return a, b

    res = checks.check("prune.prune_conv_pair", stale)
    assert not res.passed and "out_channels" in res.message


def test_dropping_stride_is_rejected() -> None:
    def no_stride(conv, next_conv, keep):
        a, b = prune_conv_pair(conv, next_conv, keep)
        a.stride = (1, 1)
        return a, b

    res = checks.check("prune.prune_conv_pair", no_stride)
    assert not res.passed and "stride" in res.message


def test_mask_taking_abs_in_place_is_rejected() -> None:
    """Issue 13: `weight.abs_()` gives the right mask but makes the caller's weights positive."""

    def abs_in_place(weight, sparsity):
        k = round(sparsity * weight.numel())
        mags = weight.abs_().flatten()  # changes the caller's weight
        mask = torch.ones_like(weight, dtype=torch.bool)
        if k:
            mask.view(-1)[torch.topk(mags, k, largest=False).indices] = False
        return mask

    res = checks.check("prune.magnitude_mask", abs_in_place)
    assert not res.passed and "in place" in res.message


def test_mask_ranking_each_row_separately_is_rejected() -> None:
    def per_row(weight, sparsity):
        w = weight.reshape(weight.shape[0], -1) if weight.ndim > 1 else weight.reshape(1, -1)
        k = round(sparsity * w.shape[1])
        mask = torch.ones_like(w, dtype=torch.bool)
        if k:
            mask.scatter_(1, torch.topk(w.abs(), k, dim=1, largest=False).indices, False)
        return mask.reshape(weight.shape)

    res = checks.check("prune.magnitude_mask", per_row)
    assert not res.passed


def test_dropping_padding_is_rejected() -> None:
    def no_padding(conv, next_conv, keep):
        a, b = prune_conv_pair(conv, next_conv, keep)
        a.padding = (0, 0)
        return a, b

    res = checks.check("prune.prune_conv_pair", no_padding)
    assert not res.passed and "padding" in res.message


def test_pruning_weights_of_the_next_conv_in_place_is_rejected() -> None:
    def zero_next(conv, next_conv, keep):
        a, b = prune_conv_pair(conv, next_conv, keep)
        with torch.no_grad():
            drop = torch.ones(next_conv.in_channels, dtype=torch.bool)
            drop[keep] = False
            next_conv.weight[:, drop] = 0  # "prunes" the original as a side effect
        return a, b

    res = checks.check("prune.prune_conv_pair", zero_next)
    assert not res.passed and "changed the original" in res.message


def test_hints_do_not_give_the_answer_away() -> None:
    from labkit.prune.exercises import EXERCISES

    for ex in EXERCISES.values():
        assert ex.hint and ex.formula
        assert "topk" not in ex.hint and "[:, keep]" not in ex.hint
