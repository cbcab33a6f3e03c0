"""The affine map r = S (q - Z): quantize, dequantize, fake-quantize (STE), and its parameters.

Affine (uniform) quantisation maps a real value r to an integer q in [qmin, qmax]:

    q = clamp(round(r / S) + Z, qmin, qmax)        (quantize)
    r_hat = S (q - Z)                              (dequantize)

S > 0 is the scale (the step between two neighbouring grid points) and Z the integer zero
point, chosen so that the real 0.0 is exactly a grid point (q = Z -> r_hat = 0). ``round``
is round-half-to-even, and r / S is computed as r * (1 / S) in float32, exactly as
``torch.fake_quantize_per_tensor_affine`` / ``..._per_channel_affine`` do, so the results
here are bit-for-bit equal to torch's (tested in tests/quant/test_quant.py).

Per-channel quantisation gives every slice along ``axis`` its own (S, Z); pass 1-D
``scale`` and ``zero_point`` of length x.shape[axis] and ``axis=``.
"""

from __future__ import annotations

import copy
import math
from numbers import Real
from typing import NamedTuple

import torch
from torch import nn

from labkit.core.errors import (
    check_bits,
    check_bool,
    check_int,
    check_model,
    check_nonempty,
    check_tensor,
)

Number = float | int
ScaleLike = float | torch.Tensor
ZeroLike = int | torch.Tensor


class QParams(NamedTuple):
    """Quantisation parameters: scale S (> 0), zero point Z, and the integer range.

    Per-tensor: ``scale`` is a float and ``zero_point`` an int. Per-channel: both are 1-D
    tensors (float32 and int64) with one entry per channel.

    Used by compute_qparams (labkit/quant/affine.py) and the observers (labkit/quant/calibration.py).
    """

    scale: ScaleLike
    zero_point: ZeroLike
    qmin: int
    qmax: int


def quantize(
    x: torch.Tensor,
    scale: ScaleLike,
    zero_point: ZeroLike,
    qmin: int,
    qmax: int,
    *,
    axis: int | None = None,
) -> torch.Tensor:
    """q = clamp(round(x / S) + Z, qmin, qmax), as int32 codes of x's shape.

    x: float tensor, any shape. S, Z: numbers (per tensor), or 1-D tensors of length
    x.shape[axis] with ``axis=`` (per channel). round is half-to-even and x / S is computed
    as x * float32(1 / S), exactly as torch's fake-quant kernels do. NaN maps to qmin, as in torch.

    Taught in notebooks/05_quantization_math.ipynb, "1. The affine map $r = S(q - Z)$".
    """
    S, Z, qmin, qmax = _check_affine(x, scale, zero_point, qmin, qmax, axis)  # () or (C, 1, .., 1)
    x = x if x.dtype == torch.float64 else x.float()  # torch's compute type
    q = torch.round(x * (1 / S)) + Z
    return q.clamp(qmin, qmax).nan_to_num(nan=qmin).to(torch.int32)


def dequantize(
    q: torch.Tensor, scale: ScaleLike, zero_point: ZeroLike, *, axis: int | None = None
) -> torch.Tensor:
    """r_hat = S (q - Z) as float32; q is an integer tensor, S and Z as in ``quantize``.

    Taught in notebooks/05_quantization_math.ipynb, "1. The affine map $r = S(q - Z)$".
    """
    S, Z = _check_dequantize(q, scale, zero_point, axis)  # () or (C, 1, .., 1)
    return S * (q.float() - Z)


