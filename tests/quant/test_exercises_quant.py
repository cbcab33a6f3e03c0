"""Planted wrong answers to notebook 05's exercises must be rejected."""

import math

import numpy as np
import torch

from labkit import checks
from solutions import n05_quantization_math as sol

# --- quantize


def test_solution_passes() -> None:
    for key, fn in sol.EXERCISES.items():
        assert checks.check(key, fn).passed, key


def test_floor_instead_of_round_is_rejected() -> None:
    def floor_q(x, scale, zero_point, qmin, qmax):
        return torch.clamp(torch.floor(x / scale) + zero_point, qmin, qmax).int()

    assert not checks.check("quant.quantize", floor_q).passed


def test_round_half_up_is_rejected() -> None:
    def half_up(x, scale, zero_point, qmin, qmax):
        return torch.clamp(torch.floor(x / scale + 0.5) + zero_point, qmin, qmax).int()

    res = checks.check("quant.quantize", half_up)
    assert not res.passed and "ties" in res.message


def test_off_by_one_rounding_is_rejected() -> None:
    def plus_one(x, scale, zero_point, qmin, qmax):
        return torch.clamp(torch.round(x / scale) + zero_point + 1, qmin, qmax).int()

    assert not checks.check("quant.quantize", plus_one).passed


def test_missing_clamp_is_rejected() -> None:
    def no_clamp(x, scale, zero_point, qmin, qmax):
        return (torch.round(x / scale) + zero_point).int()

    res = checks.check("quant.quantize", no_clamp)
    assert not res.passed and "clamp" in res.message


def test_wrong_zero_point_sign_is_rejected() -> None:
    def minus_zp(x, scale, zero_point, qmin, qmax):
        return torch.clamp(torch.round(x / scale) - zero_point, qmin, qmax).int()

    res = checks.check("quant.quantize", minus_zp)
    assert not res.passed and "zero point" in res.message


def test_float_result_is_rejected() -> None:
    def float_q(x, scale, zero_point, qmin, qmax):
        return torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)

    res = checks.check("quant.quantize", float_q)
    assert not res.passed and "dtype" in res.message


# --- dequantize


def test_dequantize_wrong_sign_is_rejected() -> None:
    def plus_zp(q, scale, zero_point):
        return (q.float() + zero_point) * scale

    assert not checks.check("quant.dequantize", plus_zp).passed


def test_dequantize_uint8_wraparound_is_rejected() -> None:
    def no_cast(q, scale, zero_point):
        return (q - zero_point).float() * scale  # uint8 - 128 wraps around

    res = checks.check("quant.dequantize", no_cast)
    assert not res.passed and "uint8" in res.message


def test_dequantize_scale_then_shift_is_rejected() -> None:
    def wrong_order(q, scale, zero_point):
        return q.float() * scale - zero_point

    assert not checks.check("quant.dequantize", wrong_order).passed


# --- compute_qparams


def _asym(lo, hi, bits, widen=True, zp_sign=1, clamp=True):
    if widen:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    qmin, qmax = 0, 2**bits - 1
    scale = (hi - lo) / (qmax - qmin)
    zp = qmin - zp_sign * round(lo / scale)
    if clamp:
        zp = min(max(zp, qmin), qmax)
    return scale, zp, qmin, qmax


def test_qparams_not_containing_zero_is_rejected() -> None:
    def no_widen(xmin, xmax, bits, symmetric):
        if symmetric:
            return sol.compute_qparams(xmin, xmax, bits, symmetric)
        return _asym(xmin, xmax, bits, widen=False)

    res = checks.check("quant.compute_qparams", no_widen)
    assert not res.passed and "not containing 0" in res.message


def test_qparams_wrong_zero_point_sign_is_rejected() -> None:
    def zp_plus(xmin, xmax, bits, symmetric):
        if symmetric:
            return sol.compute_qparams(xmin, xmax, bits, symmetric)
        return _asym(xmin, xmax, bits, zp_sign=-1)

    assert not checks.check("quant.compute_qparams", zp_plus).passed


def test_qparams_symmetric_off_by_one_level_is_rejected() -> None:
    def divides_by_2_pow(xmin, xmax, bits, symmetric):
        if not symmetric:
            return sol.compute_qparams(xmin, xmax, bits, symmetric)
        amax = max(-min(xmin, 0.0), max(xmax, 0.0))
        return amax / 2 ** (bits - 1), 0, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    res = checks.check("quant.compute_qparams", divides_by_2_pow)
    assert not res.passed and "symmetric" in res.message


def test_qparams_signed_range_for_asymmetric_is_rejected() -> None:
    def signed(xmin, xmax, bits, symmetric):
        if symmetric:
            return sol.compute_qparams(xmin, xmax, bits, symmetric)
        lo, hi = min(xmin, 0.0), max(xmax, 0.0)
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        scale = (hi - lo) / (qmax - qmin)
        return scale, qmin - round(lo / scale), qmin, qmax

    assert not checks.check("quant.compute_qparams", signed).passed


