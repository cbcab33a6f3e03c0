"""Worked solutions of notebook 07 (operator fusion), written as a learner would."""

import torch
from torch import nn


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    # BN in eval: y = gamma * (z - mean) / sqrt(var + eps) + beta, one scale per output channel
    std = torch.sqrt(bn.running_var + bn.eps)
    scale = bn.weight / std
    old_bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)

    folded = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
    )
    with torch.no_grad():
        folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        folded.bias.copy_(bn.bias + (old_bias - bn.running_mean) * scale)
    return folded.eval()


def fuse_qkv(q: nn.Linear, k: nn.Linear, v: nn.Linear) -> nn.Linear:
    layers = (q, k, v)
    with_bias = any(layer.bias is not None for layer in layers)
    fused = nn.Linear(
        q.in_features, q.out_features + k.out_features + v.out_features, bias=with_bias
    )
    with torch.no_grad():
        # weight is (out_features, in_features): the outputs stack along dim 0
        fused.weight.copy_(torch.cat([q.weight, k.weight, v.weight], dim=0))
        if with_bias:
            # a layer without bias adds nothing: zeros of its width
            biases = [
                layer.bias if layer.bias is not None else torch.zeros(layer.out_features)
                for layer in layers
            ]
            fused.bias.copy_(torch.cat(biases))
    return fused


EXERCISES = {"fusion.fold_conv_bn": fold_conv_bn, "fusion.fuse_qkv": fuse_qkv}
