"""Planted wrong answers to notebook 01's exercises must be rejected."""

import math

from labkit import checks


def _update(
    scale,
    tracker,
    found_inf,
    growth_factor=2.0,
    backoff_factor=0.5,
    growth_interval=2000,
    *,
    mistake=None,
):
    """The scale rule with one planted mistake (None = correct)."""
    if found_inf:
        backoff = 1 / growth_factor if mistake == "backoff_with_growth" else backoff_factor
        return scale * backoff, tracker if mistake == "no_reset" else 0
    if mistake == "late":
        return (scale * growth_factor, 0) if tracker == growth_interval else (scale, tracker + 1)
    tracker += 1
    if tracker == growth_interval:
        grown = scale * growth_factor
        if mistake == "no_finite_check" or grown <= 3.4028234663852886e38:
            scale = grown
        return scale, 0
    return scale, tracker


def _planted(mistake):
    return lambda *args, **kw: _update(*args, **kw, mistake=mistake)


def test_forgetting_to_reset_the_tracker_on_inf_is_rejected() -> None:
    assert not checks.check("precision.update_scale", _planted("no_reset")).passed


def test_growing_one_step_late_is_rejected() -> None:
    res = checks.check("precision.update_scale", _planted("late"))
    assert not res.passed and "2000 of 2000" in res.message


def test_growing_into_float32_overflow_is_rejected() -> None:
    res = checks.check("precision.update_scale", _planted("no_finite_check"))
    assert not res.passed and "overflow" in res.message


def test_backing_off_with_the_growth_factor_is_rejected() -> None:
    res = checks.check("precision.update_scale", _planted("backoff_with_growth"))
    assert not res.passed and "backoff 0.25" in res.message


def test_correct_update_passes() -> None:
    assert checks.check("precision.update_scale", _planted(None)).passed


def _bits_to_float(bits, e_bits, m_bits, *, bias_off=0, subnormals=True, specials=True):
    bias = 2 ** (e_bits - 1) - 1 + bias_off
    m = bits & (2**m_bits - 1)
    e = (bits >> m_bits) & (2**e_bits - 1)
    sign = -1.0 if bits >> (e_bits + m_bits) else 1.0
    if specials and e == 2**e_bits - 1:
        return sign * math.inf if m == 0 else math.nan
    if subnormals and e == 0:
        return sign * 2.0 ** (1 - bias) * m / 2**m_bits
    return sign * 2.0 ** (e - bias) * (1 + m / 2**m_bits)


def test_bits_to_float_without_subnormals_is_rejected() -> None:
    res = checks.check(
        "precision.bits_to_float", lambda b, e, m: _bits_to_float(b, e, m, subnormals=False)
    )
    assert not res.passed and "subnormal" in res.message


def test_bits_to_float_with_the_wrong_bias_is_rejected() -> None:
    res = checks.check(
        "precision.bits_to_float", lambda b, e, m: _bits_to_float(b, e, m, bias_off=1)
    )
    assert not res.passed and "1.0" in res.message


def test_bits_to_float_without_inf_and_nan_is_rejected() -> None:
    res = checks.check(
        "precision.bits_to_float", lambda b, e, m: _bits_to_float(b, e, m, specials=False)
    )
    assert not res.passed and "inf" in res.message


def test_bits_to_float_ignoring_the_sign_is_rejected() -> None:
    res = checks.check("precision.bits_to_float", lambda b, e, m: abs(_bits_to_float(b, e, m)))
    assert not res.passed and "negative" in res.message


def test_correct_bits_to_float_passes() -> None:
    assert checks.check("precision.bits_to_float", _bits_to_float).passed


def test_float64_finiteness_check_is_rejected() -> None:
    def float64_check(
        scale, tracker, found_inf, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000
    ):
        if found_inf:
            return scale * backoff_factor, 0
        tracker += 1
        if tracker == growth_interval:
            grown = scale * growth_factor
            return (
                grown if math.isfinite(grown) else scale
            ), 0  # finite in float64, inf in float32
        return scale, tracker

    res = checks.check("precision.update_scale", float64_check)
    assert not res.passed and "overflow" in res.message


def test_no_tracker_reset_after_growth_is_rejected() -> None:
    def keeps_counting(
        scale, tracker, found_inf, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000
    ):
        if found_inf:
            return scale * backoff_factor, 0
        tracker += 1
        if tracker == growth_interval:
            return scale * growth_factor, tracker
        return scale, tracker

    res = checks.check("precision.update_scale", keeps_counting)
    assert not res.passed and "grow and reset" in res.message


def test_bits_to_float_subnormal_with_the_normal_exponent_is_rejected() -> None:
    def subnormal_off(b, e_bits, m_bits):
        bias = 2 ** (e_bits - 1) - 1
        m, e = b & (2**m_bits - 1), (b >> m_bits) & (2**e_bits - 1)
        if e == 0:  # 2**-bias instead of 2**(1 - bias): subnormals come out half as big
            sign = -1.0 if b >> (e_bits + m_bits) else 1.0
            return sign * 2.0**-bias * m / 2**m_bits
        return _bits_to_float(b, e_bits, m_bits)

    res = checks.check("precision.bits_to_float", subnormal_off)
    assert not res.passed and "subnormal" in res.message


def test_bits_to_float_mantissa_scaled_by_the_wrong_power_is_rejected() -> None:
    def mantissa_off(b, e_bits, m_bits):
        value = _bits_to_float(b, e_bits, m_bits)
        e, m = (b >> m_bits) & (2**e_bits - 1), b & (2**m_bits - 1)
        if 0 < e < 2**e_bits - 1 and m:  # m / 2**(M-1) instead of m / 2**M
            return value / (1 + m / 2**m_bits) * (1 + m / 2 ** (m_bits - 1))
        return value

    res = checks.check("precision.bits_to_float", mantissa_off)
    assert not res.passed and "mantissa" in res.message
