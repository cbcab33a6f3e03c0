"""Quantization math: r = S (q - Z), its calibration, and integer-only arithmetic.

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

Contents: quantize / dequantize / fake_quantize / compute_qparams (the course contract),
STEFakeQuant (the course's one straight-through fake-quant, used by qat), symmetric_scale (the
one max|w| / (2^(b-1) - 1), used by qat and generate), SQNR, calibration observers (MinMax, Percentile, Entropy/KL, MSE), fixed-point numbers,
power-of-two (log) quantisation and an integer-only linear layer with requantisation.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from labkit.core.errors import check_bits, check_positive, check_tensor

Number = float | int
ScaleLike = float | torch.Tensor
ZeroLike = int | torch.Tensor


class QParams(NamedTuple):
    """Quantisation parameters: scale S (> 0), zero point Z, and the integer range.

    Per-tensor: ``scale`` is a float and ``zero_point`` an int. Per-channel: both are 1-D
    tensors (float32 and int64) with one entry per channel.

    Taught in notebooks/05_quantization_math.ipynb, "1. The affine map $r = S(q - Z)$".
    """

    scale: ScaleLike
    zero_point: ZeroLike
    qmin: int
    qmax: int


# --------------------------------------------------------------------------- the affine map


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
    check_tensor(x, "x")
    qmin, qmax = _check_range(qmin, qmax)
    S, Z = _check_qparams(x, scale, zero_point, axis)  # float32, () or (C,)
    S, Z = _along(S, x, axis), _along(Z, x, axis)  # () or (C, 1, .., 1)
    x = x if x.dtype == torch.float64 else x.float()  # torch's compute type
    q = torch.round(x * (1 / S)) + Z
    return q.clamp(qmin, qmax).nan_to_num(nan=qmin).to(torch.int32)


def dequantize(
    q: torch.Tensor, scale: ScaleLike, zero_point: ZeroLike, *, axis: int | None = None
) -> torch.Tensor:
    """r_hat = S (q - Z) as float32; q is an integer tensor, S and Z as in ``quantize``.

    Taught in notebooks/05_quantization_math.ipynb, "1. The affine map $r = S(q - Z)$".
    """
    check_tensor(q, "q", floating=False)
    if q.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        raise ValueError(
            f"q must be an integer tensor (the output of quantize), got dtype {q.dtype}."
        )
    S, Z = _check_qparams(q, scale, zero_point, axis)  # float32, () or (C,)
    S, Z = _along(S, q, axis), _along(Z, q, axis)  # () or (C, 1, .., 1)
    return S * (q.float() - Z)


class STEFakeQuant(torch.autograd.Function):
    """x_hat = S (clamp(round(x / S) + Z, qmin, qmax) - Z), with the straight-through gradient.

    forward:  as ``fake_quantize`` (torch.fake_quantize_per_{tensor,channel}_affine bit for bit);
              x = NaN gives S (qmin - Z), as torch does.
    backward: dL/dx = dL/dx_hat * 1[qmin <= round(x / S) + Z <= qmax]: 1 inside the range, 0
              where clamped, 0 at NaN. No gradient for S or Z (they come from observers).
    S, Z: float32 tensors that broadcast with x, shape () per tensor or (C, 1, .., 1) per
    channel. ``fake_quantize`` is the checked way in; QAT layers call ``apply`` directly.

    Taught in notebooks/06_ptq_and_qat.ipynb, "1. Fake quantisation and the straight-through estimator".
    """

    @staticmethod
    def forward(ctx, x, S, Z, qmin, qmax):  # type: ignore[override]
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
    check_tensor(x, "x")
    qmin, qmax = _check_range(qmin, qmax)
    S, Z = _check_qparams(x, scale, zero_point, axis)  # float32, () or (C,)
    return STEFakeQuant.apply(x, _along(S, x, axis), _along(Z, x, axis), qmin, qmax)


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """The integer range: signed [-2^(b-1), 2^(b-1)-1] if symmetric, else [0, 2^b - 1].

    Taught in notebooks/05_quantization_math.ipynb, "1. The affine map $r = S(q - Z)$".
    """
    bits = check_bits(bits)
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

    S is at least float32 eps (an all-zero range still gives a valid grid); Z is clamped into
    [qmin, qmax]. Numbers give per-tensor QParams (float S, int Z); 1-D tensors of shape (C,)
    (even C = 1) give per-channel QParams (S float32 (C,), Z int64 (C,)).

    Taught in notebooks/05_quantization_math.ipynb, "1. The affine map $r = S(q - Z)$".
    """
    bits = check_bits(bits)
    if not isinstance(symmetric, bool):
        raise ValueError(f"symmetric must be True or False, got {symmetric!r}.")
    lo, hi = _check_minmax(xmin, xmax)  # float64 (C,)
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
    symmetric=True).scale. Used by QAT's weight quantiser (06) and the INT8 linear layers (11).

    Taught in notebooks/05_quantization_math.ipynb, "3. Symmetric vs asymmetric, per-tensor vs per-channel (conv weights)".
    """
    check_tensor(x, "x")
    qmax = qrange(bits, symmetric=True)[1]
    axis = _check_axis(x, axis)
    a = x.detach().abs()
    amax = a.amax() if axis is None else a.movedim(axis, 0).reshape(x.shape[axis], -1).amax(1)
    return (amax.double() / qmax).clamp(min=torch.finfo(torch.float32).eps).float()


# --------------------------------------------------------------------------- checks


def _along(t: torch.Tensor, x: torch.Tensor, axis: int | None) -> torch.Tensor:
    """t of shape () stays; t (C,) becomes (C, 1, .., 1), which broadcasts along x's ``axis``."""
    return t if axis is None else t.reshape(-1, *[1] * (x.ndim - 1 - axis % x.ndim))


