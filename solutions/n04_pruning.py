"""Worked solutions of notebook 04, written as a learner would."""

import torch
from torch import nn


def magnitude_mask(weight, sparsity):
    k = round(sparsity * weight.numel())
    mask = torch.ones_like(weight, dtype=torch.bool)
    if k > 0:
        smallest = torch.topk(weight.abs().flatten(), k, largest=False).indices
        mask.view(-1)[smallest] = False
    return mask


def prune_conv_pair(conv, next_conv, keep):
    new_conv = nn.Conv2d(
        conv.in_channels,
        len(keep),
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    new_next = nn.Conv2d(
        len(keep),
        next_conv.out_channels,
        next_conv.kernel_size,
        stride=next_conv.stride,
        padding=next_conv.padding,
        dilation=next_conv.dilation,
        bias=next_conv.bias is not None,
        padding_mode=next_conv.padding_mode,
    )
    with torch.no_grad():
        new_conv.weight.copy_(conv.weight[keep])
        if conv.bias is not None:
            new_conv.bias.copy_(conv.bias[keep])
        new_next.weight.copy_(next_conv.weight[:, keep])
        if next_conv.bias is not None:
            new_next.bias.copy_(next_conv.bias)
    return new_conv, new_next


def block_influence(h_in, h_out):
    cos = (h_in * h_out).sum(-1) / (h_in.norm(dim=-1) * h_out.norm(dim=-1))  # (N, T)
    return 1 - cos.mean()


EXERCISES = {
    "prune.magnitude_mask": magnitude_mask,
    "prune.prune_conv_pair": prune_conv_pair,
    "prune.block_influence": block_influence,
}