def _asym_rounded(rounding):
    """The right asymmetric qparams with the zero point rounded by ``rounding(lo / scale)``."""

    def fn(xmin, xmax, bits, symmetric):
        if symmetric:
            return sol.compute_qparams(xmin, xmax, bits, symmetric)
        lo, hi = min(xmin, 0.0), max(xmax, 0.0)
        qmin, qmax = 0, 2**bits - 1
        scale = (hi - lo) / (qmax - qmin)
        return scale, min(max(qmin + rounding(-lo / scale), qmin), qmax), qmin, qmax

    return fn


def test_qparams_zero_point_rounded_half_up_is_rejected() -> None:
    """Issue 19: Z = qmin - floor(lo / S + 0.5) passed; a tie (-xmin / S = 1.5) now catches it."""

    def half_up_of_lo(xmin, xmax, bits, symmetric):
        if symmetric:
            return sol.compute_qparams(xmin, xmax, bits, symmetric)
        lo, hi = min(xmin, 0.0), max(xmax, 0.0)
        scale = (hi - lo) / (2**bits - 1)
        return scale, 0 - math.floor(lo / scale + 0.5), 0, 2**bits - 1

    res = checks.check("quant.compute_qparams", half_up_of_lo)
    assert not res.passed and "tie" in res.message and "half to even" in res.message


def test_qparams_zero_point_of_negated_range_rounded_half_up_is_rejected() -> None:
    """Z = qmin + floor(-lo / S + 0.5): right at -xmin / S = 1.5, wrong at 2.5 (a case)."""
    res = checks.check("quant.compute_qparams", _asym_rounded(lambda v: math.floor(v + 0.5)))
    assert not res.passed and "2.5 exactly" in res.message and "half to even" in res.message


def test_qparams_zero_point_truncated_after_adding_a_half_is_rejected() -> None:
    res = checks.check("quant.compute_qparams", _asym_rounded(lambda v: int(v + 0.5)))
    assert not res.passed and "half to even" in res.message


def test_qparams_round_half_to_even_variants_pass() -> None:
    """Python's round, numpy's and torch's all send halves to even: each must pass."""
    for rounding in (
        round,
        lambda v: int(np.round(v)),
        lambda v: int(torch.round(torch.tensor(v))),
    ):
        assert checks.check("quant.compute_qparams", _asym_rounded(rounding)).passed


def test_qparams_restricted_signed_range_is_rejected_with_the_range_named() -> None:
    """Codes [-127, 127] (Wu et al.'s restricted range) are a real choice elsewhere, but the
    exercise asks for torch.qint8's full range: rejected, and the hint names [-128, 127]."""

    def restricted(xmin, xmax, bits, symmetric):
        if not symmetric:
            return sol.compute_qparams(xmin, xmax, bits, symmetric)
        qmax = 2 ** (bits - 1) - 1
        return max(-min(xmin, 0.0), max(xmax, 0.0)) / qmax, 0, -qmax, qmax

    res = checks.check("quant.compute_qparams", restricted)
    assert not res.passed
    assert "restricted" in res.message and "[-128, 127]" in res.message


# --- KL threshold


def _kl_variant(
    direction="pq", fold_outliers=True, spread_nonzero=True, remainder_last=False, include_last=True
):
    def fn(hist, num_quantized_bins):
        hist = hist.double()
        best_i, best = None, math.inf
        for i in range(num_quantized_bins, len(hist) + int(include_last)):
            kept = hist[:i]
            p = kept.clone()
            if fold_outliers:
                p[-1] += hist[i:].sum()
            q = torch.zeros(i, dtype=torch.float64)
            if remainder_last:  # MXNet / ONNX Runtime grouping
                group_of = (torch.arange(i) // (i // num_quantized_bins)).clamp(
                    max=num_quantized_bins - 1
                )
            else:
                group_of = torch.arange(i) * num_quantized_bins // i
            for j in range(num_quantized_bins):
                sel = group_of == j
                grp = kept[sel]
                nz = grp > 0 if spread_nonzero else torch.ones_like(grp, dtype=torch.bool)
                q[sel] = torch.where(nz, grp.sum() / nz.sum(), 0.0)
            p, q = p / p.sum(), q / q.sum()
            a, b = (p, q) if direction == "pq" else (q, p)
            m = a > 0
            kl = (a[m] * torch.log(a[m] / b[m].clamp(min=1e-10))).sum().item()
            if kl < best:
                best_i, best = i, kl
        return best_i

    return fn


def test_kl_variant_helper_matches_reference() -> None:
    assert checks.check("quant.kl_threshold", _kl_variant()).passed


