"""Learned step size quantisation (LSQ, Esser et al. 2019): QAT that trains the scales too.

The fixed-scale QAT of section 4 (labkit/qat/lesson.py) recomputes each weight scale from
max|W_c| and tracks the activation range with a moving average: the scales follow the
weights, the loss never sees them. LSQ makes every step size S a parameter:

    x_hat = S * (clamp(round(x / S + Z), qmin, qmax) - Z)

with the straight-through estimator for round, so the loss gradient reaches S:
    d x_hat / d S = round(x/S + Z) - Z - x/S   inside [qmin, qmax]  (the rounding error),
                  = qmin - Z  or  qmax - Z       where x was clipped,
and S's gradient scaled by g = 1 / sqrt(numel(x) / numel(S) * qmax) (the paper's rule, so
the step sizes learn at the pace of the weights). Clipping can now win over rounding error:
at 3 bits and below a MinMax scale wastes most levels on a few large weights.
Here the step sizes start from the calibrated static-PTQ model (the same start as section 4's
QAT), so a comparison of the two isolates learning the scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labkit.core.errors import check_bits, check_int, check_number, check_tensor
from labkit.qat.lesson import QuantLayer, quant_layers, static_ptq, weight_qparams


def lsq_fake_quantize(
    x: torch.Tensor, step: torch.Tensor, zero_point: float, qmin: int, qmax: int
) -> torch.Tensor:
    """S (clamp(round(x/S + Z), qmin, qmax) - Z) with the STE for round and LSQ's gradient
    for S (scaled by 1 / sqrt(numel(x) / numel(S) * qmax)). step broadcasts against x.

    Used by _LSQLayer (labkit/qat/lsq.py).
    """
    _check_lsq_fake_quantize(x, step, zero_point, qmin, qmax)
    g = 1.0 / math.sqrt(x.numel() / step.numel() * qmax)
    s = step.clamp(min=1e-8)
    s = (s - s * g).detach() + s * g  # value S, gradient g * dL/dS
    y = torch.clamp(x / s + zero_point, qmin, qmax)  # gradient 0 where clipped
    y = (y.round() - y).detach() + y  # round, straight through
    return (y - zero_point) * s


class _LSQLayer(nn.Module):
    """A Conv2d/Linear with learned step sizes: one per output channel for the weight
    (symmetric), one for the input activation (asymmetric, its zero point Z fixed).

    Built from a calibrated QuantLayer: the start is that layer's MinMax scales.
    Used by lsq_model (labkit/qat/lsq.py).
    """

    def __init__(self, q: QuantLayer) -> None:
        _check_lsq_layer(q)
        super().__init__()
        self.layer = q.layer
        self.w_bits, self.a_bits = q.w_bits, q.a_bits
        s_w, self.w_qmin, self.w_qmax = weight_qparams(q.layer.weight.detach(), q.w_bits)
        self.w_step = nn.Parameter(s_w.clone())  # (C_out, 1, ...)
        s_a, z_a, self.a_qmin, self.a_qmax = q.act_qparams()
        self.a_step = nn.Parameter(s_a.clone().float())  # ()
        self.a_zero = float(z_a)

    def extra_repr(self) -> str:
        return f"w_bits={self.w_bits}, a_bits={self.a_bits}, learned steps"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = lsq_fake_quantize(x, self.a_step, self.a_zero, self.a_qmin, self.a_qmax)
        w = lsq_fake_quantize(self.layer.weight, self.w_step, 0.0, self.w_qmin, self.w_qmax)
        if isinstance(self.layer, nn.Conv2d):
            c = self.layer
            return F.conv2d(x, w, c.bias, c.stride, c.padding, c.dilation, c.groups)
        return F.linear(x, w, self.layer.bias)


def lsq_model(model: nn.Module, batches: Iterable[torch.Tensor], bits: int = 4) -> nn.Module:
    """The static-PTQ model at ``bits`` (BN folded, MinMax-calibrated) with every QuantLayer
    turned into an _LSQLayer: ready for ``qat_finetune`` (the step sizes train with the weights).

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_lsq_model(bits, batches)
    q = static_ptq(model, batches, bits)
    for name, layer in quant_layers(q).items():
        parent, _, child = name.rpartition(".")
        setattr(q.get_submodule(parent) if parent else q, child, _LSQLayer(layer))
    return q


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_lsq_fake_quantize(x: Any, step: Any, zero_point: Any, qmin: Any, qmax: Any) -> None:
    """Types and sizes only (no pass over the data: it runs every training step). A step that
    training drives to 0 or below is clamped to 1e-8 by design."""
    check_tensor(x, "x")
    if not isinstance(step, torch.Tensor) or not step.is_floating_point() or not step.numel():
        got = f"shape {tuple(step.shape)}" if isinstance(step, torch.Tensor) else repr(step)
        raise ValueError(
            "step must be a non-empty float tensor (an nn.Parameter of step sizes that "
            f"broadcasts against x), got {got}."
        )
    check_number(zero_point, "zero_point")
    if check_int(qmin, "qmin") >= check_int(qmax, "qmax"):
        raise ValueError(f"need qmin < qmax, got qmin={qmin}, qmax={qmax}.")


def _check_lsq_layer(q: Any) -> None:
    if not isinstance(q, QuantLayer) or q.w_bits is None or q.a_bits is None:
        raise ValueError("LSQLayer is built from a calibrated QuantLayer with w_bits and a_bits.")


def _check_lsq_model(bits: Any, batches: Any) -> None:
    check_bits(bits)
    if isinstance(batches, torch.Tensor) or not isinstance(batches, list | tuple) or not batches:
        raise ValueError("batches must be a non-empty list of calibration inputs.")
    for x in batches:
        check_tensor(x, "calibration batch")
