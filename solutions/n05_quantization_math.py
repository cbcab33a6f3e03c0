"""Worked solutions of notebook 05 (quantization math), written as a learner would."""

import math

import torch


def quantize(x, scale, zero_point, qmin, qmax):
    q = torch.round(x / scale) + zero_point  # torch.round: half to even
    return torch.clamp(q, qmin, qmax).to(torch.int32)


def dequantize(q, scale, zero_point):
    return (q.to(torch.float32) - zero_point) * scale


def compute_qparams(xmin, xmax, bits, symmetric):
    lo, hi = min(xmin, 0.0), max(xmax, 0.0)
    if symmetric:
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        scale = max(-lo, hi) / qmax
        return scale, 0, qmin, qmax
    qmin, qmax = 0, 2**bits - 1
    scale = (hi - lo) / (qmax - qmin)
    zero_point = qmin - round(lo / scale)  # Python's round: halves to even, like torch.round
    return scale, min(max(zero_point, qmin), qmax), qmin, qmax


def kl_threshold(hist, num_quantized_bins):
    hist = hist.double()
    best_i, best_kl = None, math.inf
    for i in range(num_quantized_bins, len(hist) + 1):
        kept = hist[:i]
        p = kept.clone()
        p[-1] += hist[i:].sum()
        q = torch.zeros(i, dtype=torch.float64)
        group_of = torch.arange(i) * num_quantized_bins // i
        for j in range(num_quantized_bins):
            in_group = group_of == j
            group = kept[in_group]
            nonzero = group > 0
            if nonzero.any():
                spread = torch.where(nonzero, group.sum() / nonzero.sum(), 0.0)
                q[in_group] = spread
        p, q = p / p.sum(), q / q.sum()
        mask = p > 0
        kl = (p[mask] * torch.log(p[mask] / q[mask].clamp(min=1e-10))).sum().item()
        if kl < best_kl:
            best_i, best_kl = i, kl
    return best_i


EXERCISES = {
    "quant.quantize": quantize,
    "quant.dequantize": dequantize,
    "quant.compute_qparams": compute_qparams,
    "quant.kl_threshold": kl_threshold,
}