def _check_axis(x: torch.Tensor, axis: object) -> int | None:
    if axis is not None and (
        isinstance(axis, bool) or not isinstance(axis, int) or not -x.ndim <= axis < x.ndim
    ):
        raise ValueError(f"axis must be None or an int in [-{x.ndim}, {x.ndim}), got {axis!r}.")
    return None if axis is None else axis % x.ndim


def _check_range(qmin: object, qmax: object) -> tuple[int, int]:
    for name, v in (("qmin", qmin), ("qmax", qmax)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name} must be a Python int, got {v!r}.")
    if not qmin < qmax:  # type: ignore[operator]
        raise ValueError(f"need qmin < qmax, got qmin={qmin}, qmax={qmax}.")
    if qmax - qmin > 2**16 - 1:  # type: ignore[operator]
        raise ValueError(
            f"the integer range [{qmin}, {qmax}] is wider than 16 bits; "
            "this course's quantisers cover 2 to 16 bits."
        )
    return int(qmin), int(qmax)  # type: ignore[call-overload]


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


def _check_minmax(xmin: object, xmax: object) -> tuple[torch.Tensor, torch.Tensor]:
    """xmin, xmax as float64 tensors of shape (C,) (C = 1 for numbers), finite, xmin <= xmax."""
    lo = torch.as_tensor(xmin, dtype=torch.float64).detach().reshape(-1)
    hi = torch.as_tensor(xmax, dtype=torch.float64).detach().reshape(-1)
    if lo.shape != hi.shape:
        raise ValueError(f"xmin and xmax must have the same shape, got {lo.shape} and {hi.shape}.")
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise ValueError("xmin and xmax must be finite; did the calibration data contain inf/NaN?")
    if (lo > hi).any():
        raise ValueError(f"need xmin <= xmax, got xmin={xmin!r}, xmax={xmax!r}.")
    return lo, hi


# --------------------------------------------------------------------------- whole tensors


def quantize_tensor(
    x: torch.Tensor, bits: int = 8, symmetric: bool = True, axis: int | None = None
) -> tuple[torch.Tensor, QParams]:
    """MinMax-quantise x (per tensor, or per channel along ``axis``): (int32 q, QParams).

    Taught in notebooks/05_quantization_math.ipynb, "3. Symmetric vs asymmetric, per-tensor vs per-channel (conv weights)".
    """
    check_tensor(x, "x")
    if _check_axis(x, axis) is None:
        qp = compute_qparams(float(x.min()), float(x.max()), bits, symmetric)
    else:
        dims = [d for d in range(x.ndim) if d != axis % x.ndim]  # type: ignore[operator]
        qp = compute_qparams(x.amin(dim=dims), x.amax(dim=dims), bits, symmetric)
    return quantize(x, qp.scale, qp.zero_point, qp.qmin, qp.qmax, axis=axis), qp


def fake_quantize_minmax(
    x: torch.Tensor, bits: int = 8, symmetric: bool = True, axis: int | None = None
) -> torch.Tensor:
    """x quantised with its own min/max range and dequantised back (float, x's shape).

    Taught in notebooks/05_quantization_math.ipynb, "3. Symmetric vs asymmetric, per-tensor vs per-channel (conv weights)".
    """
    q, qp = quantize_tensor(x, bits, symmetric, axis)
    return dequantize(q, qp.scale, qp.zero_point, axis=axis)