def test_kl_wrong_direction_is_rejected() -> None:
    assert not checks.check("quant.kl_threshold", _kl_variant(direction="qp")).passed


def test_kl_without_outlier_folding_is_rejected() -> None:
    assert not checks.check("quant.kl_threshold", _kl_variant(fold_outliers=False)).passed


def test_kl_returning_a_threshold_value_is_rejected() -> None:
    def returns_fraction(hist, num_quantized_bins):
        return sol.kl_threshold(hist, num_quantized_bins) / len(hist)

    assert not checks.check("quant.kl_threshold", returns_fraction).passed


def test_kl_spreading_over_empty_bins_is_rejected() -> None:
    assert not checks.check("quant.kl_threshold", _kl_variant(spread_nonzero=False)).passed


def test_kl_onnx_runtime_grouping_is_rejected() -> None:
    """Groups of i // n bins with the remainder in the last one (MXNet / ONNX Runtime): the
    markdown of Exercise 4 names the other grouping, so this must fail (issue 11)."""
    res = checks.check("quant.kl_threshold", _kl_variant(remainder_last=True))
    assert not res.passed and "grouping" in res.message


def test_kl_off_by_one_bin_is_rejected() -> None:
    """The checker compares the exact bin, not +-1 (issue 13: a planted bug must fail)."""

    def minus_one(hist, num_quantized_bins):
        return sol.kl_threshold(hist, num_quantized_bins) - 1

    def plus_one(hist, num_quantized_bins):
        return sol.kl_threshold(hist, num_quantized_bins) + 1

    assert not checks.check("quant.kl_threshold", minus_one).passed
    assert not checks.check("quant.kl_threshold", plus_one).passed


def test_kl_loop_missing_the_last_candidate_is_rejected() -> None:
    stops_early = _kl_variant(include_last=False)  # range(n, len(hist)) forgets i = len(hist)
    assert not checks.check("quant.kl_threshold", stops_early).passed


# --- issue 13: more wrong answers


def test_quantize_stored_as_int8_is_rejected() -> None:
    """uint8 codes above 127 wrap in int8: quantize([2.0], 0.01, 0, 0, 255) gives -56, not 200."""

    def as_int8(x, scale, zero_point, qmin, qmax):
        return torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax).to(torch.int8)

    res = checks.check("quant.quantize", as_int8)
    assert not res.passed and "uint8" in res.message
    assert int(as_int8(torch.tensor([2.0]), 0.01, 0, 0, 255)) == -56  # the bug itself


def test_quantize_clamping_before_rounding_and_shift_is_rejected() -> None:
    def clamp_real_range(x, scale, zero_point, qmin, qmax):
        return (torch.round(torch.clamp(x / scale, qmin, qmax)) + zero_point).int()

    assert not checks.check("quant.quantize", clamp_real_range).passed


def test_quantize_truncation_by_int_cast_is_rejected() -> None:
    def truncates(x, scale, zero_point, qmin, qmax):
        return torch.clamp((x / scale).int() + zero_point, qmin, qmax).int()

    assert not checks.check("quant.quantize", truncates).passed


def test_dequantize_dividing_by_the_scale_is_rejected() -> None:
    def divides(q, scale, zero_point):
        return (q.float() - zero_point) / scale

    assert not checks.check("quant.dequantize", divides).passed


def test_dequantize_forgetting_the_zero_point_is_rejected() -> None:
    def no_zp(q, scale, zero_point):
        return q.float() * scale

    assert not checks.check("quant.dequantize", no_zp).passed


def test_qparams_unrounded_zero_point_is_rejected() -> None:
    def float_zp(xmin, xmax, bits, symmetric):
        if symmetric:
            return sol.compute_qparams(xmin, xmax, bits, symmetric)
        lo, hi = min(xmin, 0.0), max(xmax, 0.0)
        scale = (hi - lo) / (2**bits - 1)
        return scale, -lo / scale, 0, 2**bits - 1

    assert not checks.check("quant.compute_qparams", float_zp).passed


def test_qparams_symmetric_dividing_by_the_full_range_is_rejected() -> None:
    def full_range(xmin, xmax, bits, symmetric):
        if not symmetric:
            return sol.compute_qparams(xmin, xmax, bits, symmetric)
        amax = max(-min(xmin, 0.0), max(xmax, 0.0))
        return 2 * amax / (2**bits - 1), 0, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    assert not checks.check("quant.compute_qparams", full_range).passed


def test_every_exercise_has_a_nudge_and_a_formula() -> None:
    from labkit.quant import exercises as ex

    for key, e in ex.EXERCISES.items():
        assert e.hint and e.formula, key
        assert e.hint != e.formula
        assert "torch.round(x / scale)" not in e.hint and "=" not in e.hint, key  # a nudge only
