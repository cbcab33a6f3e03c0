"""Float formats bit by bit (notebook 01, parts 1 and 2): layouts, limits, what 16 bits lose.

A binary float with E exponent bits and M mantissa bits stores (sign s, exponent field e,
mantissa field m) and means

    normal     (0 < e < 2^E - 1):  (-1)^s * 2^(e - bias) * (1 + m / 2^M),  bias = 2^(E-1) - 1
    subnormal  (e = 0):            (-1)^s * 2^(1 - bias) * (m / 2^M)
    special    (e = 2^E - 1):      inf (m = 0) or NaN (m != 0)  -- IEEE formats

float8_e4m3fn ("fn" = finite, NaN) has no infinities: e = 15 is a normal exponent except the
single pattern m = 111 which is NaN, so its largest value is 2^8 * 1.75 = 448.

Derived limits (all computed from the bits below and tested against torch.finfo):
    eps = 2^-M (gap between 1 and the next float), smallest normal = 2^(1 - bias),
    smallest subnormal = 2^(1 - bias - M), max = the largest finite pattern.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch

from labkit.core.errors import check_choice, check_int, check_nonempty, check_number, check_tensor

_FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
_FLOAT_DTYPES += (torch.float8_e4m3fn, torch.float8_e5m2)


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: 1 sign bit, ``exponent_bits``, ``mantissa_bits``.

    bits = 1 + E + M,  bias = 2^(E-1) - 1.
    Used by FORMATS and the bits_to_float exercise (labkit/precision/exercises.py).
    """

    name: str
    exponent_bits: int
    mantissa_bits: int
    dtype: torch.dtype
    has_inf: bool = True  # False for float8_e4m3fn: the top exponent holds normal numbers

    def __post_init__(self) -> None:  # core's checks: FORMATS below is built at import
        check_int(self.exponent_bits, "exponent_bits", low=2, high=11)  # fp64's 11 at most
        check_int(self.mantissa_bits, "mantissa_bits", low=0, high=52)
        check_choice(self.dtype, "dtype", _FLOAT_DTYPES)

    @property
    def bits(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def bias(self) -> int:
        return 2 ** (self.exponent_bits - 1) - 1


FORMATS: dict[str, FloatFormat] = {
    "fp32": FloatFormat("fp32", 8, 23, torch.float32),
    "fp16": FloatFormat("fp16", 5, 10, torch.float16),
    "bf16": FloatFormat("bf16", 8, 7, torch.bfloat16),
    "fp8_e4m3": FloatFormat("fp8_e4m3", 4, 3, torch.float8_e4m3fn, has_inf=False),
    "fp8_e5m2": FloatFormat("fp8_e5m2", 5, 2, torch.float8_e5m2),
}

_INT_VIEW = {32: torch.int32, 16: torch.int16, 8: torch.uint8}


def get_format(fmt: str | FloatFormat) -> FloatFormat:
    """The FloatFormat named ``fmt`` (one of FORMATS), or ``fmt`` itself.

    Used by every function here that takes ``fmt``, and by labkit/precision/widget.py.
    """
    _check_get_format(fmt)
    return fmt if isinstance(fmt, FloatFormat) else FORMATS[fmt]


def fields(bits: int, fmt: str | FloatFormat) -> tuple[int, int, int]:
    """Split a bit pattern (an unsigned int of fmt.bits bits) into (sign, exponent, mantissa).

    mantissa = bits & (2^M - 1),  exponent = (bits >> M) & (2^E - 1),  sign = bits >> (E + M).
    Used by bits_to_float and explain.
    """
    f = _check_fields(bits, fmt)
    mantissa = bits & (2**f.mantissa_bits - 1)
    exponent = (bits >> f.mantissa_bits) & (2**f.exponent_bits - 1)
    sign = bits >> (f.bits - 1)
    return sign, exponent, mantissa


def bits_to_float(bits: int, fmt: str | FloatFormat) -> float:
    """The real number a bit pattern means, from the bits alone:

        normal     (0 < e < 2^E - 1):  (-1)^s * 2^(e - bias) * (1 + m / 2^M)
        subnormal  (e = 0):            (-1)^s * 2^(1 - bias) * (m / 2^M)
        e = 2^E - 1:                   inf (m = 0) or NaN (m != 0); e4m3fn: NaN only for m = 111

    The worked solution of the exercise of the same name (solutions/n01_mixed_precision.py) is a
    deliberate copy written as a learner would; tests/test_solutions.py checks it against this.
    Taught in notebooks/01_mixed_precision.ipynb, "Exercise 2: decode a bit pattern".
    """
    f = get_format(fmt)
    s, e, m = fields(bits, f)
    top = 2**f.exponent_bits - 1
    sign = -1.0 if s else 1.0
    if e == top:
        if f.has_inf:
            return sign * math.inf if m == 0 else math.nan
        if m == 2**f.mantissa_bits - 1:  # e4m3fn: only S.1111.111 is NaN
            return math.nan
    if e == 0:
        return sign * 2.0 ** (1 - f.bias) * (m / 2**f.mantissa_bits)
    return sign * 2.0 ** (e - f.bias) * (1 + m / 2**f.mantissa_bits)


def float_to_bits(value: float, fmt: str | FloatFormat) -> int:
    """Round ``value`` to the format (torch's cast: round to nearest, ties to even) -> its bits,
    an unsigned int of fmt.bits bits (the inverse of bits_to_float for every non-NaN pattern).

    Used by explain and labkit/precision/widget.py.
    """
    f = _check_float_to_bits(value, fmt)
    stored = torch.tensor(float(value), dtype=torch.float64).to(f.dtype)
    raw = int(stored.view(_INT_VIEW[f.bits]).item())  # the same bits read as a signed int
    return raw & (2**f.bits - 1)


def _bit_string(bits: int, fmt: str | FloatFormat) -> str:
    """'s|eeeee|mmmmmmmmmm' for a bit pattern."""
    f = get_format(fmt)
    s, e, m = fields(bits, f)
    return f"{s}|{e:0{f.exponent_bits}b}|{m:0{f.mantissa_bits}b}"


def limits(fmt: str | FloatFormat) -> dict[str, float]:
    """max, smallest normal, smallest subnormal and machine epsilon, decoded from bit patterns.

    max: sign 0, the largest exponent field that holds finite numbers, mantissa all ones
         (minus one ulp for e4m3fn, whose all-ones pattern is NaN);
    smallest_normal: exponent field 1, mantissa 0;  smallest_subnormal: pattern 1;
    eps: bits_to_float(1.0's bits + 1) - 1.0 (one step of the last mantissa bit at 1.0).
    Taught in notebooks/01_mixed_precision.ipynb, "2.1 Small gradients underflow in fp16".
    """
    f = get_format(fmt)
    m_all = 2**f.mantissa_bits - 1
    e_top = 2**f.exponent_bits - 1
    if f.has_inf:
        max_bits = ((e_top - 1) << f.mantissa_bits) | m_all
    else:
        max_bits = (e_top << f.mantissa_bits) | (m_all - 1)
    one = f.bias << f.mantissa_bits
    return {
        "max": bits_to_float(max_bits, f),
        "smallest_normal": bits_to_float(1 << f.mantissa_bits, f),
        "smallest_subnormal": bits_to_float(1, f),
        "eps": bits_to_float(one + 1, f) - 1.0,
    }


def limits_table() -> list[dict[str, Any]]:
    """One row per format: layout, the limits from the bits, and torch.finfo's view.

    decimal digits = -log10(eps).
    Taught in notebooks/01_mixed_precision.ipynb, "1. Float formats, bit by bit".
    """
    rows = []
    for f in FORMATS.values():
        lim = limits(f)
        fi = torch.finfo(f.dtype)
        rows.append(
            {
                "format": f.name,
                "bits (s/e/m)": f"1/{f.exponent_bits}/{f.mantissa_bits}",
                "bias": f.bias,
                "max": lim["max"],
                "smallest normal": lim["smallest_normal"],
                "smallest subnormal": lim["smallest_subnormal"],
                "eps": lim["eps"],
                "decimal digits": round(-math.log10(lim["eps"]), 1),
                "matches torch.finfo": lim["max"] == fi.max
                and lim["smallest_normal"] == fi.smallest_normal
                and lim["eps"] == fi.eps,
            }
        )
    return rows


def explain(value: float, fmt: str | FloatFormat) -> dict[str, Any]:
    """How ``value`` is stored in ``fmt``: bits, fields, the stored value and the rounding error.

    abs_error = |stored - value|, rel_error = abs_error / |value| (0 for value 0; inf when the
    value overflowed to inf or saturated).
    Taught in notebooks/01_mixed_precision.ipynb, "1. Float formats, bit by bit".
    """
    f = get_format(fmt)
    bits = float_to_bits(value, f)
    value = float(value)
    s, e, m = fields(bits, f)
    stored = bits_to_float(bits, f)
    if math.isfinite(stored) and not math.isfinite(value):  # e4m3fn saturates inf to 448
        abs_err = rel_err = math.inf
    elif math.isfinite(stored):
        abs_err = abs(stored - value)
        rel_err = abs_err / abs(value) if value else 0.0
    else:
        abs_err = rel_err = math.inf if math.isfinite(value) else 0.0
    kind = (
        "zero"
        if stored == 0
        else "nan"
        if math.isnan(stored)
        else "inf"
        if math.isinf(stored)
        else "subnormal"
        if e == 0
        else "normal"
    )
    return {
        "format": f.name,
        "value": value,
        "bits": bits,
        "bit_string": _bit_string(bits, f),
        "sign": s,
        "exponent": e,
        "mantissa": m,
        "stored": stored,
        "kind": kind,
        "abs_error": abs_err,
        "rel_error": rel_err,
    }


# --------------------------------------------------------------------------- what 16 bits lose


def round_trip(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x rounded to ``dtype`` and back to x's dtype: what storing x in that format keeps.

    Taught in notebooks/01_mixed_precision.ipynb, "2.1 Small gradients underflow in fp16".
    """
    _check_cast(x, dtype)
    return x.to(dtype).to(x.dtype)  # same shape as x


def underflow_fraction(x: torch.Tensor, dtype: torch.dtype) -> float:
    """Fraction of the non-zero entries of x that become exactly 0 when cast to ``dtype``.

        underflow = #{i : x_i != 0 and dtype(x_i) == 0} / #{i : x_i != 0}
    Taught in notebooks/01_mixed_precision.ipynb, "2.1 Small gradients underflow in fp16".
    """
    _check_underflow(x, dtype)
    nonzero = x != 0  # same shape as x, bool
    return float(((x.to(dtype) == 0) & nonzero).sum() / nonzero.sum())


def running_sum(increment: float, steps: int, dtype: torch.dtype, start: float = 1.0) -> float:
    """start + increment added ``steps`` times, every partial sum stored in ``dtype``.

    In fp16 near 1.0 the gap between floats is eps = 2^-10 ~ 1e-3, so an increment below
    eps/2 rounds away: the sum stagnates. This is why optimizers keep fp32 master weights.
    Taught in notebooks/01_mixed_precision.ipynb, "2.3 Small updates vanish: why master weights stay in fp32".
    """
    _check_running_sum(increment, steps, dtype, start)
    total = torch.tensor(start, dtype=dtype)
    inc = torch.tensor(increment, dtype=dtype)
    for _ in range(steps):
        total = total + inc
    return float(total)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_get_format(fmt: object) -> None:
    if not isinstance(fmt, FloatFormat) and not (isinstance(fmt, str) and fmt in FORMATS):
        raise ValueError(
            f"unknown float format {fmt!r}: fmt must be one of {sorted(FORMATS)} "
            "or a precision.FloatFormat."
        )


def _check_fields(bits: object, fmt: object) -> FloatFormat:
    f = get_format(fmt)
    if not 0 <= check_int(bits, "bits") < 2**f.bits:
        raise ValueError(f"bits must be an integer in [0, 2^{f.bits}) for {f.name}, got {bits!r}.")
    return f


def _check_float_to_bits(value: object, fmt: object) -> FloatFormat:
    f = get_format(fmt)
    if f.dtype.itemsize * 8 != f.bits or f.bits not in _INT_VIEW:
        raise ValueError(
            f"fmt {f.name!r} ({f.bits} bits) is not the layout of {f.dtype}: torch rounds only "
            f"to its own formats; use one of {sorted(FORMATS)}."
        )
    scalar = isinstance(value, torch.Tensor) and value.numel() == 1
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) or scalar):
        raise ValueError(f"value must be a real number (inf and NaN allowed), got {value!r}.")
    return f


def _check_float_dtype(dtype: object, name: str = "dtype") -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"{name} must be a floating-point torch.dtype (e.g. torch.float16), got {dtype!r}."
        )


def _check_cast(x: object, dtype: object) -> None:
    check_nonempty(check_tensor(x, "x"), "x")
    _check_float_dtype(dtype)


def _check_underflow(x: torch.Tensor, dtype: object) -> None:
    _check_cast(x, dtype)
    if not bool((x != 0).any()):
        raise ValueError("x has no non-zero entries; underflow is undefined.")


def _check_running_sum(increment: object, steps: object, dtype: object, start: object) -> None:
    _check_float_dtype(dtype)
    check_number(increment, "increment")
    check_number(start, "start")
    if check_int(steps, "steps", low=0) > 10**6:
        raise ValueError(f"steps must be an int in [0, 1e6] (one Python add each), got {steps!r}.")