def sqnr_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Signal-to-quantisation-noise ratio: 10 log10(sum x^2 / sum (x - x_hat)^2) in dB.

    +inf when x_hat == x. Each extra bit of a uniform quantiser adds about 6.02 dB.

    Taught in notebooks/05_quantization_math.ipynb, "3. Symmetric vs asymmetric, per-tensor vs per-channel (conv weights)".
    """
    check_tensor(x, "x")
    check_tensor(x_hat, "x_hat")
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {x.shape} and {x_hat.shape}.")
    signal = x.double().pow(2).sum().item()
    noise = (x.double() - x_hat.double()).pow(2).sum().item()
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


# --------------------------------------------------------------------------- calibration


def _flat(x: object, name: str = "tensor") -> torch.Tensor:
    t = check_tensor(x, name).detach().reshape(-1).to(torch.float64)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains inf or NaN; calibration needs finite values.")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty; observe at least one value.")
    return t


class MinMaxObserver:
    """Range = the smallest and largest value seen (per tensor, or per channel on ``axis``).

    ``observe(x)`` any number of times, then ``qparams(bits, symmetric)``.

    Taught in notebooks/05_quantization_math.ipynb, "Calibration: choosing the range of an activation".
    """

    def __init__(self, axis: int | None = None) -> None:
        if axis is not None and (isinstance(axis, bool) or not isinstance(axis, int)):
            raise ValueError(f"axis must be None (per tensor) or an int, got {axis!r}.")
        self.axis = axis
        self.min_val: torch.Tensor | None = None
        self.max_val: torch.Tensor | None = None

    def observe(self, x: torch.Tensor) -> MinMaxObserver:
        x = check_tensor(x, "x").detach()
        if not torch.isfinite(x).all():
            raise ValueError("x contains inf or NaN; calibration needs finite values.")
        if self.axis is None:
            lo, hi = x.min().reshape(1), x.max().reshape(1)
        else:
            if not -x.ndim <= self.axis < x.ndim:  # axis % ndim would silently pick another dim
                raise ValueError(
                    f"axis={self.axis} does not exist for a {x.ndim}-D tensor of shape "
                    f"{tuple(x.shape)}; use an axis in [-{x.ndim}, {x.ndim}) (0 = output channels)."
                )
            dims = [d for d in range(x.ndim) if d != self.axis % x.ndim]
            lo, hi = x.amin(dim=dims), x.amax(dim=dims)
        lo, hi = lo.double(), hi.double()
        if self.min_val is None or self.max_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val = torch.minimum(self.min_val, lo)
            self.max_val = torch.maximum(self.max_val, hi)
        return self

    def range(self, bits: int = 8, symmetric: bool = False) -> tuple[float, float]:
        """The clipping range (lo, hi) the qparams will cover (per tensor only)."""
        lo, hi = self._minmax()
        if lo.numel() != 1:
            raise ValueError("range() is per tensor; use qparams() for a per-channel observer.")
        if symmetric:
            m = max(-float(lo), float(hi))
            return -m, m
        return float(lo), float(hi)

    def _minmax(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.min_val is None or self.max_val is None:
            raise ValueError("nothing observed yet: call .observe(tensor) first.")
        return self.min_val, self.max_val

    def qparams(self, bits: int = 8, symmetric: bool = False) -> QParams:
        lo, hi = self._minmax()
        if self.axis is None:
            return compute_qparams(float(lo), float(hi), bits, symmetric)
        return compute_qparams(lo, hi, bits, symmetric)


class HistogramObserver:
    """Base of the histogram calibrators: a signed histogram of everything observed.

    The histogram has ``2 * bins`` equal bins over [-R, R]. R starts as the first batch's
    max |x| and doubles when a later batch goes beyond it; doubling merges neighbouring bin
    pairs, so no count is ever re-estimated. The exact min and max are kept too.
    Subclasses choose the clipping range in ``range(bits, symmetric)``.

    Taught in notebooks/05_quantization_math.ipynb, "Calibration: choosing the range of an activation".
    """

    def __init__(self, bins: int = 2048) -> None:
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 16 or bins % 2:
            raise ValueError(f"bins must be an even int >= 16, got {bins!r}.")
        if bins > 2**20:  # three float64 arrays of 2 * bins: refuse before allocating GBs
            raise ValueError(f"bins={bins} is too many (at most 2**20 = 1048576); 2048 is typical.")
        self.bins = bins
        self.hist = torch.zeros(2 * bins, dtype=torch.float64)
        # per-bin count and sum of the values (own binning, consistent with each other):
        # their ratio is each bin's mean, the data's own value when a bin holds one value
        self._n = torch.zeros(2 * bins, dtype=torch.float64)
        self._sum = torch.zeros(2 * bins, dtype=torch.float64)
        self.radius = 0.0
        self.min_val = math.inf
        self.max_val = -math.inf

    def observe(self, x: torch.Tensor) -> HistogramObserver:
        t = _flat(x, "x")
        self.min_val = min(self.min_val, float(t.min()))
        self.max_val = max(self.max_val, float(t.max()))
        amax = float(t.abs().max())
        if self.radius == 0.0:
            self.radius = amax if amax > 0 else 1.0
        while amax > self.radius:
            pad = torch.zeros(self.bins // 2, dtype=torch.float64)
            # 2B bins -> B bins over [-R, R], padded to 2B bins over [-2R, 2R]
            self.hist, self._n, self._sum = (
                torch.cat([pad, h.reshape(-1, 2).sum(1), pad])
                for h in (self.hist, self._n, self._sum)
            )
            self.radius *= 2
        self.hist += torch.histc(t, 2 * self.bins, -self.radius, self.radius).double()
        idx = ((t + self.radius) / self.width).floor().clamp(0, 2 * self.bins - 1).long()
        self._n += torch.bincount(idx, minlength=2 * self.bins).double()
        self._sum += torch.bincount(idx, weights=t, minlength=2 * self.bins)
        return self

    def means(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean value, count) of every non-empty bin, float64: the data as the search sees it."""
        keep = self._n > 0
        return self._sum[keep] / self._n[keep], self._n[keep]

    def _check(self) -> None:
        if self.hist.sum() == 0:
            raise ValueError("nothing observed yet: call .observe(tensor) first.")

    @property
    def width(self) -> float:
        """Width of one histogram bin (same unit as x)."""
        return self.radius / self.bins

    def abs_hist(self) -> torch.Tensor:
        """Histogram of |x|: bins bins over [0, R], bin i covers [i w, (i + 1) w]."""
        b = self.bins
        return self.hist[b:] + self.hist[:b].flip(0)

    def centers(self) -> torch.Tensor:
        """Centres of the 2B signed bins (float64, shape (2B,))."""
        w = self.width
        return -self.radius + w * (torch.arange(2 * self.bins, dtype=torch.float64) + 0.5)

    def range(self, bits: int = 8, symmetric: bool = False) -> tuple[float, float]:
        raise NotImplementedError

    def qparams(self, bits: int = 8, symmetric: bool = False) -> QParams:
        lo, hi = self.range(bits, symmetric)
        return compute_qparams(lo, hi, bits, symmetric)

    def _clip_to_data(self, lo: float, hi: float) -> tuple[float, float]:
        return max(lo, min(self.min_val, 0.0)), min(hi, max(self.max_val, 0.0))


