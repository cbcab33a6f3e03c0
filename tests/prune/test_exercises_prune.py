"""Planted wrong answers to notebook 04's exercises must be rejected; right variants accepted."""

import math

import pytest
import torch
from torch import nn

from labkit import checks
from solutions.n04_pruning import block_influence, magnitude_mask, prune_conv_pair


def test_worked_solutions_pass() -> None:
    assert checks.check("prune.magnitude_mask", magnitude_mask).passed
    assert checks.check("prune.prune_conv_pair", prune_conv_pair).passed
    assert checks.check("prune.block_influence", block_influence).passed


def test_float_mask_and_argsort_versions_are_accepted() -> None:
    def float_mask(weight, sparsity):
        k = round(sparsity * weight.numel())
        mask = torch.ones_like(weight)
        if k:
            mask.view(-1)[torch.topk(weight.abs().flatten(), k, largest=False).indices] = 0.0
        return mask

    def argsort_mask(weight, sparsity):  # ties broken by position: a valid choice too
        k = round(sparsity * weight.numel())
        mask = torch.ones(weight.numel(), dtype=torch.bool)
        mask[torch.argsort(weight.abs().flatten(), stable=True)[:k]] = False
        return mask.reshape(weight.shape)

    def last_ties_first(weight, sparsity):  # among ties, the LAST positions go first
        k = round(sparsity * weight.numel())
        flat = weight.abs().flatten().flip(0)
        mask = torch.ones(weight.numel(), dtype=torch.bool)
        mask[torch.argsort(flat, stable=True)[:k]] = False
        return mask.flip(0).reshape(weight.shape)

    for fn in (float_mask, argsort_mask, last_ties_first):
        assert checks.check("prune.magnitude_mask", fn).passed, fn.__name__


def test_threshold_mask_pruning_every_tie_is_rejected() -> None:
    """Issue 19: `|w| > kth value` prunes every weight tied at the threshold (more than k)."""

    def threshold(weight, sparsity):
        k = round(sparsity * weight.numel())
        if k == 0:
            return torch.ones_like(weight, dtype=torch.bool)
        return weight.abs() > weight.abs().flatten().kthvalue(k).values

    res = checks.check("prune.magnitude_mask", threshold)
    assert not res.passed and "ties at the threshold" in res.message
    assert "share the threshold magnitude" in res.message


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


SETTINGS = ("kernel_size", "stride", "padding", "dilation", "padding_mode")


def _new_pair(conv, next_conv, k, bias_a=None, bias_b=None, drop_a=(), drop_b=()):
    """New empty layers built from the originals' settings, leaving out ``drop_*``."""

    def like(layer, c_in, c_out, bias, drop):
        settings = {s: getattr(layer, s) for s in SETTINGS if s not in drop}
        has_bias = layer.bias is not None if bias is None else bias
        return nn.Conv2d(c_in, c_out, bias=has_bias, **settings)

    return like(conv, conv.in_channels, k, bias_a, drop_a), like(
        next_conv, k, next_conv.out_channels, bias_b, drop_b
    )


def _rebuilt(conv, next_conv, keep, **planted):
    """prune_conv_pair written out, with one planted mistake in how the layers are rebuilt."""
    a, b = _new_pair(conv, next_conv, len(keep), **planted)
    with torch.no_grad():
        a.weight.copy_(conv.weight[keep])
        if conv.bias is not None and a.bias is not None:
            a.bias.copy_(conv.bias[keep])
        b.weight.copy_(next_conv.weight[:, keep])
        if next_conv.bias is not None and b.bias is not None:
            b.bias.copy_(next_conv.bias)
    return a, b


def test_rebuilt_helper_is_right_when_nothing_is_planted() -> None:
    assert checks.check("prune.prune_conv_pair", _rebuilt).passed


@pytest.mark.parametrize(
    ("planted", "word"),
    [
        ({"drop_b": ("stride",)}, "stride"),
        ({"drop_b": ("padding",)}, "padding"),
        ({"drop_b": ("dilation",)}, "dilation"),
        ({"drop_b": ("padding_mode",)}, "padding_mode"),
        ({"drop_b": ("kernel_size",)}, "kernel_size"),
        ({"drop_a": ("dilation",)}, "dilation"),
        ({"drop_a": ("padding_mode",)}, "padding_mode"),
        ({"bias_b": False}, "bias"),
        ({"bias_b": True}, "bias"),
    ],
    ids=[
        "next-without-stride",
        "next-without-padding",
        "next-without-dilation",
        "next-without-padding-mode",
        "next-with-the-first-convs-kernel",
        "first-without-dilation",
        "first-without-padding-mode",
        "next-without-bias",
        "next-with-a-bias-it-did-not-have",
    ],
)
def test_rebuilding_a_layer_without_one_of_its_settings_is_rejected(planted, word) -> None:
    """Issue 19: the next conv rebuilt without its stride (padding, dilation, ...) passed."""
    if planted.get("drop_b") == ("kernel_size",):

        def planted_fn(conv, next_conv, keep):  # the next conv built with the FIRST's kernel
            a, b = _rebuilt(conv, next_conv, keep)
            c = nn.Conv2d(
                len(keep), next_conv.out_channels, conv.kernel_size, next_conv.stride,
                next_conv.padding, next_conv.dilation, bias=next_conv.bias is not None,
            )  # fmt: skip
            return a, c
    else:

        def planted_fn(conv, next_conv, keep):
            return _rebuilt(conv, next_conv, keep, **planted)

    res = checks.check("prune.prune_conv_pair", planted_fn)
    assert not res.passed and word in res.message, res.message


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


# ----------------------------------------------------------------------------- block influence
def _cos(a, b, dim=-1):
    return (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim))


def test_block_influence_with_torch_cosine_similarity_is_accepted() -> None:
    def with_torch(h_in, h_out):
        return 1.0 - torch.nn.functional.cosine_similarity(h_in, h_out, dim=-1).mean()

    assert checks.check("prune.block_influence", with_torch).passed


def test_block_influence_without_one_minus_is_rejected() -> None:
    assert not checks.check("prune.block_influence", lambda a, b: _cos(a, b).mean()).passed


def test_block_influence_one_cosine_over_the_whole_tensor_is_rejected() -> None:
    def flat(a, b):  # long tokens dominate: the unchanged loud token hides the 7 turned ones
        return 1 - _cos(a.flatten(), b.flatten(), dim=0)

    assert not checks.check("prune.block_influence", flat).passed


def test_block_influence_cosine_over_the_token_axis_is_rejected() -> None:
    assert not checks.check(
        "prune.block_influence", lambda a, b: 1 - _cos(a, b, dim=1).mean()
    ).passed


def test_block_influence_of_the_mean_token_is_rejected() -> None:
    def pooled(a, b):  # averages the tokens first, then one cosine per example
        return 1 - _cos(a.mean(1), b.mean(1)).mean()

    assert not checks.check("prune.block_influence", pooled).passed


def test_block_influence_as_relative_distance_is_rejected() -> None:
    def distance(a, b):  # ||out - in|| / ||in||: sees lengths, so 3 * h_in is not 0
        return ((b - a).norm(dim=-1) / a.norm(dim=-1)).mean()

    assert not checks.check("prune.block_influence", distance).passed


def test_block_influence_dot_product_without_norms_is_rejected() -> None:
    assert not checks.check("prune.block_influence", lambda a, b: 1 - (a * b).sum(-1).mean()).passed
