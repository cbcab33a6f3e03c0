"""Exercises of notebook 05 (quantization math)."""

from __future__ import annotations

import torch

from labkit import quant
from labkit.core.checks import Case, Exercise, close


def quantize(x: torch.Tensor, scale: float, zero_point: int, qmin: int, qmax: int) -> torch.Tensor:
    """Reference: q = clamp(round(x / S) + Z, qmin, qmax), round half to even."""
    return quant.quantize(x, scale, zero_point, qmin, qmax)


def _safe(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Drop values where x / S and x * (1 / S) round differently (a float32 hair's breadth)."""
    inv = 1.0 / torch.tensor(scale, dtype=torch.float32)
    keep = torch.round(x / scale) == torch.round(x * inv)
    return x[keep]


def _quantize_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    ties = torch.tensor([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 0.0, -0.0])
    rand = _safe(torch.randn(200, generator=g) * 3, 0.05)
    return [
        Case((torch.tensor([0.0, 0.26, -0.74, 1.0]), 0.25, 0, -128, 127), label="simple values"),
        Case((ties * 0.25, 0.25, 0, -128, 127), label="ties x/S = k + 0.5 (round half to even)"),
        Case((ties * 0.5, 0.5, 3, 0, 255), label="ties with zero point 3"),
        Case(
            (torch.tensor([-100.0, -1.0, 0.0, 1.0, 100.0]), 0.1, 10, 0, 15),
            label="values far outside [qmin, qmax] (clamping)",
        ),
        Case(
            (torch.tensor([-2.0, -0.3, 0.0, 0.3, 2.0]), 0.1, -4, -8, 7),
            label="a negative zero point",
        ),
        Case((rand, 0.05, 7, -128, 127), label="random normal data, S = 0.05"),
        Case(
            (torch.tensor([2.0, 1.28, 2.55, -0.5]), 0.01, 0, 0, 255),
            label="uint8 codes above 127 (stored as int8 they wrap: 200 becomes -56)",
        ),
    ]


def dequantize(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """Reference: r_hat = S (q - Z) as float32."""
    return quant.dequantize(q, scale, zero_point)


def _dequantize_cases() -> list[Case]:
    return [
        Case((torch.tensor([0, 1, 2, -3], dtype=torch.int32), 0.5, 0), label="Z = 0"),
        Case((torch.tensor([0, 10, 20, 255], dtype=torch.int32), 0.1, 10), label="Z = 10"),
        Case((torch.tensor([-8, 0, 7], dtype=torch.int32), 0.25, -3), label="negative Z"),
        Case(
            (torch.tensor([0, 100, 128, 255], dtype=torch.uint8), 0.02, 128),
            label="uint8 codes with Z = 128 (q - Z goes negative: cast before subtracting)",
        ),
    ]


def compute_qparams(
    xmin: float, xmax: float, bits: int, symmetric: bool
) -> tuple[float, int, int, int]:
    """Reference: (scale, zero_point, qmin, qmax) covering [min(xmin, 0), max(xmax, 0)].

    Codes: symmetric [-2^(b-1), 2^(b-1) - 1] (torch.qint8's -128..127 at 8 bits, not the
    restricted [-127, 127]); asymmetric [0, 2^b - 1]. Z rounds half to even (torch.round).
    """
    qp = quant.compute_qparams(xmin, xmax, bits, symmetric)
    return (qp.scale, qp.zero_point, qp.qmin, qp.qmax)


def _qparams_cases() -> list[Case]:
    # ties: -xmin / S lands exactly on k + 0.5 (dyadic numbers, exact in float32 and float64),
    # so round half to even and floor(x + 0.5) give zero points one apart
    return [
        Case((-1.0, 3.0, 8, False), label="asymmetric 8-bit on [-1, 3]"),
        Case((-1.0, 3.0, 8, True), label="symmetric 8-bit on [-1, 3]"),
        Case((0.5, 3.0, 8, False), label="range [0.5, 3] not containing 0 (widen it to 0)"),
        Case((-6.0, -2.0, 4, False), label="all-negative range, 4 bits"),
        Case((-0.2, 5.0, 4, True), label="symmetric 4-bit"),
        Case((-3.0, 1.0, 2, False), label="2 bits"),
        Case((-0.75, 0.75, 2, False), label="a tie: S = 0.5, -xmin / S = 1.5 exactly"),
        Case((-1.25, 0.25, 2, False), label="a tie: S = 0.5, -xmin / S = 2.5 exactly"),
        Case((-1.125, 2.625, 4, False), label="a tie: S = 0.25, -xmin / S = 4.5 exactly"),
        Case(
            (-1.9921875, 1.9921875, 8, False),
            label="a tie: S = 1/64, -xmin / S = 127.5 exactly (8 bits)",
        ),
    ]


def _qparams_compare(got: object, expected: object) -> str | None:
    """close() to float32 rounding, with the two misreadings of the spec named."""
    msg = close(atol=1e-7, rtol=1e-6)(got, expected)
    if msg is None or not isinstance(got, tuple | list) or len(got) != 4:
        return msg
    scale, zp, qmin, qmax = (x.item() if isinstance(x, torch.Tensor) else x for x in got)
    e_scale, e_zp, e_qmin, e_qmax = expected  # type: ignore[misc]
    if e_qmin < 0 and (qmin, qmax) == (-e_qmax, e_qmax):
        return (
            f"codes [{qmin}, {qmax}] are the restricted signed range; this exercise asks for "
            f"the full signed range [-2^(b-1), 2^(b-1) - 1] = [{e_qmin}, {e_qmax}], as "
            "torch.qint8 (the scale stays max|r| / (2^(b-1) - 1), so code -2^(b-1) is spare)"
        )
    if (qmin, qmax) == (e_qmin, e_qmax) and isinstance(zp, int | float) and abs(zp - e_zp) == 1:
        return (
            f"zero point {zp}, expected {e_zp}: round xmin / scale half to even "
            "(torch.round or Python's round), not floor(x + 0.5) or int(x + 0.5)"
        )
    return msg


def kl_threshold(hist: torch.Tensor, num_quantized_bins: int) -> int:
    """Reference: TensorRT's entropy search; returns the number of bins to keep."""
    return quant.kl_threshold(hist, num_quantized_bins)


def _smooth_hist(n: int, kind: str, scale: float, total: float = 1e5) -> torch.Tensor:
    """Counts of |x| per bin for an analytic density (every bin non-empty)."""
    c = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    if kind == "normal":
        pdf = torch.exp(-0.5 * (c / scale) ** 2)
    elif kind == "laplace":
        pdf = torch.exp(-c / scale)
    else:
        pdf = torch.exp(-c / scale) + 0.02 * torch.exp(-0.5 * ((c - 0.9) / 0.02) ** 2)
    return torch.round(total * pdf / pdf.sum()) + 1


def _lattice_hist(n: int, period: int, scale: float, total: float = 1e5) -> torch.Tensor:
    """|x| of data that already sits on a coarse grid: only every ``period``-th bin is filled."""
    c = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    counts = torch.round(total * torch.exp(-c / scale) / n) + 1
    counts[torch.arange(n) % period != 0] = 0
    return counts


def _kl_cases() -> list[Case]:
    return [
        Case(
            (_lattice_hist(160, 4, 0.1), 8),
            label="data on a coarse grid: 3 of every 4 bins empty, 160 bins -> 8 levels",
        ),
        Case((_smooth_hist(128, "normal", 0.15), 16), label="Gaussian |x|, 128 bins -> 16 levels"),
        Case((_smooth_hist(200, "laplace", 0.08), 8), label="Laplace |x|, 200 bins -> 8 levels"),
        Case(
            (_smooth_hist(256, "outlier", 0.1), 32),
            label="Laplace with an outlier bump, 256 bins -> 32 levels",
        ),
        Case(
            (torch.full((64,), 50.0), 8),
            label="a flat histogram: nothing to clip, the answer is the last candidate len(hist)",
        ),
    ]


def _kl_compare(got: object, expected: object) -> str | None:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)) or got != int(got):
        return f"return the number of kept bins as a whole number, got {got!r}"
    if int(got) == int(expected):  # type: ignore[call-overload]
        return None
    return (
        f"kept {int(got)} bins, expected {int(expected)}: check the grouping of Q "  # type: ignore[call-overload]
        "(bin j -> group j * num_quantized_bins // i), the clipped mass in P's last bin, "
        "and that the loop includes i = len(hist)"
    )


EXERCISES = {
    "quant.quantize": Exercise(
        reference=quantize,
        cases=_quantize_cases,
        compare=close(atol=0, rtol=0),
        hint="Three steps: divide by the scale, shift by the zero point, keep the result inside "
        "[qmin, qmax]. Which rounding does PyTorch use for exact halves, and which integer dtype "
        "can hold every code from qmin to qmax?",
        formula="q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax).to(torch.int32)"
        "  (torch.round sends halves to even: 2.5 -> 2; int8 cannot hold uint8 codes > 127)",
    ),
    "quant.dequantize": Exercise(
        reference=dequantize,
        cases=_dequantize_cases,
        compare=close(atol=1e-6, rtol=1e-6),
        hint="Undo quantize: first remove the zero point, then apply the scale. What happens to "
        "a uint8 tensor when the subtraction goes below 0?",
        formula="r = (q.to(torch.float32) - zero_point) * scale  (convert BEFORE subtracting)",
    ),
    "quant.compute_qparams": Exercise(
        reference=compute_qparams,
        cases=_qparams_cases,
        compare=_qparams_compare,
        hint="First make sure the range contains 0.0. Then pick the integer range: for symmetric "
        "the full signed range of b bits, -128 to 127 at 8 bits (not -127 to 127); for asymmetric "
        "the unsigned one. Map the real range's ends onto it; the zero point must be an integer, "
        "rounded the way torch.round rounds an exact half.",
        formula="lo, hi = min(xmin, 0), max(xmax, 0). Asymmetric: qmin, qmax = 0, 2**bits - 1, "
        "scale = (hi - lo) / (qmax - qmin), zero_point = qmin - round(lo / scale) (Python's round "
        "sends halves to even, like torch.round). Symmetric: qmin, qmax = -2**(bits-1), "
        "2**(bits-1) - 1, scale = max(-lo, hi) / qmax, zero_point 0.",
    ),
    "quant.kl_threshold": Exercise(
        reference=kl_threshold,
        cases=_kl_cases,
        compare=_kl_compare,
        hint="Loop over every candidate i (both ends included). P must keep the clipped mass; Q "
        "must describe what num_quantized_bins levels can represent of hist[:i]. Compare the "
        "normalised P and Q with KL(P || Q), not KL(Q || P), and return i itself.",
        formula="for i in range(num_quantized_bins, len(hist) + 1): P = hist[:i] with sum(hist[i:]) "
        "added to P[-1]; Q: bin j of hist[:i] belongs to group j * num_quantized_bins // i, each "
        "group's total is spread evenly over its non-empty bins; minimise "
        "sum P log(P / Q) over the bins where P > 0.",
    ),
}