class PercentileObserver(HistogramObserver):
    """Range = the ``percentile`` of |x| (symmetric) or the two tails of x (asymmetric).

    symmetric:  T = quantile_p(|x|), range (-T, T);
    asymmetric: range (quantile_(1-p)/2 (x), quantile_(1+p)/2 (x)), i.e. (100 - p)/2 % cut
    from each tail, the convention of ONNX Runtime's percentile calibrator. Quantiles are read
    from the histogram (resolution: one bin) and never go beyond the data's min/max.

    Taught in notebooks/05_quantization_math.ipynb, "Calibration: choosing the range of an activation".
    """

    def __init__(self, percentile: float = 99.99, bins: int = 2048) -> None:
        super().__init__(bins)
        if not isinstance(percentile, (int, float)) or not 50 < percentile <= 100:
            raise ValueError(f"percentile must be in (50, 100], got {percentile!r}.")
        self.percentile = float(percentile)

    def _first_bin_reaching(self, hist: torch.Tensor, fraction: Fraction) -> int:
        """The first bin whose cumulative count reaches ceil(fraction * N) (at least 1).

        Ranks are computed with exact integers: p / 100 in floating point can land past
        k / N (99.9 / 100 is stored as 0.9990000000000001 > 999 / 1000) and pick the next bin.
        """
        counts = torch.cumsum(hist, 0)  # float64 holding integers (exact below 2^53)
        total = int(counts[-1])
        k = max(1, math.ceil(fraction * total))
        return int(torch.searchsorted(counts, torch.tensor([float(k)], dtype=torch.float64)))

    def range(self, bits: int = 8, symmetric: bool = False) -> tuple[float, float]:
        check_bits(bits)
        self._check()
        p = Fraction(repr(self.percentile)) / 100  # the decimal the user wrote, exactly
        w = self.width
        if symmetric:
            idx = self._first_bin_reaching(self.abs_hist(), p)
            t = min((idx + 1) * w, max(-self.min_val, self.max_val))
            return -t, t
        i_lo = self._first_bin_reaching(self.hist, (1 - p) / 2)
        i_hi = self._first_bin_reaching(self.hist, 1 - (1 - p) / 2)
        lo = -self.radius + i_lo * w
        hi = -self.radius + (i_hi + 1) * w
        return self._clip_to_data(lo, hi)


def kl_threshold(hist: torch.Tensor, num_quantized_bins: int = 128) -> int:
    """TensorRT's entropy calibration on a histogram of |x|: the best number of bins to keep.

    For every candidate i in [num_quantized_bins, len(hist)]:
      P = hist[:i] with the outliers sum(hist[i:]) added to its last bin (what clipping at
          edge i does to the distribution);
      Q = hist[:i] merged into num_quantized_bins equal groups (bin j goes to group
          j * num_quantized_bins // i), each group's mass spread evenly over its non-empty
          bins (what quantising [0, edge i] with that many levels keeps);
      KL(P || Q) = sum P log(P / Q) after normalising both (bins where P = 0 contribute 0,
      Q = 0 where P > 0 is smoothed with a tiny eps).
    Returns the i with the smallest KL; the threshold is i * bin_width. (MXNet and ONNX
    Runtime put the remainder of i // num_quantized_bins into the last group instead; for
    i < 2 num_quantized_bins that makes Q almost a copy of P and biases the search towards
    the smallest candidates.)

    Taught in notebooks/05_quantization_math.ipynb, "Exercise 4: KL threshold search".
    """
    check_tensor(hist, "hist", floating=False, ndim=1)
    h = hist.detach().double().cpu().numpy()
    n = h.size
    if not np.isfinite(h).all() or (h < 0).any():
        raise ValueError(
            "hist must hold finite counts >= 0 (a histogram of |x|); it has NaN, inf or "
            "negative entries - build it with torch.histc(x.abs(), bins, 0, max)."
        )
    if isinstance(num_quantized_bins, bool) or not isinstance(num_quantized_bins, int):
        raise ValueError(f"num_quantized_bins must be an int, got {num_quantized_bins!r}.")
    if num_quantized_bins < 2 or num_quantized_bins > n:
        raise ValueError(
            f"num_quantized_bins must be in 2..{n} (the histogram's length), "
            f"got {num_quantized_bins}."
        )
    if h.sum() <= 0:
        raise ValueError("the histogram is empty.")
    best_i, best_kl = n, math.inf
    tail = np.concatenate([np.cumsum(h[::-1])[::-1], [0.0]])  # tail[i] = sum(h[i:])
    for i in range(num_quantized_bins, n + 1):
        p = h[:i].copy()
        p[-1] += tail[i]
        groups = np.arange(i) * num_quantized_bins // i  # equal groups, as NVIDIA's toolkit
        nonzero = h[:i] != 0
        mass = np.bincount(groups, weights=h[:i], minlength=num_quantized_bins)
        count = np.bincount(groups, weights=nonzero, minlength=num_quantized_bins)
        q = np.where(nonzero, mass[groups] / np.maximum(count[groups], 1), 0.0)
        kl = _kl(p, q)
        if kl < best_kl:
            best_kl, best_i = kl, i
    return best_i


