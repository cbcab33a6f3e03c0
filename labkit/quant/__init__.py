"""Quantization math (notebook 05): r = S (q - Z), its calibration, integer-only arithmetic.

affine.py       the affine map: quantize, dequantize, fake_quantize (straight-through
                gradient), compute_qparams, per-channel ``axis=``, the symmetric scale, SQNR
calibration.py  choosing an activation's range: MinMax, Percentile, Entropy (KL), MSE observers;
                an outlier channel and its equalisation into the next layer's weights
integer.py      fixed point, power-of-two codes, the integer-only linear layer (requantisation)
runtime.py      the same data through ONNX Runtime's calibrators
"""

from labkit.quant.affine import QParams, STEFakeQuant, compute_qparams, dequantize, fake_quantize  # noqa: I001 (names grouped by line)
from labkit.quant.affine import fake_quantize_minmax, fake_quantize_weights, qrange, quantize
from labkit.quant.affine import quantize_tensor, scheme_sqnr, sqnr_db, symmetric_scale
from labkit.quant.calibration import OBSERVERS, EntropyObserver, HistogramObserver, MSEObserver
from labkit.quant.calibration import MinMaxObserver, PercentileObserver, calibrate_observer
from labkit.quant.calibration import equalize_channels, inject_outlier_channel, kl_threshold
from labkit.quant.integer import IntLinear, Pow2Codes, fixed_point, int_linear
from labkit.quant.integer import int_linear_prepare, pow2_quantize, pow2_rounding_error
from labkit.quant.integer import quantize_multiplier, rounding_shift
from labkit.quant.runtime import ort_range

__all__ = ["QParams", "STEFakeQuant", "compute_qparams", "dequantize", "fake_quantize"]
__all__ += ["fake_quantize_minmax", "fake_quantize_weights", "qrange", "quantize"]
__all__ += ["quantize_tensor", "scheme_sqnr", "sqnr_db", "symmetric_scale"]
__all__ += ["OBSERVERS", "EntropyObserver", "HistogramObserver", "MSEObserver"]
__all__ += ["MinMaxObserver", "PercentileObserver", "calibrate_observer"]
__all__ += ["equalize_channels", "inject_outlier_channel", "kl_threshold"]
__all__ += ["IntLinear", "Pow2Codes", "fixed_point", "int_linear"]
__all__ += ["int_linear_prepare", "pow2_quantize", "pow2_rounding_error"]
__all__ += ["quantize_multiplier", "rounding_shift", "ort_range"]
