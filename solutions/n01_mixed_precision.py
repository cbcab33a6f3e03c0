"""Worked solutions of notebook 01 (mixed precision), written as a learner would."""

import math

import torch


def update_scale(
    scale, growth_tracker, found_inf, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000
):
    if found_inf:
        return scale * backoff_factor, 0
    growth_tracker += 1
    if growth_tracker == growth_interval:
        new_scale = scale * growth_factor
        if new_scale <= torch.finfo(torch.float32).max:
            scale = new_scale
        growth_tracker = 0
    return scale, growth_tracker


def bits_to_float(bits, exponent_bits, mantissa_bits):
    bias = 2 ** (exponent_bits - 1) - 1
    mantissa = bits & (2**mantissa_bits - 1)
    exponent = (bits >> mantissa_bits) & (2**exponent_bits - 1)
    sign = -1.0 if bits >> (exponent_bits + mantissa_bits) else 1.0
    if exponent == 2**exponent_bits - 1:
        return sign * math.inf if mantissa == 0 else math.nan
    if exponent == 0:
        return sign * 2.0 ** (1 - bias) * mantissa / 2**mantissa_bits
    return sign * 2.0 ** (exponent - bias) * (1 + mantissa / 2**mantissa_bits)


EXERCISES = {"precision.update_scale": update_scale, "precision.bits_to_float": bits_to_float}