def _kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-10) -> float:
    """KL(P || Q) of two unnormalised histograms; empty Q bins under P mass get eps."""
    p = p / p.sum()
    q = q / q.sum() if q.sum() > 0 else q
    mask = p > 0
    qm = np.where(q[mask] > 0, q[mask], eps)
    return float(np.sum(p[mask] * np.log(p[mask] / qm)))


class EntropyObserver(HistogramObserver):
    """KL-divergence calibration (TensorRT-style) on the histogram of |x|.

    The threshold T = kl_threshold(hist of |x| up to max |x|, 2^(bits-1)) * bin_width
    minimises KL(P || Q) between the clipped distribution and its quantised version.
    symmetric: (-T, T); asymmetric: (max(min x, -T), min(max x, T)), e.g. (0, T) after ReLU.

    Taught in notebooks/05_quantization_math.ipynb, "Calibration: choosing the range of an activation".
    """

    def __init__(self, bins: int = 2048) -> None:
        super().__init__(bins)
        self._cache: dict[tuple[int, float, float], float] = {}

    def range(self, bits: int = 8, symmetric: bool = False) -> tuple[float, float]:
        bits = check_bits(bits)
        self._check()
        levels = min(2 ** (bits - 1), self.bins)
        key = (levels, float(self.hist.sum()), self.radius)
        if key not in self._cache:
            # candidates stop at the largest observed |x|: the empty bins a doubled radius
            # leaves above it clip nothing, they only coarsen Q and bias the search upwards
            h = self.abs_hist()
            h = h[: max(int(torch.nonzero(h).max()) + 1, levels)]
            self._cache[key] = kl_threshold(h, levels) * self.width
        t = self._cache[key]
        if symmetric:
            return -t, t
        return self._clip_to_data(-t, t)


class MSEObserver(HistogramObserver):
    """Range that minimises the mean squared quantisation error over the histogram.

    Candidates shrink the min/max range: (a lo, a hi) for a in a grid over (0, 1], plus every
    a that puts the range's end exactly on one of the data's own (non-empty bin) values
    (the largest ``max_data_candidates`` of them): a grid of max/200 alone cannot clip an outlier
    that lies within 0.5 % of the maximum (NVIDIA pytorch-quantization's calibrator test).
    Each candidate is scored by sum_bins count * (c - fake_quantize(c))^2 over the bins' mean
    values c (a bin's mean is the data's own value when the bin holds one distinct value).

    Taught in notebooks/05_quantization_math.ipynb, "Calibration: choosing the range of an activation".
    """

    def __init__(self, bins: int = 2048, grid: int = 200, max_data_candidates: int = 64) -> None:
        super().__init__(bins)
        if isinstance(grid, bool) or not isinstance(grid, int) or not 2 <= grid <= 100_000:
            raise ValueError(f"grid must be an int in [2, 100000] (200 is typical), got {grid!r}.")
        if isinstance(max_data_candidates, bool) or not isinstance(max_data_candidates, int):
            raise ValueError(f"max_data_candidates must be an int, got {max_data_candidates!r}.")
        self.grid = grid
        self.max_data_candidates = max(0, max_data_candidates)

    def candidates(self, symmetric: bool = False) -> torch.Tensor:
        """The shrink factors a in (0, 1] that are tried (float64, sorted, unique)."""
        lo0, hi0 = min(self.min_val, 0.0), max(self.max_val, 0.0)
        m = max(-lo0, hi0)
        grid = torch.linspace(1.0 / self.grid, 1.0, self.grid, dtype=torch.float64)
        data, _ = self.means()
        # the data's own values on the side that sets the range (both sides if symmetric)
        side = data.abs() if symmetric else (data if hi0 >= -lo0 else -data)
        side = side[side > 0].unique()[-self.max_data_candidates :] if m > 0 else side[:0]
        own = (side / m).clamp(max=1.0) if m > 0 else side
        return torch.cat([grid, own]).unique()

    def range(self, bits: int = 8, symmetric: bool = False) -> tuple[float, float]:
        bits = check_bits(bits)
        self._check()
        lo0, hi0 = min(self.min_val, 0.0), max(self.max_val, 0.0)
        if symmetric:
            m = max(-lo0, hi0)
            lo0, hi0 = -m, m
        c, n = self.means()  # (K,) each non-empty bin's mean value and count
        a = self.candidates(symmetric)  # (A,)
        best, best_err = (lo0, hi0), math.inf
        for chunk in a.split(64):  # (a, K) at a time: a few MB at most
            qp = compute_qparams(lo0 * chunk, hi0 * chunk, bits, symmetric)
            x = c.float().expand(len(chunk), -1)
            c_hat = fake_quantize(x, qp.scale, qp.zero_point, qp.qmin, qp.qmax, axis=0)
            err = (n * (c - c_hat.double()) ** 2).sum(1)  # (a,)
            i = int(torch.argmin(err))
            if float(err[i]) < best_err:
                best_err = float(err[i])
                best = (lo0 * float(chunk[i]), hi0 * float(chunk[i]))
        return best


