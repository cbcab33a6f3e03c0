"""Beyond the uniform float grid: fixed point, power-of-two codes, integer-only arithmetic.

Fixed point Qm.n is the affine map with S = 2^-n, Z = 0. Power-of-two (logarithmic) codes
turn a multiplication into a bit shift. An integer-only linear layer accumulates int8 x int8
products in int32 and requantises with one integer multiplier and a right shift per output:

    q_y = Z_y + round(acc * M),   M = S_x S_w / S_y ~= multiplier / 2^shift
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from labkit.core.errors import check_bits, check_finite, check_int, check_positive, check_tensor
from labkit.quant.affine import (
    QParams,
    compute_qparams,
    dequantize,
    fake_quantize,
    qrange,
    quantize,
    sqnr_db,
    symmetric_scale,
)

# --------------------------------------------------------------------------- fixed point


def fixed_point(x: torch.Tensor, int_bits: int, frac_bits: int) -> torch.Tensor:
    """Round x to the signed fixed-point format Q(int_bits).(frac_bits) and back to float.

    A Qm.n number is a (1 + m + n)-bit two's-complement integer k read as k / 2^n:
    step 2^-n, range [-2^m, 2^m - 2^-n]. It is affine quantisation with S = 2^-n, Z = 0.

    Taught in notebooks/05_quantization_math.ipynb, "Fixed point".
    """
    _check_fixed_point(int_bits, frac_bits)
    S = 2.0**-frac_bits  # the step
    qmin, qmax = qrange(1 + int_bits + frac_bits, symmetric=True)
    return dequantize(quantize(x, S, 0, qmin, qmax), S, 0)


# --------------------------------------------------------------------------- log quantisation


class Pow2Codes(NamedTuple):
    """Power-of-two codes: value = sign * 2^exponent, or 0 where ``zero`` is True.

    Used by pow2_quantize (labkit/quant/integer.py).
    """

    sign: torch.Tensor
    exponent: torch.Tensor
    zero: torch.Tensor
    values: torch.Tensor


def pow2_quantize(x: torch.Tensor, bits: int = 4, max_exponent: int | None = None) -> Pow2Codes:
    """Logarithmic quantisation: every value becomes 0 or +-2^e (multiplying = a bit shift).

    One bit is the sign; the other bits - 1 bits index 2^(bits-1) - 1 exponents
    e in [e_max - 2^(bits-1) + 2, e_max] plus one code for zero. e_max defaults to
    round(log2 max|x|). e = clamp(round(log2 |x|), e_min, e_max); values with
    |x| < 2^(e_min - 1) (closer to 0 than to 2^e_min in the log domain) become 0.

    Taught in notebooks/05_quantization_math.ipynb, "Power-of-two (logarithmic) quantisation".
    """
    _check_pow2(x, bits, max_exponent)
    amax = float(x.detach().abs().max())
    if max_exponent is None:
        max_exponent = round(math.log2(amax)) if amax > 0 else 0
    e_min = max_exponent - (2 ** (bits - 1) - 1) + 1  # 2^(bits-1) - 1 exponents, one zero code
    mag = x.detach().abs().double()
    e = torch.round(torch.log2(mag.clamp(min=2.0 ** (e_min - 2)))).clamp(e_min, max_exponent)
    zero = mag < 2.0 ** (e_min - 1)
    sign = torch.where(x.detach() < 0, -1, 1).to(torch.int8)
    values = torch.where(zero, 0.0, sign.double() * torch.pow(2.0, e)).to(x.dtype)
    return Pow2Codes(sign, e.to(torch.int32), zero, values)


def pow2_rounding_error(bits: int, amax: float, x: torch.Tensor) -> tuple[float, float]:
    """SQNR (dB) of power-of-two vs uniform symmetric quantisation of x at ``bits`` bits.

    Taught in notebooks/05_quantization_math.ipynb, "Power-of-two (logarithmic) quantisation".
    """
    check_positive(amax, "amax")
    qp = compute_qparams(-amax, amax, bits, symmetric=True)
    uni = fake_quantize(x, qp.scale, qp.zero_point, qp.qmin, qp.qmax)
    return sqnr_db(x, pow2_quantize(x, bits).values), sqnr_db(x, uni)


# --------------------------------------------------------------------------- integer-only layer


def quantize_multiplier(m: float) -> tuple[int, int]:
    """A real multiplier m > 0 as an integer pair: m ~= multiplier / 2^shift.

    multiplier is a 31-bit integer in [2^30, 2^31) (a Q0.31 number in [0.5, 1)), found
    from m = f 2^e with f in [0.5, 1): multiplier = round(f 2^31), shift = 31 - e. The
    relative error is below 2^-31. (gemmlowp / TFLite's QuantizeMultiplier.)

    Used by int_linear_prepare (labkit/quant/integer.py).
    """
    m = _check_multiplier(m)  # finite, in [2^-32, 2^31)
    f, e = math.frexp(m)  # m = f 2^e, f in [0.5, 1)
    mult = round(f * 2**31)
    if mult == 2**31:  # f rounded up to 1.0
        mult //= 2
        e += 1
    return mult, 31 - e


def rounding_shift(
    acc: torch.Tensor, multiplier: torch.Tensor, shift: torch.Tensor
) -> torch.Tensor:
    """round(acc * multiplier / 2^shift) with integers only (int64, round half up).

    (acc * multiplier + 2^(shift-1)) >> shift; >> on a negative int64 is a floor, so the
    +half turns it into round-half-up. shift in [1, 62]. The product must fit in int64:
    |acc| * |multiplier| + 2^(shift-1) < 2^63 (an int32 accumulator times a 31-bit
    multiplier always does); larger operands raise instead of wrapping around silently.

    Used by int_linear (labkit/quant/integer.py).
    """
    _check_rounding_shift(acc, multiplier, shift)
    prod = acc.to(torch.int64) * multiplier.to(torch.int64)  # (N, out) or broadcast
    sh = shift.to(torch.int64)
    return (prod + (1 << (sh - 1))) >> sh


class IntLinear(NamedTuple):
    """An nn.Linear prepared for integer-only inference (see ``int_linear_prepare``).

    q_weight int8 (out, in), per output channel symmetric; bias int32 (out,) in units of
    S_x S_w; multiplier/shift int64 (out,) with M = S_x S_w / S_y ~= multiplier / 2^shift;
    the input and output qparams.

    Used by int_linear_prepare and int_linear (labkit/quant/integer.py).
    """

    q_weight: torch.Tensor
    w_scale: torch.Tensor
    q_bias: torch.Tensor
    multiplier: torch.Tensor
    shift: torch.Tensor
    x_qparams: QParams
    y_qparams: QParams


def int_linear_prepare(linear: nn.Linear, x_qparams: QParams, y_qparams: QParams) -> IntLinear:
    """Quantise a float nn.Linear for int8 x int8 -> int32 inference.

    Weights: symmetric int8 per output row, S_w[o] = max |W[o]| / 127, Z_w = 0.
    Bias: q_b = round(b / (S_x S_w)) as int32 (it is added to the int32 accumulator).
    Requantisation: M[o] = S_x S_w[o] / S_y as (multiplier, shift).

    Taught in notebooks/05_quantization_math.ipynb, "Integer-only linear layer".
    """
    _check_int_linear_prepare(linear, x_qparams, y_qparams)
    w = linear.weight.detach().float()  # (out, in)
    w_scale = symmetric_scale(w, 8, axis=0)  # (out,) S_w = max|W[o]| / 127
    zeros = torch.zeros_like(w_scale, dtype=torch.int64)
    q_w = quantize(w, w_scale, zeros, -128, 127, axis=0).to(torch.int8)  # (out, in)
    acc_scale = x_qparams.scale * w_scale.double()  # (out,) float64
    b = linear.bias.detach().double() if linear.bias is not None else torch.zeros(w.shape[0])
    q_b = torch.round(b / acc_scale).to(torch.int32)  # (out,)
    pairs = [quantize_multiplier(float(s) / y_qparams.scale) for s in acc_scale]
    mult = torch.tensor([p[0] for p in pairs], dtype=torch.int64)  # (out,)
    shift = torch.tensor([p[1] for p in pairs], dtype=torch.int64)  # (out,)
    return IntLinear(q_w, w_scale, q_b, mult, shift, x_qparams, y_qparams)


def int_linear(q_x: torch.Tensor, layer: IntLinear) -> torch.Tensor:
    """Integer-only y = x W^T + b: q_x (N, in) 8-bit ints -> q_y (N, out) int32 codes.

    acc[n, o] = sum_k (q_x[n, k] - Z_x) q_w[o, k] + q_b[o]      (int32 accumulate)
    q_y = clamp(Z_y + round(acc * multiplier[o] / 2^shift[o]), qmin_y, qmax_y)
    No float operation is used; dequantize(q_y, S_y, Z_y) approximates the float layer.

    Taught in notebooks/05_quantization_math.ipynb, "Integer-only linear layer".
    """
    _check_int_linear(q_x, layer)
    xq, yq = layer.x_qparams, layer.y_qparams
    x_centered = q_x.to(torch.int32) - xq.zero_point  # (N, in) in [-255, 255]
    acc = x_centered @ layer.q_weight.to(torch.int32).T + layer.q_bias  # (N, out) int32
    y = rounding_shift(acc, layer.multiplier, layer.shift) + yq.zero_point  # (N, out)
    return y.clamp(yq.qmin, yq.qmax).to(torch.int32)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_fixed_point(int_bits: object, frac_bits: object) -> None:
    total = 1 + check_int(int_bits, "int_bits", low=0) + check_int(frac_bits, "frac_bits", low=0)
    if not 2 <= total <= 16:
        raise ValueError(
            f"1 + int_bits + frac_bits = {total} bits; this course's quantisers cover 2 to 16 bits."
        )


def _check_pow2(x: object, bits: object, max_exponent: object) -> None:
    check_finite(check_tensor(x, "x"), "x")
    check_bits(bits)
    if max_exponent is not None:  # float64's exponents: 2^e stays a finite float
        check_int(max_exponent, "max_exponent", low=-1022, high=1023)


def _check_multiplier(m: object) -> float:
    """m finite and > 0, with shift = 31 - e in [0, 62], i.e. m in about [2^-32, 2^31)."""
    m = check_positive(m, "m")
    f, e = math.frexp(m)
    if not -31 <= e + (round(f * 2**31) == 2**31) <= 31:
        raise ValueError(
            f"multiplier m={m!r} is out of the range this requantiser supports "
            "(shift = 31 - exponent must be in [0, 62]: m in about [2^-32, 2^31))."
        )
    return m


def _check_rounding_shift(acc: object, multiplier: object, shift: object) -> None:
    a, m, sh = (
        _check_int_tensor(t, n)
        for t, n in ((acc, "acc"), (multiplier, "multiplier"), (shift, "shift"))
    )
    try:
        torch.broadcast_shapes(a.shape, m.shape, sh.shape)
    except RuntimeError:
        raise ValueError(
            f"acc {tuple(a.shape)}, multiplier {tuple(m.shape)} and shift {tuple(sh.shape)} "
            "do not broadcast; for acc (N, out) use one multiplier and shift per column (out,)."
        ) from None
    if int(sh.min()) < 1 or int(sh.max()) > 62:
        raise ValueError(
            f"shift must be in [1, 62], got values in [{int(sh.min())}, {int(sh.max())}]."
        )
    # in int64: abs() of an int32 -2^31 would wrap around to itself
    a_max, m_max = int(a.to(torch.int64).abs().max()), int(m.to(torch.int64).abs().max())
    if a_max * m_max + 2 ** (int(sh.max()) - 1) >= 2**63:  # exact Python integers
        raise ValueError(
            f"acc * multiplier overflows int64 (|acc| up to {a_max}, multiplier up to {m_max}); "
            "keep the accumulator in int32 range, or split the reduction."
        )


def _check_int_tensor(t: object, name: str) -> torch.Tensor:
    t = check_tensor(t, name, floating=False)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor, got dtype {t.dtype}.")
    return check_finite(t, name)  # integer: non-empty


def _check_int_linear_prepare(linear: object, x_qparams: object, y_qparams: object) -> None:
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"linear must be an nn.Linear, got {type(linear).__name__}.")
    for name, qp in (("x_qparams", x_qparams), ("y_qparams", y_qparams)):
        if not isinstance(qp, QParams) or isinstance(qp.scale, torch.Tensor):
            raise ValueError(f"{name} must be per-tensor QParams (from compute_qparams).")
        if qp.qmin < -128 or qp.qmax > 255:
            raise ValueError(f"{name} must describe 8-bit integers, got [{qp.qmin}, {qp.qmax}].")
        check_positive(qp.scale, f"{name}.scale")
    check_finite(linear.weight.detach(), "linear.weight")
    if linear.bias is not None:
        check_finite(linear.bias.detach(), "linear.bias")


def _check_int_linear(q_x: object, layer: object) -> None:
    if not isinstance(layer, IntLinear):
        raise ValueError(
            f"layer must be an IntLinear (from int_linear_prepare), got {type(layer).__name__}."
        )
    q_x = _check_int_tensor(check_tensor(q_x, "q_x", floating=False, ndim=2), "q_x")
    k = q_x.shape[1]
    if k != layer.q_weight.shape[1]:
        raise ValueError(f"q_x has {k} features but the layer expects {layer.q_weight.shape[1]}.")
    xq = layer.x_qparams
    if int(q_x.min()) < xq.qmin or int(q_x.max()) > xq.qmax:
        raise ValueError(f"q_x has codes outside [{xq.qmin}, {xq.qmax}]; quantize it first.")
    if k * 255 * 128 >= 2**31:
        raise ValueError(f"{k} input features could overflow the int32 accumulator.")
