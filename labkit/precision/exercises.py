"""Exercises of notebook 01 (mixed precision)."""

from __future__ import annotations

import torch

from labkit import precision
from labkit.core.checks import Case, Exercise, close


def _update_cases() -> list[Case]:
    big = float(torch.finfo(torch.float32).max) / 1.5
    return [
        Case((65536.0, 5, True), label="inf/NaN found: back off and reset the tracker"),
        Case((65536.0, 0, False), label="first good step: tracker 0 -> 1, scale unchanged"),
        Case((65536.0, 1998, False), label="good step 1999 of 2000: not yet"),
        Case((65536.0, 1999, False), label="good step 2000 of 2000: grow and reset"),
        Case((1024.0, 2, False), {"growth_interval": 3}, label="growth_interval=3"),
        Case((1024.0, 2, True), {"growth_interval": 3}, label="inf on the would-be growth step"),
        Case(
            (1024.0, 0, True),
            {"backoff_factor": 0.25},
            label="other factors (backoff 0.25)",
        ),
        Case(
            (1024.0, 9, False),
            {"growth_factor": 4.0, "growth_interval": 10},
            label="other factors (growth 4)",
        ),
        Case(
            (big, 1, False),
            {"growth_interval": 2},
            label="growing would overflow float32 to inf: keep the old scale",
        ),
    ]


def bits_to_float(bits: int, exponent_bits: int, mantissa_bits: int) -> float:
    """Reference: the value of an IEEE-style bit pattern (1 sign, E exponent, M mantissa bits)."""
    fmt = precision.FloatFormat("custom", exponent_bits, mantissa_bits, torch.float32)
    return precision.bits_to_float(bits, fmt)


def _bits_to_float_cases() -> list[Case]:
    fp16, bf16, e5m2 = (5, 10), (8, 7), (5, 2)
    return [
        Case((0x3C00, *fp16), label="fp16 0x3C00 (1.0)"),
        Case((0xC000, *fp16), label="fp16 0xC000 (negative)"),
        Case((0x3555, *fp16), label="fp16 0x3555 (mantissa bits set)"),
        Case((0x7BFF, *fp16), label="fp16 0x7BFF (largest finite)"),
        Case((0x0400, *fp16), label="fp16 0x0400 (smallest normal)"),
        Case((0x0001, *fp16), label="fp16 0x0001 (smallest subnormal)"),
        Case((0x0200, *fp16), label="fp16 0x0200 (a subnormal)"),
        Case((0x7C00, *fp16), label="fp16 0x7C00 (inf)"),
        Case((0xFC00, *fp16), label="fp16 0xFC00 (-inf)"),
        Case((0x7E00, *fp16), label="fp16 0x7E00 (NaN)"),
        Case((0x0000, *fp16), label="fp16 0x0000 (zero)"),
        Case((0x3F80, *bf16), label="bf16 0x3F80 (1.0)"),
        Case((0x4049, *bf16), label="bf16 0x4049 (about pi)"),
        Case((0x0001, *bf16), label="bf16 0x0001 (smallest subnormal)"),
        Case((0x7B, *e5m2), label="fp8 e5m2 0x7B (largest finite)"),
        Case((0x03, *e5m2), label="fp8 e5m2 0x03 (subnormal)"),
    ]


EXERCISES = {
    "precision.update_scale": Exercise(
        reference=precision.update_scale,
        cases=_update_cases,
        compare=close(atol=0.0, rtol=1e-6),
        hint="Two branches: an overflow (what happens to the scale and to the count of good "
        "steps?) and a good step (when exactly does the count reach the interval?). The scale "
        "lives in float32, whose largest value is far below float64's.",
        formula="found_inf: return (scale * backoff_factor, 0). Else tracker += 1; if tracker "
        "== growth_interval: grown = scale * growth_factor, keep it only if grown <= "
        "torch.finfo(torch.float32).max, and return (scale, 0). Otherwise (scale, tracker).",
    ),
    "precision.bits_to_float": Exercise(
        reference=bits_to_float,
        cases=_bits_to_float_cases,
        compare=close(atol=0.0, rtol=0.0),
        hint="Split the pattern into sign, exponent and mantissa fields with shifts and masks; "
        "then treat the exponent field's two extreme values (all zeros, all ones) separately.",
        formula="bias = 2**(E-1) - 1; e == 0: sign * 2**(1 - bias) * m / 2**M (subnormal); "
        "e == 2**E - 1: inf if m == 0 else NaN; else sign * 2**(e - bias) * (1 + m / 2**M). "
        "The sign is bit E + M.",
    ),
}