OBSERVERS = {
    "minmax": MinMaxObserver,
    "percentile": PercentileObserver,
    "entropy": EntropyObserver,
    "mse": MSEObserver,
}


def calibrate_observer(
    batches: list[torch.Tensor], observer: MinMaxObserver | HistogramObserver
) -> MinMaxObserver | HistogramObserver:
    """Feed every batch to ``observer`` and return it (ready for ``.range`` / ``.qparams``).

    (A whole model's activation ranges are calibrated by ``qat.calibrate_activations``.)

    Taught in notebooks/05_quantization_math.ipynb, "Calibration: choosing the range of an activation".
    """
    for b in batches:
        observer.observe(b)
    return observer


def ort_range(
    batches: list[torch.Tensor],
    method: str = "minmax",
    symmetric: bool = False,
    **options: object,
) -> tuple[float, float]:
    """The range ONNX Runtime's own calibrator picks for the same data (lo, hi).

    Builds a one-node ONNX model (Y = X * 1), feeds the concatenated ``batches`` through
    ``onnxruntime.quantization.calibrate.create_calibrator`` with CalibrationMethod
    MinMax / Entropy / Percentile and reads the range of X. ``options`` go to
    ``extra_options`` (e.g. num_bins=2048, num_quantized_bins=128, percentile=99.99).

    Taught in notebooks/05_quantization_math.ipynb, "5. The same data through ONNX Runtime's calibrators".
    """
    import contextlib
    import io
    import tempfile
    from pathlib import Path

    from labkit.core.errors import require

    onnx = require("onnx", why="to build the model ONNX Runtime calibrates")
    require("onnxruntime", why="ONNX Runtime's calibrators")
    from onnx import TensorProto, helper
    from onnxruntime.quantization.calibrate import CalibrationDataReader, create_calibrator

    from labkit.core.onnx import calibration_method

    ort_method = calibration_method(method)  # the one name -> ORT table (labkit.onnx)
    if not batches:
        raise ValueError("batches is empty; pass at least one tensor.")
    # one concatenated batch: ORT stacks per-batch outputs, which needs equal batch sizes
    arrays = [torch.cat([_flat(b, "batch") for b in batches]).float().numpy()[None, :]]
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, None])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, None])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["X", "one"], ["Y"])],
        "calib",
        [x],
        [y],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"X": a} for a in arrays])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    extra = {"symmetric": symmetric, **options}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        path = Path(tmp) / "calib.onnx"
        onnx.save(model, str(path))
        cal = create_calibrator(
            path,
            ["Mul"],
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=ort_method,
            extra_options=extra,
        )
        cal.collect_data(Reader())
        data = cal.compute_data()
    rng = data["Y"].range_value
    return float(np.asarray(rng[0]).reshape(-1)[0]), float(np.asarray(rng[1]).reshape(-1)[0])


# --------------------------------------------------------------------------- fixed point