class STEFakeQuant(torch.autograd.Function):
    """x_hat = S (clamp(round(x / S) + Z, qmin, qmax) - Z), with the straight-through gradient.

    forward:  as ``fake_quantize`` (torch.fake_quantize_per_{tensor,channel}_affine bit for bit);
              x = NaN gives S (qmin - Z), as torch does.
    backward: dL/dx = dL/dx_hat * 1[qmin <= round(x / S) + Z <= qmax]: 1 inside the range, 0
              where clamped, 0 at NaN. No gradient for S or Z (they come from observers).
    S, Z: float32 tensors that broadcast with x, shape () per tensor or (C, 1, .., 1) per
    channel. ``fake_quantize`` is the checked way in; QAT layers call ``apply`` directly.

    Used by fake_quantize (labkit/quant/affine.py) and qat's QuantLayer (labkit/qat/).
    """

    @staticmethod
    def forward(ctx, x, S, Z, qmin, qmax):  # type: ignore[override]
        _check_ste(x, S, Z, qmin, qmax)  # types only: QAT calls this every step
        xc = x if x.dtype in (torch.float32, torch.float64) else x.float()  # torch's compute type
        q = torch.round(xc * (1 / S)) + Z
        if x.requires_grad:  # the mask is only needed for backward (eval skips it)
            ctx.save_for_backward((q >= qmin) & (q <= qmax))  # False at NaN
        q = q.clamp_(qmin, qmax).nan_to_num_(nan=qmin)  # in place: QAT calls this every step
        if S.ndim == 0:  # torch dequantises in float32 per tensor, in q's compute type per channel
            q = q.float()
        return (S * (q - Z)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None


def fake_quantize(
    x: torch.Tensor,
    scale: ScaleLike,
    zero_point: ZeroLike,
    qmin: int,
    qmax: int,
    *,
    axis: int | None = None,
) -> torch.Tensor:
    """x_hat = dequantize(quantize(x)) = S (clamp(round(x / S) + Z, qmin, qmax) - Z), x's dtype.

    Forward equals ``torch.fake_quantize_per_tensor_affine`` (or ``_per_channel_affine`` with
    ``axis``) bit for bit. Backward (``STEFakeQuant``): d x_hat / d x = 1 where round(x/S) + Z
    lies in [qmin, qmax] and 0 where it was clamped (torch's STE with clipping).

    Taught in notebooks/05_quantization_math.ipynb, "Rounding and clamping exactly like PyTorch".
    """
    S, Z, qmin, qmax = _check_affine(x, scale, zero_point, qmin, qmax, axis)  # () or (C, 1, .., 1)
    return STEFakeQuant.apply(x, S, Z, qmin, qmax)


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """The integer range: signed [-2^(b-1), 2^(b-1)-1] if symmetric, else [0, 2^b - 1].

    Used by compute_qparams (labkit/quant/affine.py), fixed_point (labkit/quant/integer.py)
    and qat's weight quantiser (labkit/qat/).
    """
    bits = _check_qrange(bits, symmetric)
    if symmetric:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def compute_qparams(
    xmin: Number | torch.Tensor,
    xmax: Number | torch.Tensor,
    bits: int = 8,
    symmetric: bool = False,
) -> QParams:
    """S and Z that cover the real range [xmin, xmax] with ``bits`` bits, with 0.0 exact:

        lo, hi = min(xmin, 0), max(xmax, 0)         (widen the range to contain 0)
        asymmetric: q in [0, 2^b - 1],             S = (hi - lo) / (2^b - 1),         Z = qmin - round(lo / S)
        symmetric:  q in [-2^(b-1), 2^(b-1) - 1],  S = max(-lo, hi) / (2^(b-1) - 1),  Z = 0

    round is half to even (torch.round). The signed range is the full one of torch.qint8
    (-128..127 at 8 bits), not the restricted [-127, 127] some toolkits use; with S as above
    the code -2^(b-1) is never produced from inside [lo, hi]. S is at least float32 eps (an
    all-zero range still gives a valid grid); Z is clamped into [qmin, qmax]. Numbers give per-tensor QParams (float S, int Z); 1-D tensors of shape (C,)
    (even C = 1) give per-channel QParams (S float32 (C,), Z int64 (C,)).

    Taught in notebooks/05_quantization_math.ipynb, "1. The affine map $r = S(q - Z)$".
    """
    lo, hi = _check_compute_qparams(xmin, xmax, bits, symmetric)  # float64 (C,)
    lo, hi = lo.clamp(max=0.0), hi.clamp(min=0.0)
    qmin, qmax = qrange(bits, symmetric)
    eps = torch.finfo(torch.float32).eps
    if symmetric:
        S = (torch.maximum(-lo, hi) / qmax).clamp(min=eps).float()
        Z = torch.zeros_like(S, dtype=torch.int64)
    else:
        S = ((hi - lo) / (qmax - qmin)).clamp(min=eps).float()
        Z = (qmin - torch.round(lo / S.double())).clamp(qmin, qmax).to(torch.int64)
    if isinstance(xmin, torch.Tensor) and xmin.ndim >= 1:
        return QParams(S, Z, qmin, qmax)
    return QParams(float(S[0]), int(Z[0]), qmin, qmax)


def symmetric_scale(x: torch.Tensor, bits: int = 8, axis: int | None = None) -> torch.Tensor:
    """S = max|x| / (2^(b-1) - 1), Z = 0: the symmetric scale (max|w| / 127 at 8 bits).

    axis=None: one S for the whole tensor, shape (); axis=k: one S per slice along k, shape
    (x.shape[k],) (axis=0: per output channel of a weight, or per row of activations).
    float32, at least float32 eps; equal to compute_qparams(x.amin(..), x.amax(..), bits,
    symmetric=True).scale.

    Used by int_linear_prepare (labkit/quant/integer.py), QAT's weight quantiser (labkit/qat/)
    and the INT8 linear layers (labkit/generate/).
    """
    axis = _check_finite_axis(x, axis)  # None or in [0, ndim)
    qmax = qrange(bits, symmetric=True)[1]
    a = x.detach().abs()
    amax = a.amax() if axis is None else a.movedim(axis, 0).reshape(x.shape[axis], -1).amax(1)
    return (amax.double() / qmax).clamp(min=torch.finfo(torch.float32).eps).float()  # () or (C,)


# --------------------------------------------------------------------------- whole tensors


def quantize_tensor(
    x: torch.Tensor, bits: int = 8, symmetric: bool = True, axis: int | None = None
) -> tuple[torch.Tensor, QParams]:
    """MinMax-quantise x (per tensor, or per channel along ``axis``): (int32 q, QParams).

    Used by fake_quantize_minmax (labkit/quant/affine.py).
    """
    axis = _check_finite_axis(x, axis, bits)  # None or in [0, ndim)
    if axis is None:
        qp = compute_qparams(float(x.min()), float(x.max()), bits, symmetric)
    else:
        dims = [d for d in range(x.ndim) if d != axis]  # every dim but the channel's
        qp = compute_qparams(x.amin(dim=dims), x.amax(dim=dims), bits, symmetric)  # (C,)
    return quantize(x, qp.scale, qp.zero_point, qp.qmin, qp.qmax, axis=axis), qp


def fake_quantize_minmax(
    x: torch.Tensor, bits: int = 8, symmetric: bool = True, axis: int | None = None
) -> torch.Tensor:
    """x quantised with its own min/max range and dequantised back (float, x's shape).

    Used by scheme_sqnr and fake_quantize_weights (labkit/quant/affine.py).
    """
    q, qp = quantize_tensor(x, bits, symmetric, axis)
    return dequantize(q, qp.scale, qp.zero_point, axis=axis)


def sqnr_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Signal-to-quantisation-noise ratio: 10 log10(sum x^2 / sum (x - x_hat)^2) in dB.

    +inf when x_hat == x. Each extra bit of a uniform quantiser adds about 6.02 dB.

    Taught in notebooks/05_quantization_math.ipynb, "Calibration: choosing the range of an activation".
    """
    _check_sqnr(x, x_hat)
    signal = x.double().pow(2).sum().item()
    noise = (x.double() - x_hat.double()).pow(2).sum().item()
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def scheme_sqnr(w: torch.Tensor, bits: int, symmetric: bool, per_channel: bool) -> float:
    """SQNR (dB) of MinMax-quantising a weight tensor, per tensor or per output channel (dim 0).

    Taught in notebooks/05_quantization_math.ipynb, "3. Symmetric vs asymmetric, per-tensor vs per-channel (conv weights)".
    """
    _check_scheme_sqnr(w, bits)
    return sqnr_db(w, fake_quantize_minmax(w, bits, symmetric, axis=0 if per_channel else None))


def fake_quantize_weights(
    model: nn.Module, bits: int, symmetric: bool = True, per_channel: bool = True
) -> nn.Module:
    """A copy of ``model`` whose Conv2d/Linear weights are MinMax fake-quantised (weights only).

    Taught in notebooks/05_quantization_math.ipynb, "3. Symmetric vs asymmetric, per-tensor vs per-channel (conv weights)".
    """
    _check_fake_quantize_weights(model, bits)
    out = copy.deepcopy(model)
    axis = 0 if per_channel else None  # dim 0 = output channels of a Conv2d / Linear weight
    with torch.no_grad():
        for m in out.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(fake_quantize_minmax(m.weight, bits, symmetric, axis=axis))
    return out


def _along(t: torch.Tensor, x: torch.Tensor, axis: int | None) -> torch.Tensor:
    """t of shape () stays; t (C,) becomes (C, 1, .., 1), which broadcasts along x's ``axis``."""
    return t if axis is None else t.reshape(-1, *[1] * (x.ndim - 1 - axis % x.ndim))


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_affine(
    x: object, scale: object, zero_point: object, qmin: object, qmax: object, axis: object
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """(S, Z, qmin, qmax) for quantize / fake_quantize: S, Z float32 of shape () or (C, 1, .., 1)."""
    check_tensor(x, "x")
    qmin, qmax = _check_range(qmin, qmax)
    S, Z = _check_qparams(x, scale, zero_point, axis)  # () or (C,)
    return _along(S, x, axis), _along(Z, x, axis), qmin, qmax  # type: ignore[arg-type]


def _check_dequantize(
    q: object, scale: object, zero_point: object, axis: object
) -> tuple[torch.Tensor, torch.Tensor]:
    q = check_tensor(q, "q", floating=False)
    if q.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        raise ValueError(
            f"q must be an integer tensor (the output of quantize), got dtype {q.dtype}."
        )
    S, Z = _check_qparams(q, scale, zero_point, axis)  # () or (C,)
    return _along(S, q, axis), _along(Z, q, axis)  # type: ignore[arg-type]


def _check_axis(x: torch.Tensor, axis: object) -> int | None:
    if axis is None:
        return None
    return check_int(axis, "axis (None: per tensor)", low=-x.ndim, high=x.ndim - 1) % x.ndim


def _check_range(qmin: object, qmax: object) -> tuple[int, int]:
    qmin, qmax = check_int(qmin, "qmin"), check_int(qmax, "qmax")
    if not qmin < qmax:
        raise ValueError(f"need qmin < qmax, got qmin={qmin}, qmax={qmax}.")
    if qmax - qmin > 2**16 - 1:
        raise ValueError(
            f"the integer range [qmin, qmax] = [{qmin}, {qmax}] is wider than 16 bits; "
            "this course's quantisers cover 2 to 16 bits (8 bits: qmin=-128, qmax=127)."
        )
    return qmin, qmax


def _check_qparams(
    x: torch.Tensor, scale: object, zero_point: object, axis: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, Z) as float32 tensors (Z holding integers): shape () per tensor, (x.shape[axis],) per channel."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float, torch.Tensor)):
        raise ValueError(f"scale must be a float or a tensor, got {type(scale).__name__}.")
    if isinstance(zero_point, bool) or not isinstance(zero_point, (int, torch.Tensor)):
        raise ValueError(
            f"zero_point must be an int (or an integer tensor per channel), got {zero_point!r}."
        )
    if (
        isinstance(zero_point, torch.Tensor)
        and zero_point.is_floating_point()
        and not torch.equal(zero_point, zero_point.round())
    ):
        raise ValueError("zero_point must hold integers; use torch.round(zp).to(torch.int64).")
    S = torch.as_tensor(scale, dtype=torch.float32).detach()
    Z = torch.as_tensor(zero_point).detach().to(torch.float32)
    if not torch.isfinite(S).all() or not (S > 0).all():
        raise ValueError(f"scale must be finite and > 0, got {scale!r}.")
    if axis is None:
        if S.numel() != 1 or Z.numel() != 1:
            raise ValueError(
                "per-tensor quantisation takes one scale and one zero point; "
                "for one per channel pass axis=<channel dim>."
            )
        return S.reshape(()), Z.reshape(())
    n = x.shape[_check_axis(x, axis)]  # type: ignore[index]
    if S.numel() != n or Z.numel() != n:
        raise ValueError(
            f"per-channel scale and zero_point need {n} entries (x.shape[{axis}]), "
            f"got {S.numel()} and {Z.numel()}."
        )
    return S.reshape(-1), Z.reshape(-1)


def _check_compute_qparams(
    xmin: object, xmax: object, bits: object, symmetric: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """xmin, xmax as float64 tensors of shape (C,) (C = 1 for numbers), finite, xmin <= xmax."""
    check_bits(bits)
    check_bool(symmetric, "symmetric")
    for name, v in (("xmin", xmin), ("xmax", xmax)):
        if isinstance(v, bool) or not isinstance(v, (Real, torch.Tensor)):
            raise ValueError(f"{name} must be a number or a 1-D tensor, got {v!r}.")
        if isinstance(v, torch.Tensor) and v.numel() == 0:
            raise ValueError(f"{name} is empty; pass one value per channel.")
        if isinstance(v, torch.Tensor) and v.ndim > 1:
            raise ValueError(
                f"{name} must be a number or a 1-D tensor (one value per channel), got shape "
                f"{tuple(v.shape)}; reduce it first, e.g. x.amin(dim=...)."
            )
    lo = torch.as_tensor(xmin, dtype=torch.float64).detach().reshape(-1)
    hi = torch.as_tensor(xmax, dtype=torch.float64).detach().reshape(-1)
    if lo.shape != hi.shape:
        raise ValueError(f"xmin and xmax must have the same shape, got {lo.shape} and {hi.shape}.")
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise ValueError("xmin and xmax must be finite; did the calibration data contain inf/NaN?")
    if (lo > hi).any():
        raise ValueError(f"need xmin <= xmax, got xmin={xmin!r}, xmax={xmax!r}.")
    return lo, hi


def _check_finite_axis(x: object, axis: object, bits: object = 8) -> int | None:
    check_bits(bits)
    return _check_axis(_check_finite(x, "x"), axis)


def _check_sqnr(x: object, x_hat: object) -> None:
    a, b = _check_finite(x, "x"), _check_finite(x_hat, "x_hat")
    if a.shape != b.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {a.shape} and {b.shape}.")


def _check_fake_quantize_weights(model: object, bits: object) -> None:
    check_model(model, "model")
    check_bits(bits)


def _check_scheme_sqnr(w: object, bits: object) -> None:
    _check_finite(w, "w")
    check_bits(bits)


def _check_qrange(bits: object, symmetric: object) -> int:
    check_bool(symmetric, "symmetric")
    return check_bits(bits)


def _check_ste(x: object, S: object, Z: object, qmin: object, qmax: object) -> None:
    """STEFakeQuant.apply's inputs: tensors and an integer range (values are the caller's)."""
    check_tensor(x, "x")
    for name, t in (("S", S), ("Z", Z)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(
                f"{name} must be a float32 tensor that broadcasts with x (shape () per tensor), "
                f"got {type(t).__name__}; use torch.tensor({name}) or quant.fake_quantize."
            )
    _check_range(qmin, qmax)


def _check_finite(x: object, name: str) -> torch.Tensor:
    """A non-empty float tensor with no NaN or inf (as core's check_finite, but one aminmax
    instead of torch.isfinite: 5 us instead of 25 us on a small tensor, for the decode loop)."""
    x = check_nonempty(check_tensor(x, name), name)
    lo, hi = torch.aminmax(x.detach())  # NaN propagates, inf is an extreme
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(
            f"{name} contains NaN or inf; find where it first appears (torch.isfinite) "
            "and fix that step (a too-large learning rate, a division by zero, an overflow)."
        )
    return x