def fixed_point(x: torch.Tensor, int_bits: int, frac_bits: int) -> torch.Tensor:
    """Round x to the signed fixed-point format Q(int_bits).(frac_bits) and back to float.

    A Qm.n number is a (1 + m + n)-bit two's-complement integer k read as k / 2^n:
    step 2^-n, range [-2^m, 2^m - 2^-n]. It is affine quantisation with S = 2^-n, Z = 0.

    Taught in notebooks/05_quantization_math.ipynb, "Fixed point".
    """
    if isinstance(int_bits, bool) or not isinstance(int_bits, int) or int_bits < 0:
        raise ValueError(f"int_bits must be an int >= 0, got {int_bits!r}.")
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, int) or frac_bits < 0:
        raise ValueError(f"frac_bits must be an int >= 0, got {frac_bits!r}.")
    total = 1 + int_bits + frac_bits
    check_bits(total)
    qmin, qmax = qrange(total, symmetric=True)
    return dequantize(quantize(x, 2.0**-frac_bits, 0, qmin, qmax), 2.0**-frac_bits, 0)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """A real multiplier m > 0 as an integer pair: m ~= multiplier / 2^shift.

    multiplier is a 31-bit integer in [2^30, 2^31) (a Q0.31 number in [0.5, 1)), found
    from m = f 2^e with f in [0.5, 1): multiplier = round(f 2^31), shift = 31 - e. The
    relative error is below 2^-31. (gemmlowp / TFLite's QuantizeMultiplier.)

    Taught in notebooks/05_quantization_math.ipynb, "Integer-only linear layer".
    """
    m = check_positive(m, "m")
    f, e = math.frexp(m)
    mult = round(f * 2**31)
    if mult == 2**31:  # f rounded up to 1.0
        mult //= 2
        e += 1
    shift = 31 - e
    if shift < 0 or shift > 62:
        raise ValueError(f"multiplier {m!r} is out of the range this requantiser supports.")
    return mult, shift


def rounding_shift(
    acc: torch.Tensor, multiplier: torch.Tensor, shift: torch.Tensor
) -> torch.Tensor:
    """round(acc * multiplier / 2^shift) with integers only (int64, round half up).

    (acc * multiplier + 2^(shift-1)) >> shift; >> on a negative int64 is a floor, so the
    +half turns it into round-half-up. shift in [1, 62]. The product must fit in int64:
    |acc| * |multiplier| + 2^(shift-1) < 2^63 (an int32 accumulator times a 31-bit
    multiplier always does); larger operands raise instead of wrapping around silently.

    Taught in notebooks/05_quantization_math.ipynb, "Integer-only linear layer".
    """
    check_tensor(acc, "acc", floating=False)
    if acc.is_floating_point() or multiplier.is_floating_point() or shift.is_floating_point():
        raise ValueError("acc, multiplier and shift must be integer tensors.")
    sh = shift.to(torch.int64)
    if sh.numel() and (int(sh.min()) < 1 or int(sh.max()) > 62):
        raise ValueError(
            f"shift must be in [1, 62], got values in [{int(sh.min())}, {int(sh.max())}]."
        )
    # in int64: abs() of an int32 -2^31 would wrap around to itself
    a_max = int(acc.to(torch.int64).abs().max()) if acc.numel() else 0
    m_max = int(multiplier.to(torch.int64).abs().max()) if multiplier.numel() else 0
    s_max = int(sh.max()) if sh.numel() else 1
    if a_max * m_max + 2 ** (s_max - 1) >= 2**63:  # exact Python integers
        raise ValueError(
            f"acc * multiplier overflows int64 (|acc| up to {a_max}, multiplier up to {m_max}); "
            "keep the accumulator in int32 range, or split the reduction."
        )
    prod = acc.to(torch.int64) * multiplier.to(torch.int64)
    return (prod + (1 << (sh - 1))) >> sh


class IntLinear(NamedTuple):
    """An nn.Linear prepared for integer-only inference (see ``int_linear_prepare``).

    q_weight int8 (out, in), per output channel symmetric; bias int32 (out,) in units of
    S_x S_w; multiplier/shift int64 (out,) with M = S_x S_w / S_y ~= multiplier / 2^shift;
    the input and output qparams.

    Taught in notebooks/05_quantization_math.ipynb, "Integer-only linear layer".
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
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"linear must be an nn.Linear, got {type(linear).__name__}.")
    for name, qp in (("x_qparams", x_qparams), ("y_qparams", y_qparams)):
        if not isinstance(qp, QParams) or isinstance(qp.scale, torch.Tensor):
            raise ValueError(f"{name} must be per-tensor QParams (from compute_qparams).")
        if qp.qmin < -128 or qp.qmax > 255:
            raise ValueError(f"{name} must describe 8-bit integers, got [{qp.qmin}, {qp.qmax}].")
    w = linear.weight.detach().float()  # (out, in)
    w_scale = symmetric_scale(w, 8, axis=0)  # (out,) S_w = max|W[o]| / 127
    zeros = torch.zeros_like(w_scale, dtype=torch.int64)
    q_w = quantize(w, w_scale, zeros, -128, 127, axis=0).to(torch.int8)  # (out, in)
    acc_scale = x_qparams.scale * w_scale.double()  # (out,) float64
    b = linear.bias.detach().double() if linear.bias is not None else torch.zeros(w.shape[0])
    q_b = torch.round(b / acc_scale).to(torch.int32)
    pairs = [quantize_multiplier(float(s) / y_qparams.scale) for s in acc_scale]
    mult = torch.tensor([p[0] for p in pairs], dtype=torch.int64)
    shift = torch.tensor([p[1] for p in pairs], dtype=torch.int64)
    return IntLinear(q_w, w_scale, q_b, mult, shift, x_qparams, y_qparams)


def int_linear(q_x: torch.Tensor, layer: IntLinear) -> torch.Tensor:
    """Integer-only y = x W^T + b: q_x (N, in) 8-bit ints -> q_y (N, out) int32 codes.

    acc[n, o] = sum_k (q_x[n, k] - Z_x) q_w[o, k] + q_b[o]      (int32 accumulate)
    q_y = clamp(Z_y + round(acc * multiplier[o] / 2^shift[o]), qmin_y, qmax_y)
    No float operation is used; dequantize(q_y, S_y, Z_y) approximates the float layer.

    Taught in notebooks/05_quantization_math.ipynb, "Integer-only linear layer".
    """
    check_tensor(q_x, "q_x", floating=False, ndim=2)
    if q_x.is_floating_point():
        raise ValueError(f"q_x must be an integer tensor (from quantize), got {q_x.dtype}.")
    if q_x.shape[1] != layer.q_weight.shape[1]:
        raise ValueError(
            f"q_x has {q_x.shape[1]} features but the layer expects {layer.q_weight.shape[1]}."
        )
    xq, yq = layer.x_qparams, layer.y_qparams
    if int(q_x.min()) < xq.qmin or int(q_x.max()) > xq.qmax:
        raise ValueError(f"q_x has codes outside [{xq.qmin}, {xq.qmax}]; quantize it first.")
    k = q_x.shape[1]
    if k * 255 * 128 >= 2**31:
        raise ValueError(f"{k} input features could overflow the int32 accumulator.")
    x_centered = q_x.to(torch.int32) - xq.zero_point  # in [-255, 255]
    acc = x_centered @ layer.q_weight.to(torch.int32).T + layer.q_bias  # int32 (N, out)
    y = rounding_shift(acc, layer.multiplier, layer.shift) + yq.zero_point
    return y.clamp(yq.qmin, yq.qmax).to(torch.int32)


# --------------------------------------------------------------------------- log quantisation


class Pow2Codes(NamedTuple):
    """Power-of-two codes: value = sign * 2^exponent, or 0 where ``zero`` is True.

    Taught in notebooks/05_quantization_math.ipynb, "Power-of-two (logarithmic) quantisation".
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
    check_tensor(x, "x")
    bits = check_bits(bits)
    amax = float(x.detach().abs().max()) if x.numel() else 0.0
    if max_exponent is None:
        max_exponent = round(math.log2(amax)) if amax > 0 else 0
    n_exp = 2 ** (bits - 1) - 1
    e_min = max_exponent - n_exp + 1
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
    qp = compute_qparams(-amax, amax, bits, symmetric=True)
    uni = fake_quantize(x, qp.scale, qp.zero_point, qp.qmin, qp.qmax)
    return sqnr_db(x, pow2_quantize(x, bits).values), sqnr_db(x, uni)


# --------------------------------------------------------------------------- model helpers


def scheme_sqnr(w: torch.Tensor, bits: int, symmetric: bool, per_channel: bool) -> float:
    """SQNR (dB) of MinMax-quantising a weight tensor, per tensor or per output channel (dim 0).

    Taught in notebooks/05_quantization_math.ipynb, "3. Symmetric vs asymmetric, per-tensor vs per-channel (conv weights)".
    """
    return sqnr_db(w, fake_quantize_minmax(w, bits, symmetric, axis=0 if per_channel else None))


def fake_quantize_weights(
    model: nn.Module, bits: int, symmetric: bool = True, per_channel: bool = True
) -> nn.Module:
    """A copy of ``model`` whose Conv2d/Linear weights are MinMax fake-quantised (weights only).

    Taught in notebooks/05_quantization_math.ipynb, "3. Symmetric vs asymmetric, per-tensor vs per-channel (conv weights)".
    """
    import copy

    check_bits(bits)
    out = copy.deepcopy(model)
    with torch.no_grad():
        for m in out.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                axis = 0 if per_channel else None
                m.weight.copy_(fake_quantize_minmax(m.weight, bits, symmetric, axis=axis))
    return out


def inject_outlier_channel(
    bn: nn.BatchNorm2d, linear: nn.Linear, channel: int, factor: float
) -> None:
    """Make one channel's activations ``factor`` times larger without changing the function.

    For bn -> ReLU -> Flatten -> linear: multiply bn's weight and bias of ``channel`` by
    factor > 0 (ReLU(k z) = k ReLU(z)) and divide the linear's input columns that read that
    channel by factor. The network computes the same logits (to float rounding), but the
    activation now has an outlier channel, as large language models do.

    Taught in notebooks/05_quantization_math.ipynb, "4. An activation with outliers".
    """
    check_positive(factor, "factor")
    if not 0 <= channel < bn.num_features:
        raise ValueError(f"channel must be in 0..{bn.num_features - 1}, got {channel!r}.")
    per = linear.in_features // bn.num_features
    if per * bn.num_features != linear.in_features:
        raise ValueError("linear.in_features must be a multiple of the BN channels (C * H * W).")
    with torch.no_grad():
        bn.weight[channel] *= factor
        bn.bias[channel] *= factor
        linear.weight[:, channel * per : (channel + 1) * per] /= factor
