"""Bad input for quant, qat, precision (issue 18, section 5): one bad argument per case; see badinput_probe.py."""

import math

import pytest
import torch
from badinput_probe import Case, outcome
from torch import nn

from labkit import models, precision, qat, quant

# ---- shared valid inputs (tiny, built once)
torch.manual_seed(0)
X = torch.randn(4, 3)  # a float tensor
W = torch.randn(4, 8)  # a weight (out, in)
H = torch.eye(8)  # X X^T of the weight's inputs (in, in)
ACT = torch.ones(8)  # mean |x_j| / max |x_j| per input channel
BN, FC = nn.BatchNorm2d(2), nn.Linear(8, 3)  # bn -> ReLU -> Flatten -> linear, C * H * W = 2 * 4
LIN4 = nn.Linear(4, 3)
XQP = quant.compute_qparams(-1.0, 1.0, 8, False)
YQP = quant.compute_qparams(-2.0, 2.0, 8, False)
INT_LAYER = quant.int_linear_prepare(LIN4, XQP, YQP)
QX = torch.randint(0, 256, (2, 4))  # uint8 codes of (N, in)
ACC = torch.randint(-1000, 1000, (2, 3), dtype=torch.int32)
MULT = torch.full((3,), 2**30, dtype=torch.int64)
SHIFT = torch.full((3,), 31, dtype=torch.int64)
HIST = torch.ones(256)
ONE_LAYER = [torch.randn(8, 3)]

MLP = models.mlp(width=8, depth=1)  # Flatten, Linear(64, 8), ReLU, Linear(8, 10): layers "1", "3"
XV, YV = torch.randn(4, 64), torch.randint(0, 10, (4,))
CALIB = [torch.randn(4, 64)]
LOADER = [(XV, YV)]
SENS = {"1": {4: 0.1, 8: 0.0}, "3": {4: 0.2, 8: 0.0}}
QMODEL = qat.prepare(MLP, 8, 8)
QAT = qat.qat_model(MLP, CALIB, 4)
STATIC = qat.static_ptq(MLP, CALIB, 8)
OPT = torch.optim.SGD(MLP.parameters(), lr=0.1)
CFG = qat.LMConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16)
LM = qat.CharLM(CFG)
IDS = torch.randint(0, 20, (2, 16))
GRADS = precision.gradient_sequence(steps=3, size=4)
SUPPORT = {"avx512_bf16": False, "amx_tile": False, "torch_kernels": "AVX2", "onednn_bf16": False}


def _observed(obs):
    return obs.observe(torch.randn(64))


CASES = [
    # ------------------------------------------------------------------ quant: the affine map
    Case("quant.quantize", "string x", lambda: quant.quantize("x", 0.1, 0, -128, 127), "x"),
    Case("quant.quantize", "integer x", lambda: quant.quantize(QX, 0.1, 0, 0, 255), "x"),
    Case("quant.quantize", "scale 0", lambda: quant.quantize(X, 0.0, 0, -128, 127), "scale"),
    Case("quant.quantize", "NaN scale", lambda: quant.quantize(X, math.nan, 0, -128, 127), "scale"),
    Case(
        "quant.quantize",
        "fractional zero_point",
        lambda: quant.quantize(X, 0.1, 0.5, -128, 127),
        "zero_point",
    ),
    Case("quant.quantize", "qmin > qmax", lambda: quant.quantize(X, 0.1, 0, 127, -128), "qmin"),
    Case(
        "quant.quantize",
        "per-channel scale of wrong length",
        lambda: quant.quantize(X, torch.ones(5), torch.zeros(5), -128, 127, axis=0),
        "scale",
    ),
    Case(
        "quant.quantize",
        "axis out of range",
        lambda: quant.quantize(X, torch.ones(4), torch.zeros(4), -128, 127, axis=5),
        "axis",
    ),
    Case("quant.dequantize", "float q", lambda: quant.dequantize(X, 0.1, 0), "q"),
    Case("quant.dequantize", "string q", lambda: quant.dequantize("q", 0.1, 0), "q"),
    Case("quant.dequantize", "negative scale", lambda: quant.dequantize(QX, -0.1, 0), "scale"),
    Case(
        "quant.dequantize",
        "axis out of range",
        lambda: quant.dequantize(QX, torch.ones(2), torch.zeros(2), axis=3),
        "axis",
    ),
    Case(
        "quant.fake_quantize",
        "string scale",
        lambda: quant.fake_quantize(X, "0.1", 0, -128, 127),
        "scale",
    ),
    Case(
        "quant.fake_quantize", "qmin == qmax", lambda: quant.fake_quantize(X, 0.1, 0, 3, 3), "qmin"
    ),
    Case(
        "quant.fake_quantize",
        "float qmax",
        lambda: quant.fake_quantize(X, 0.1, 0, -128, 127.0),
        "qmax",
    ),
    Case(
        "quant.fake_quantize",
        "a 20-bit range",
        lambda: quant.fake_quantize(X, 0.1, 0, 0, 2**20),
        "qmax",
    ),
    Case(
        "quant.fake_quantize",
        "inf scale",
        lambda: quant.fake_quantize(X, math.inf, 0, -128, 127),
        "scale",
    ),
    Case(
        "quant.STEFakeQuant",
        "string x",
        lambda: quant.STEFakeQuant.apply("x", torch.tensor(0.1), torch.tensor(0.0), -128, 127),
        "x",
    ),
    Case(
        "quant.STEFakeQuant",
        "float S, not a tensor",
        lambda: quant.STEFakeQuant.apply(X, 0.1, torch.tensor(0.0), -128, 127),
        "S",
    ),
    Case(
        "quant.STEFakeQuant",
        "qmin > qmax",
        lambda: quant.STEFakeQuant.apply(X, torch.tensor(0.1), torch.tensor(0.0), 127, -128),
        "qmin",
    ),
    Case("quant.qrange", "bits 0", lambda: quant.qrange(0, True), "bits"),
    Case("quant.qrange", "bits 10**12", lambda: quant.qrange(10**12, True), "bits"),
    Case("quant.qrange", "bool bits", lambda: quant.qrange(True, True), "bits"),
    Case("quant.qrange", "string symmetric", lambda: quant.qrange(8, "yes"), "symmetric"),
    Case("quant.compute_qparams", "xmin > xmax", lambda: quant.compute_qparams(3.0, -1.0), "xmin"),
    Case("quant.compute_qparams", "NaN xmin", lambda: quant.compute_qparams(math.nan, 1.0), "xmin"),
    Case("quant.compute_qparams", "string xmax", lambda: quant.compute_qparams(-1.0, "1"), "xmax"),
    Case(
        "quant.compute_qparams", "bits 1", lambda: quant.compute_qparams(-1.0, 1.0, bits=1), "bits"
    ),
    Case(
        "quant.compute_qparams",
        "empty xmin",
        lambda: quant.compute_qparams(torch.empty(0), torch.empty(0)),
        "xmin",
    ),
    Case(
        "quant.compute_qparams",
        "2-D xmin",
        lambda: quant.compute_qparams(-torch.ones(2, 2), torch.ones(2, 2)),
        "xmin",
    ),
    Case(
        "quant.compute_qparams",
        "xmin and xmax of different lengths",
        lambda: quant.compute_qparams(-torch.ones(3), torch.ones(2)),
        "xmin",
    ),
    Case("quant.symmetric_scale", "empty x", lambda: quant.symmetric_scale(torch.empty(0)), "x"),
    Case(
        "quant.symmetric_scale",
        "inf in x",
        lambda: quant.symmetric_scale(torch.tensor([1.0, math.inf])),
        "x",
    ),
    Case(
        "quant.symmetric_scale",
        "axis out of range",
        lambda: quant.symmetric_scale(X, axis=2),
        "axis",
    ),
    Case("quant.symmetric_scale", "bits 0", lambda: quant.symmetric_scale(X, bits=0), "bits"),
    Case("quant.symmetric_scale", "integer x", lambda: quant.symmetric_scale(QX), "x"),
    Case("quant.quantize_tensor", "empty x", lambda: quant.quantize_tensor(torch.empty(0)), "x"),
    Case(
        "quant.quantize_tensor",
        "NaN in x",
        lambda: quant.quantize_tensor(torch.tensor([1.0, math.nan])),
        "x",
    ),
    Case("quant.quantize_tensor", "bits 10**12", lambda: quant.quantize_tensor(X, 10**12), "bits"),
    Case(
        "quant.quantize_tensor",
        "axis -3 of a 2-D x",
        lambda: quant.quantize_tensor(X, axis=-3),
        "axis",
    ),
    Case(
        "quant.quantize_tensor",
        "string symmetric",
        lambda: quant.quantize_tensor(X, 8, "no"),
        "symmetric",
    ),
    Case(
        "quant.fake_quantize_minmax",
        "empty x",
        lambda: quant.fake_quantize_minmax(torch.empty(0, 3)),
        "x",
    ),
    Case("quant.fake_quantize_minmax", "bits 1", lambda: quant.fake_quantize_minmax(X, 1), "bits"),
    Case(
        "quant.fake_quantize_minmax", "list x", lambda: quant.fake_quantize_minmax([1.0, 2.0]), "x"
    ),
    Case(
        "quant.sqnr_db",
        "x_hat of another shape",
        lambda: quant.sqnr_db(X, torch.zeros(3, 4)),
        "x_hat",
    ),
    Case(
        "quant.sqnr_db",
        "NaN in x_hat",
        lambda: quant.sqnr_db(X, torch.full((4, 3), math.nan)),
        "x_hat",
    ),
    Case("quant.sqnr_db", "integer x", lambda: quant.sqnr_db(QX, QX.float()), "x"),
    Case("quant.sqnr_db", "None x_hat", lambda: quant.sqnr_db(X, None), "x_hat"),
    Case(
        "quant.scheme_sqnr",
        "empty w",
        lambda: quant.scheme_sqnr(torch.empty(0, 3), 4, True, True),
        "w",
    ),
    Case(
        "quant.scheme_sqnr",
        "string w",
        lambda: quant.scheme_sqnr("conv.weight", 4, True, True),
        "w",
    ),
    Case("quant.scheme_sqnr", "bits 0", lambda: quant.scheme_sqnr(W, 0, True, True), "bits"),
    Case(
        "quant.scheme_sqnr",
        "inf in w",
        lambda: quant.scheme_sqnr(torch.tensor([[1.0, math.inf]]), 4, True, False),
        "w",
    ),
    Case(
        "quant.fake_quantize_weights",
        "string model",
        lambda: quant.fake_quantize_weights("model.pt", 8),
        "model",
    ),
    Case(
        "quant.fake_quantize_weights",
        "state dict model",
        lambda: quant.fake_quantize_weights(MLP.state_dict(), 8),
        "model",
    ),
    Case(
        "quant.fake_quantize_weights", "bits 0", lambda: quant.fake_quantize_weights(MLP, 0), "bits"
    ),
    Case(
        "quant.fake_quantize_weights",
        "bits 10**12",
        lambda: quant.fake_quantize_weights(MLP, 10**12),
        "bits",
    ),
    # ------------------------------------------------------------------ quant: calibration
    Case("quant.MinMaxObserver", "string axis", lambda: quant.MinMaxObserver(axis="0"), "axis"),
    Case("quant.MinMaxObserver", "fractional axis", lambda: quant.MinMaxObserver(axis=1.5), "axis"),
    Case("quant.MinMaxObserver", "bool axis", lambda: quant.MinMaxObserver(axis=True), "axis"),
    Case(
        "quant.MinMaxObserver.observe",
        "empty x",
        lambda: quant.MinMaxObserver().observe(torch.empty(0)),
        "x",
    ),
    Case(
        "quant.MinMaxObserver.observe",
        "NaN in x",
        lambda: quant.MinMaxObserver().observe(torch.tensor([1.0, math.nan])),
        "x",
    ),
    Case(
        "quant.MinMaxObserver.observe", "string x", lambda: quant.MinMaxObserver().observe("x"), "x"
    ),
    Case(
        "quant.MinMaxObserver.observe",
        "axis beyond x's dims",
        lambda: quant.MinMaxObserver(axis=3).observe(X),
        "axis",
    ),
    Case(
        "quant.MinMaxObserver.observe",
        "channel count changes",
        lambda: quant.MinMaxObserver(axis=1).observe(X).observe(torch.randn(4, 5)),
        "x",
    ),
    Case(
        "quant.MinMaxObserver.range",
        "bits 0",
        lambda: _observed(quant.MinMaxObserver()).range(bits=0),
        "bits",
    ),
    Case(
        "quant.MinMaxObserver.qparams",
        "bits 1",
        lambda: _observed(quant.MinMaxObserver()).qparams(bits=1),
        "bits",
    ),
    Case(
        "quant.MinMaxObserver.qparams",
        "bits 10**12",
        lambda: _observed(quant.MinMaxObserver()).qparams(bits=10**12),
        "bits",
    ),
    Case("quant.HistogramObserver", "bins 0", lambda: quant.HistogramObserver(bins=0), "bins"),
    Case(
        "quant.HistogramObserver",
        "bins 10**12",
        lambda: quant.HistogramObserver(bins=10**12),
        "bins",
    ),
    Case("quant.HistogramObserver", "odd bins", lambda: quant.HistogramObserver(bins=33), "bins"),
    Case(
        "quant.HistogramObserver.observe",
        "empty x",
        lambda: quant.HistogramObserver(bins=16).observe(torch.empty(0)),
        "x",
    ),
    Case(
        "quant.HistogramObserver.observe",
        "inf in x",
        lambda: quant.HistogramObserver(bins=16).observe(torch.tensor([math.inf])),
        "x",
    ),
    Case(
        "quant.PercentileObserver",
        "percentile 150",
        lambda: quant.PercentileObserver(150),
        "percentile",
    ),
    Case(
        "quant.PercentileObserver",
        "negative percentile",
        lambda: quant.PercentileObserver(-1.0),
        "percentile",
    ),
    Case(
        "quant.PercentileObserver",
        "NaN percentile",
        lambda: quant.PercentileObserver(math.nan),
        "percentile",
    ),
    Case(
        "quant.PercentileObserver",
        "fractional bins",
        lambda: quant.PercentileObserver(99.9, bins=64.5),
        "bins",
    ),
    Case(
        "quant.PercentileObserver.range",
        "bits 0",
        lambda: _observed(quant.PercentileObserver(bins=64)).range(bits=0),
        "bits",
    ),
    Case(
        "quant.PercentileObserver.qparams",
        "bits 10**12",
        lambda: _observed(quant.PercentileObserver(bins=64)).qparams(bits=10**12),
        "bits",
    ),
    Case("quant.EntropyObserver", "bins 2**20", lambda: quant.EntropyObserver(bins=2**20), "bins"),
    Case("quant.EntropyObserver", "negative bins", lambda: quant.EntropyObserver(bins=-2), "bins"),
    Case(
        "quant.EntropyObserver.range",
        "bits 1",
        lambda: _observed(quant.EntropyObserver(bins=64)).range(bits=1),
        "bits",
    ),
    Case("quant.MSEObserver", "grid 0", lambda: quant.MSEObserver(grid=0), "grid"),
    Case("quant.MSEObserver", "grid 10**12", lambda: quant.MSEObserver(grid=10**12), "grid"),
    Case(
        "quant.MSEObserver",
        "negative max_data_candidates",
        lambda: quant.MSEObserver(max_data_candidates=-1),
        "max_data_candidates",
    ),
    Case("quant.MSEObserver", "bins 10**12", lambda: quant.MSEObserver(bins=10**12), "bins"),
    Case(
        "quant.MSEObserver.range",
        "bits 0",
        lambda: _observed(quant.MSEObserver(bins=64)).range(bits=0),
        "bits",
    ),
    Case(
        "quant.calibrate_observer",
        "empty batches",
        lambda: quant.calibrate_observer([], quant.MinMaxObserver()),
        "batches",
    ),
    Case(
        "quant.calibrate_observer",
        "a tensor as batches",
        lambda: quant.calibrate_observer(X, quant.MinMaxObserver()),
        "batches",
    ),
    Case(
        "quant.calibrate_observer",
        "observer as a name",
        lambda: quant.calibrate_observer([X], "minmax"),
        "observer",
    ),
    Case(
        "quant.calibrate_observer",
        "an empty batch",
        lambda: quant.calibrate_observer([X, torch.empty(0)], quant.MinMaxObserver()),
        "batches",
    ),
    Case(
        "quant.calibrate_observer",
        "observer class, not instance",
        lambda: quant.calibrate_observer([X], quant.MinMaxObserver),
        "observer",
    ),
    Case("quant.kl_threshold", "empty hist", lambda: quant.kl_threshold(torch.empty(0)), "hist"),
    Case(
        "quant.kl_threshold", "all-zero hist", lambda: quant.kl_threshold(torch.zeros(256)), "hist"
    ),
    Case("quant.kl_threshold", "negative counts", lambda: quant.kl_threshold(-HIST), "hist"),
    Case(
        "quant.kl_threshold", "2-D hist", lambda: quant.kl_threshold(HIST.reshape(16, 16)), "hist"
    ),
    Case(
        "quant.kl_threshold",
        "num_quantized_bins 0",
        lambda: quant.kl_threshold(HIST, 0),
        "num_quantized_bins",
    ),
    Case(
        "quant.kl_threshold",
        "num_quantized_bins > bins",
        lambda: quant.kl_threshold(HIST, 1000),
        "num_quantized_bins",
    ),
    Case(
        "quant.equalize_channels",
        "channel_max of wrong length",
        lambda: quant.equalize_channels(BN, FC, torch.ones(5)),
        "channel_max",
    ),
    Case(
        "quant.equalize_channels",
        "NaN in channel_max",
        lambda: quant.equalize_channels(BN, FC, torch.tensor([1.0, math.nan])),
        "channel_max",
    ),
    Case(
        "quant.equalize_channels",
        "negative channel_max",
        lambda: quant.equalize_channels(BN, FC, torch.tensor([1.0, -1.0])),
        "channel_max",
    ),
    Case(
        "quant.equalize_channels",
        "a Conv2d as bn",
        lambda: quant.equalize_channels(nn.Conv2d(2, 2, 1), FC, torch.ones(2)),
        "bn",
    ),
    Case(
        "quant.equalize_channels",
        "string channel_max",
        lambda: quant.equalize_channels(BN, FC, "max_val"),
        "channel_max",
    ),
    Case(
        "quant.inject_outlier_channel",
        "channel out of range",
        lambda: quant.inject_outlier_channel(BN, FC, 99, 30.0),
        "channel",
    ),
    Case(
        "quant.inject_outlier_channel",
        "factor 0",
        lambda: quant.inject_outlier_channel(BN, FC, 0, 0.0),
        "factor",
    ),
    Case(
        "quant.inject_outlier_channel",
        "NaN factor",
        lambda: quant.inject_outlier_channel(BN, FC, 0, math.nan),
        "factor",
    ),
    Case(
        "quant.inject_outlier_channel",
        "string linear",
        lambda: quant.inject_outlier_channel(BN, "fc", 0, 30.0),
        "linear",
    ),
    # ------------------------------------------------------------------ quant: integer arithmetic
    Case("quant.fixed_point", "negative int_bits", lambda: quant.fixed_point(X, -1, 4), "int_bits"),
    Case(
        "quant.fixed_point",
        "frac_bits 10**12",
        lambda: quant.fixed_point(X, 3, 10**12),
        "frac_bits",
    ),
    Case(
        "quant.fixed_point",
        "fractional frac_bits",
        lambda: quant.fixed_point(X, 3, 2.5),
        "frac_bits",
    ),
    Case("quant.fixed_point", "string x", lambda: quant.fixed_point("0.5", 3, 4), "x"),
    Case("quant.pow2_quantize", "empty x", lambda: quant.pow2_quantize(torch.empty(0)), "x"),
    Case(
        "quant.pow2_quantize",
        "NaN in x",
        lambda: quant.pow2_quantize(torch.tensor([math.nan])),
        "x",
    ),
    Case("quant.pow2_quantize", "bits 1", lambda: quant.pow2_quantize(X, 1), "bits"),
    Case(
        "quant.pow2_quantize",
        "max_exponent 10**12",
        lambda: quant.pow2_quantize(X, 4, 10**12),
        "max_exponent",
    ),
    Case(
        "quant.pow2_quantize",
        "fractional max_exponent",
        lambda: quant.pow2_quantize(X, 4, 2.5),
        "max_exponent",
    ),
    Case(
        "quant.pow2_rounding_error", "amax 0", lambda: quant.pow2_rounding_error(4, 0.0, X), "amax"
    ),
    Case(
        "quant.pow2_rounding_error",
        "NaN amax",
        lambda: quant.pow2_rounding_error(4, math.nan, X),
        "amax",
    ),
    Case(
        "quant.pow2_rounding_error", "bits 0", lambda: quant.pow2_rounding_error(0, 1.0, X), "bits"
    ),
    Case(
        "quant.pow2_rounding_error",
        "empty x",
        lambda: quant.pow2_rounding_error(4, 1.0, torch.empty(0)),
        "x",
    ),
    Case("quant.quantize_multiplier", "m 0", lambda: quant.quantize_multiplier(0.0), "m"),
    Case("quant.quantize_multiplier", "NaN m", lambda: quant.quantize_multiplier(math.nan), "m"),
    Case("quant.quantize_multiplier", "inf m", lambda: quant.quantize_multiplier(math.inf), "m"),
    Case("quant.quantize_multiplier", "negative m", lambda: quant.quantize_multiplier(-0.5), "m"),
    Case("quant.quantize_multiplier", "string m", lambda: quant.quantize_multiplier("0.5"), "m"),
    Case("quant.quantize_multiplier", "m 1e-20", lambda: quant.quantize_multiplier(1e-20), "m"),
    Case(
        "quant.rounding_shift",
        "float acc",
        lambda: quant.rounding_shift(ACC.float(), MULT, SHIFT),
        "acc",
    ),
    Case(
        "quant.rounding_shift",
        "shift 0",
        lambda: quant.rounding_shift(ACC, MULT, torch.zeros(3, dtype=torch.int64)),
        "shift",
    ),
    Case(
        "quant.rounding_shift",
        "shift 63",
        lambda: quant.rounding_shift(ACC, MULT, torch.full((3,), 63)),
        "shift",
    ),
    Case(
        "quant.rounding_shift",
        "multiplier of wrong length",
        lambda: quant.rounding_shift(ACC, MULT[:2], SHIFT),
        "multiplier",
    ),
    Case(
        "quant.rounding_shift",
        "empty acc",
        lambda: quant.rounding_shift(ACC[:0], MULT, SHIFT),
        "acc",
    ),
    Case(
        "quant.int_linear_prepare",
        "a Conv2d as linear",
        lambda: quant.int_linear_prepare(nn.Conv2d(4, 3, 1), XQP, YQP),
        "linear",
    ),
    Case(
        "quant.int_linear_prepare",
        "x_qparams as a plain tuple",
        lambda: quant.int_linear_prepare(LIN4, (0.1, 0, 0, 255), YQP),
        "x_qparams",
    ),
    Case(
        "quant.int_linear_prepare",
        "16-bit y_qparams",
        lambda: quant.int_linear_prepare(LIN4, XQP, quant.compute_qparams(-1.0, 1.0, 16)),
        "y_qparams",
    ),
    Case(
        "quant.int_linear_prepare",
        "x_qparams with scale 0",
        lambda: quant.int_linear_prepare(LIN4, quant.QParams(0.0, 0, 0, 255), YQP),
        "x_qparams",
    ),
    Case(
        "quant.int_linear_prepare",
        "NaN weights",
        lambda: quant.int_linear_prepare(
            nn.Linear(4, 3).requires_grad_(False).apply(lambda m: m.weight.fill_(math.nan)),
            XQP,
            YQP,
        ),
        "linear",
    ),
    Case("quant.int_linear", "float q_x", lambda: quant.int_linear(QX.float(), INT_LAYER), "q_x"),
    Case(
        "quant.int_linear",
        "q_x with wrong feature count",
        lambda: quant.int_linear(torch.randint(0, 256, (2, 5)), INT_LAYER),
        "q_x",
    ),
    Case(
        "quant.int_linear",
        "q_x codes out of range",
        lambda: quant.int_linear(QX + 1000, INT_LAYER),
        "q_x",
    ),
    Case("quant.int_linear", "nn.Linear as layer", lambda: quant.int_linear(QX, LIN4), "layer"),
    Case("quant.int_linear", "1-D q_x", lambda: quant.int_linear(QX[0], INT_LAYER), "q_x"),
    Case("quant.ort_range", "unknown method", lambda: quant.ort_range([X], "kl"), "method"),
    Case("quant.ort_range", "empty batches", lambda: quant.ort_range([]), "batches"),
    Case(
        "quant.ort_range",
        "percentile 150",
        lambda: quant.ort_range([X], "percentile", percentile=150),
        "percentile",
    ),
    Case(
        "quant.ort_range",
        "num_bins 10**12",
        lambda: quant.ort_range([X], "entropy", num_bins=10**12),
        "num_bins",
    ),
    Case(
        "quant.ort_range",
        "NaN in a batch",
        lambda: quant.ort_range([torch.tensor([math.nan])]),
        "batches",
    ),
    # ------------------------------------------------------------------ qat: PTQ and QAT
    Case("qat.weight_qparams", "bits 0", lambda: qat.weight_qparams(W, 0), "bits"),
    Case("qat.weight_qparams", "empty w", lambda: qat.weight_qparams(torch.empty(0, 3), 4), "w"),
    Case("qat.weight_qparams", "string w", lambda: qat.weight_qparams("weight", 4), "w"),
    Case(
        "qat.weight_qparams",
        "NaN in w",
        lambda: qat.weight_qparams(torch.full((2, 2), math.nan), 4),
        "w",
    ),
    Case("qat.QuantLayer", "string layer", lambda: qat.QuantLayer("conv"), "layer"),
    Case("qat.QuantLayer", "a ReLU as layer", lambda: qat.QuantLayer(nn.ReLU()), "layer"),
    Case("qat.QuantLayer", "unknown mode", lambda: qat.QuantLayer(LIN4, mode="int8"), "mode"),
    Case("qat.QuantLayer", "w_bits 1", lambda: qat.QuantLayer(LIN4, w_bits=1), "w_bits"),
    Case("qat.QuantLayer", "a_bits 10**12", lambda: qat.QuantLayer(LIN4, a_bits=10**12), "a_bits"),
    Case("qat.QuantLayer", "momentum 1.5", lambda: qat.QuantLayer(LIN4, momentum=1.5), "momentum"),
    Case(
        "qat.QuantLayer",
        "NaN momentum",
        lambda: qat.QuantLayer(LIN4, momentum=math.nan),
        "momentum",
    ),
    Case(
        "qat.quantizable_layers", "string model", lambda: qat.quantizable_layers("model"), "model"
    ),
    Case(
        "qat.quantizable_layers",
        "state dict model",
        lambda: qat.quantizable_layers(MLP.state_dict()),
        "model",
    ),
    Case("qat.prepare", "string model", lambda: qat.prepare("model"), "model"),
    Case("qat.prepare", "w_bits 0", lambda: qat.prepare(MLP, 0, 8), "w_bits"),
    Case("qat.prepare", "fractional a_bits", lambda: qat.prepare(MLP, 8, 3.5), "a_bits"),
    Case(
        "qat.prepare",
        "a_bits for an unknown layer",
        lambda: qat.prepare(MLP, 8, {"fc9": 4}),
        "a_bits",
    ),
    Case("qat.prepare", "unknown mode", lambda: qat.prepare(MLP, mode="int8"), "mode"),
    Case("qat.quant_layers", "string model", lambda: qat.quant_layers("model"), "model"),
    Case("qat.quant_layers", "None model", lambda: qat.quant_layers(None), "model"),
    Case(
        "qat.calibrate_activations",
        "unknown observer",
        lambda: qat.calibrate_activations(QMODEL, CALIB, "kl"),
        "observer",
    ),
    Case(
        "qat.calibrate_activations",
        "empty batches",
        lambda: qat.calibrate_activations(QMODEL, []),
        "batches",
    ),
    Case(
        "qat.calibrate_activations",
        "a tensor as batches",
        lambda: qat.calibrate_activations(QMODEL, XV),
        "batches",
    ),
    Case(
        "qat.calibrate_activations",
        "NaN in a batch",
        lambda: qat.calibrate_activations(QMODEL, [torch.full((2, 64), math.nan)]),
        "batches",
    ),
    Case(
        "qat.calibrate_activations",
        "string qmodel",
        lambda: qat.calibrate_activations("qmodel", CALIB),
        "qmodel",
    ),
    Case(
        "qat.calibrate_activations",
        "percentile 150 for the observer",
        lambda: qat.calibrate_activations(QMODEL, CALIB, "percentile", percentile=150),
        "percentile",
    ),
    Case(
        "qat.calibration_batches",
        "num_batches 0",
        lambda: qat.calibration_batches(LOADER, 0),
        "num_batches",
    ),
    Case(
        "qat.calibration_batches",
        "num_batches 10**12",
        lambda: qat.calibration_batches(LOADER, 10**12),
        "num_batches",
    ),
    Case(
        "qat.calibration_batches",
        "a tensor as loader",
        lambda: qat.calibration_batches(XV, 4),
        "loader",
    ),
    Case(
        "qat.calibration_batches", "empty loader", lambda: qat.calibration_batches([], 4), "loader"
    ),
    Case(
        "qat.calibration_batches",
        "a list of x, not (x, y)",
        lambda: qat.calibration_batches(CALIB, 1),
        "loader",
    ),
    Case("qat.static_ptq", "string model", lambda: qat.static_ptq("model", CALIB, 8), "model"),
    Case("qat.static_ptq", "empty batches", lambda: qat.static_ptq(MLP, [], 8), "batches"),
    Case("qat.static_ptq", "bits 0", lambda: qat.static_ptq(MLP, CALIB, 0), "bits"),
    Case("qat.static_ptq", "bits 10**12", lambda: qat.static_ptq(MLP, CALIB, 10**12), "bits"),
    Case(
        "qat.static_ptq",
        "unknown observer",
        lambda: qat.static_ptq(MLP, CALIB, 8, observer="kl"),
        "observer",
    ),
    Case(
        "qat.static_ptq",
        "a_bits as an unknown string",
        lambda: qat.static_ptq(MLP, CALIB, 8, "other"),
        "a_bits",
    ),
    Case("qat.dynamic_ptq", "string model", lambda: qat.dynamic_ptq("model", 8), "model"),
    Case("qat.dynamic_ptq", "bits 0", lambda: qat.dynamic_ptq(MLP, 0), "bits"),
    Case("qat.dynamic_ptq", "bits 10**12", lambda: qat.dynamic_ptq(MLP, 10**12), "bits"),
    Case("qat.qat_model", "bits 1", lambda: qat.qat_model(MLP, CALIB, 1), "bits"),
    Case("qat.qat_model", "a tensor as batches", lambda: qat.qat_model(MLP, XV, 4), "batches"),
    Case("qat.qat_model", "None model", lambda: qat.qat_model(None, CALIB, 4), "model"),
    Case("qat.qat_step", "y of another length", lambda: qat.qat_step(QAT, XV, YV[:3], OPT), "y"),
    Case("qat.qat_step", "string x", lambda: qat.qat_step(QAT, "x", YV, OPT), "x"),
    Case(
        "qat.qat_step", "string optimizer", lambda: qat.qat_step(QAT, XV, YV, "adam"), "optimizer"
    ),
    Case("qat.qat_step", "float labels y", lambda: qat.qat_step(QAT, XV, YV.float(), OPT), "y"),
    Case("qat.qat_step", "string model", lambda: qat.qat_step("model", XV, YV, OPT), "model"),
    Case("qat.qat_finetune", "epochs 0", lambda: qat.qat_finetune(QAT, LOADER, epochs=0), "epochs"),
    Case("qat.qat_finetune", "negative lr", lambda: qat.qat_finetune(QAT, LOADER, lr=-1e-3), "lr"),
    Case("qat.qat_finetune", "NaN lr", lambda: qat.qat_finetune(QAT, LOADER, lr=math.nan), "lr"),
    Case("qat.qat_finetune", "empty loader", lambda: qat.qat_finetune(QAT, []), "loader"),
    Case("qat.qat_finetune", "string qmodel", lambda: qat.qat_finetune("qmodel", LOADER), "qmodel"),
    Case(
        "qat.qat_finetune",
        "step not callable",
        lambda: qat.qat_finetune(QAT, LOADER, step="qat_step"),
        "step",
    ),
    Case(
        "qat.qat_finetune",
        "epochs 10**12",
        lambda: qat.qat_finetune(QAT, LOADER, epochs=10**12),
        "epochs",
    ),
    Case("qat.size_bytes", "bits 0", lambda: qat.size_bytes(MLP, 0), "bits"),
    Case("qat.size_bytes", "bits 10**12", lambda: qat.size_bytes(MLP, 10**12), "bits"),
    Case("qat.size_bytes", "fractional bits", lambda: qat.size_bytes(MLP, 2.5), "bits"),
    Case("qat.size_bytes", "string model", lambda: qat.size_bytes("model", 8), "model"),
    Case(
        "qat.size_bytes",
        "bits for an unknown layer",
        lambda: qat.size_bytes(MLP, {"fc9": 4}),
        "bits",
    ),
    # ------------------------------------------------------------------ qat: mixed precision
    Case(
        "qat.sensitivity",
        "empty bits_list",
        lambda: qat.sensitivity(MLP, CALIB, XV, YV, []),
        "bits_list",
    ),
    Case(
        "qat.sensitivity",
        "bits_list with 1 bit",
        lambda: qat.sensitivity(MLP, CALIB, XV, YV, (1, 4)),
        "bits_list",
    ),
    Case(
        "qat.sensitivity",
        "y_val of another length",
        lambda: qat.sensitivity(MLP, CALIB, XV, YV[:2]),
        "y_val",
    ),
    Case("qat.sensitivity", "empty calib", lambda: qat.sensitivity(MLP, [], XV, YV), "calib"),
    Case(
        "qat.sensitivity",
        "empty x_val",
        lambda: qat.sensitivity(MLP, CALIB, XV[:0], YV[:0]),
        "x_val",
    ),
    Case(
        "qat.sensitivity", "string model", lambda: qat.sensitivity("model", CALIB, XV, YV), "model"
    ),
    Case(
        "qat.assign_bits", "budget_bytes 0", lambda: qat.assign_bits(MLP, SENS, 0), "budget_bytes"
    ),
    Case(
        "qat.assign_bits",
        "negative budget_bytes",
        lambda: qat.assign_bits(MLP, SENS, -5),
        "budget_bytes",
    ),
    Case(
        "qat.assign_bits",
        "budget_bytes below the narrowest model",
        lambda: qat.assign_bits(MLP, SENS, 10),
        "budget_bytes",
    ),
    Case("qat.assign_bits", "empty sens", lambda: qat.assign_bits(MLP, {}, 10**6), "sens"),
    Case(
        "qat.assign_bits",
        "sens with a 1-bit width",
        lambda: qat.assign_bits(MLP, {"1": {1: 0.5, 8: 0.0}, "3": {4: 0.2, 8: 0.0}}, 10**6),
        "sens",
    ),
    Case("qat.assign_bits", "string model", lambda: qat.assign_bits("model", SENS, 10**6), "model"),
    # ------------------------------------------------------------------ qat: library quantizers
    Case("qat.torch_int8", "string model", lambda: qat.torch_int8("model"), "model"),
    Case("qat.torch_int8", "empty calib", lambda: qat.torch_int8(MLP, []), "calib"),
    Case("qat.torch_int8", "a tensor as calib", lambda: qat.torch_int8(MLP, XV), "calib"),
    Case(
        "qat.torch_int8",
        "NaN in calib",
        lambda: qat.torch_int8(MLP, [torch.full((2, 64), math.nan)]),
        "calib",
    ),
    Case(
        "qat.runtime_table",
        "batch 0",
        lambda: qat.runtime_table(MLP, CALIB, XV, YV, STATIC, batch=0),
        "batch",
    ),
    Case(
        "qat.runtime_table",
        "y_test of another length",
        lambda: qat.runtime_table(MLP, CALIB, XV, YV[:2], STATIC),
        "y_test",
    ),
    Case(
        "qat.runtime_table",
        "string labkit_int8",
        lambda: qat.runtime_table(MLP, CALIB, XV, YV, "int8.pt"),
        "labkit_int8",
    ),
    Case(
        "qat.runtime_table",
        "empty x_test",
        lambda: qat.runtime_table(MLP, CALIB, XV[:0], YV[:0], STATIC),
        "x_test",
    ),
    Case(
        "qat.runtime_table",
        "rounds 0",
        lambda: qat.runtime_table(MLP, CALIB, XV, YV, STATIC, batch=4, rounds=0),
        "rounds",
    ),
    Case(
        "qat.runtime_table",
        "repeats 10**12",
        lambda: qat.runtime_table(MLP, CALIB, XV, YV, STATIC, batch=4, repeats=10**12),
        "repeats",
    ),
    # ------------------------------------------------------------------ qat: the character LM
    Case("qat.LMConfig", "vocab_size 0", lambda: qat.LMConfig(vocab_size=0), "vocab_size"),
    Case("qat.LMConfig", "fractional n_embd", lambda: qat.LMConfig(n_embd=127.5), "n_embd"),
    Case(
        "qat.LMConfig",
        "n_head not dividing n_embd",
        lambda: qat.LMConfig(n_head=3, n_embd=128),
        "n_head",
    ),
    Case("qat.LMConfig", "negative block_size", lambda: qat.LMConfig(block_size=-1), "block_size"),
    Case("qat.LMConfig", "negative n_layer", lambda: qat.LMConfig(n_layer=-1), "n_layer"),
    Case("qat.CharLM", "a dict as cfg", lambda: qat.CharLM({"vocab_size": 20}), "cfg"),
    Case("qat.CharLM", "None cfg", lambda: qat.CharLM(None), "cfg"),
    Case("qat.CharLM.forward", "unknown token ids", lambda: LM(IDS + 20), "ids"),
    Case("qat.CharLM.forward", "negative token ids", lambda: LM(IDS - 25), "ids"),
    Case("qat.CharLM.forward", "float ids", lambda: LM(IDS.float()), "ids"),
    Case(
        "qat.CharLM.forward",
        "more positions than block_size",
        lambda: LM(torch.zeros(1, 17, dtype=torch.long)),
        "ids",
    ),
    Case("qat.load_char_lm", "None retrain", lambda: qat.load_char_lm(None), "retrain"),
    Case("qat.load_char_lm", "string retrain", lambda: qat.load_char_lm("no"), "retrain"),
    Case("qat.lm_loss", "string model", lambda: qat.lm_loss("lm", IDS, IDS), "model"),
    Case("qat.lm_loss", "y of another shape", lambda: qat.lm_loss(LM, IDS, IDS[:, :8]), "y"),
    Case("qat.lm_loss", "float x", lambda: qat.lm_loss(LM, IDS.float(), IDS), "x"),
    Case("qat.lm_loss", "unknown token ids in y", lambda: qat.lm_loss(LM, IDS, IDS + 20), "y"),
    Case("qat.lm_loss", "unknown token ids in x", lambda: qat.lm_loss(LM, IDS + 20, IDS), "x"),
    Case("qat.lm_windows", "unknown split", lambda: qat.lm_windows("test"), "split"),
    Case("qat.lm_windows", "n 0", lambda: qat.lm_windows("val", 0), "n"),
    Case("qat.lm_windows", "n 10**12", lambda: qat.lm_windows("val", 10**12), "n"),
    Case("qat.lm_windows", "block_size 0", lambda: qat.lm_windows("val", 4, 0), "block_size"),
    Case("qat.lm_windows", "fractional seed", lambda: qat.lm_windows("val", 4, 16, 1.5), "seed"),
    Case("qat.train_char_lm", "steps 0", lambda: qat.train_char_lm(steps=0), "steps"),
    Case(
        "qat.train_char_lm",
        "batch_size 10**12",
        lambda: qat.train_char_lm(batch_size=10**12),
        "batch_size",
    ),
    Case("qat.train_char_lm", "lr 0", lambda: qat.train_char_lm(lr=0.0), "lr"),
    Case("qat.train_char_lm", "threads 0", lambda: qat.train_char_lm(threads=0), "threads"),
    Case("qat.train_char_lm", "fractional seed", lambda: qat.train_char_lm(seed=1.5), "seed"),
    # ------------------------------------------------------------------ qat: LLM quantisation
    Case(
        "qat.fake_quantize_groupwise",
        "group_size 0",
        lambda: qat.fake_quantize_groupwise(W, 4, 0),
        "group_size",
    ),
    Case(
        "qat.fake_quantize_groupwise",
        "group_size not dividing in",
        lambda: qat.fake_quantize_groupwise(W, 4, 3),
        "group_size",
    ),
    Case(
        "qat.fake_quantize_groupwise",
        "group_size 10**12",
        lambda: qat.fake_quantize_groupwise(W, 4, 10**12),
        "group_size",
    ),
    Case(
        "qat.fake_quantize_groupwise", "1-D w", lambda: qat.fake_quantize_groupwise(W[0], 4, 8), "w"
    ),
    Case(
        "qat.fake_quantize_groupwise",
        "empty w",
        lambda: qat.fake_quantize_groupwise(W[:0], 4, 8),
        "w",
    ),
    Case(
        "qat.fake_quantize_groupwise",
        "bits 1",
        lambda: qat.fake_quantize_groupwise(W, 1, 8),
        "bits",
    ),
    Case(
        "qat.fake_quantize_groupwise",
        "integer w",
        lambda: qat.fake_quantize_groupwise(QX, 4, 4),
        "w",
    ),
    Case(
        "qat.gptq_quantize",
        "h of wrong shape",
        lambda: qat.gptq_quantize(W, torch.eye(4), 4, 8),
        "h",
    ),
    Case(
        "qat.gptq_quantize",
        "negative damp",
        lambda: qat.gptq_quantize(W, H, 4, 8, damp=-1.0),
        "damp",
    ),
    Case(
        "qat.gptq_quantize",
        "NaN damp",
        lambda: qat.gptq_quantize(W, H, 4, 8, damp=math.nan),
        "damp",
    ),
    Case(
        "qat.gptq_quantize",
        "NaN in h",
        lambda: qat.gptq_quantize(W, torch.full((8, 8), math.nan), 4, 8),
        "h",
    ),
    Case(
        "qat.gptq_quantize",
        "h not positive definite",
        lambda: qat.gptq_quantize(W, -H, 4, 8, damp=0.0),
        "h",
    ),
    Case(
        "qat.output_error", "w_hat of another shape", lambda: qat.output_error(W, W[:2], H), "w_hat"
    ),
    Case("qat.output_error", "h of wrong shape", lambda: qat.output_error(W, W, torch.eye(3)), "h"),
    Case("qat.output_error", "string w", lambda: qat.output_error("w", W, H), "w"),
    Case("qat.awq_scales", "grid 0", lambda: qat.awq_scales(W, H, ACT, 4, 8, grid=0), "grid"),
    Case(
        "qat.awq_scales",
        "grid 10**12",
        lambda: qat.awq_scales(W, H, ACT, 4, 8, grid=10**12),
        "grid",
    ),
    Case(
        "qat.awq_scales",
        "act_mean of wrong length",
        lambda: qat.awq_scales(W, H, torch.ones(5), 4, 8),
        "act_mean",
    ),
    Case(
        "qat.awq_scales", "negative act_mean", lambda: qat.awq_scales(W, H, -ACT, 4, 8), "act_mean"
    ),
    Case(
        "qat.awq_scales",
        "NaN in act_mean",
        lambda: qat.awq_scales(W, H, torch.full((8,), math.nan), 4, 8),
        "act_mean",
    ),
    Case(
        "qat.smoothquant_scales",
        "alpha 1.5",
        lambda: qat.smoothquant_scales(ACT, ACT, 1.5),
        "alpha",
    ),
    Case(
        "qat.smoothquant_scales",
        "different lengths",
        lambda: qat.smoothquant_scales(ACT, torch.ones(5)),
        "act_absmax",
    ),
    Case(
        "qat.smoothquant_scales",
        "negative weight_absmax",
        lambda: qat.smoothquant_scales(ACT, -ACT),
        "weight_absmax",
    ),
    Case(
        "qat.smoothquant_scales",
        "empty act_absmax",
        lambda: qat.smoothquant_scales(torch.empty(0), torch.empty(0)),
        "act_absmax",
    ),
    Case(
        "qat.smoothquant_scales",
        "NaN alpha",
        lambda: qat.smoothquant_scales(ACT, ACT, math.nan),
        "alpha",
    ),
    Case(
        "qat.smooth_linear", "s of wrong length", lambda: qat.smooth_linear(FC, torch.ones(5)), "s"
    ),
    Case("qat.smooth_linear", "s with a zero", lambda: qat.smooth_linear(FC, torch.zeros(8)), "s"),
    Case(
        "qat.smooth_linear",
        "a Conv2d as linear",
        lambda: qat.smooth_linear(nn.Conv2d(8, 3, 1), ACT),
        "linear",
    ),
    Case(
        "qat.w8a8_linear",
        "x with wrong feature count",
        lambda: qat.w8a8_linear(FC, torch.randn(2, 5)),
        "x",
    ),
    Case("qat.w8a8_linear", "bits 1", lambda: qat.w8a8_linear(FC, torch.randn(2, 8), 1), "bits"),
    Case("qat.w8a8_linear", "empty x", lambda: qat.w8a8_linear(FC, torch.empty(0, 8)), "x"),
    Case(
        "qat.w8a8_linear",
        "NaN in x",
        lambda: qat.w8a8_linear(FC, torch.full((2, 8), math.nan)),
        "x",
    ),
    Case(
        "qat.w8a8_linear",
        "string linear",
        lambda: qat.w8a8_linear("fc", torch.randn(2, 8)),
        "linear",
    ),
    Case("qat.block_linears", "string model", lambda: qat.block_linears("lm"), "model"),
    Case("qat.block_linears", "None model", lambda: qat.block_linears(None), "model"),
    Case(
        "qat.layer_inputs",
        "names as one string",
        lambda: qat.layer_inputs(LM, IDS, "blocks.0.fc"),
        "names",
    ),
    Case(
        "qat.layer_inputs",
        "unknown layer name",
        lambda: qat.layer_inputs(LM, IDS, ["blocks.9.fc"]),
        "names",
    ),
    Case(
        "qat.layer_inputs",
        "string model",
        lambda: qat.layer_inputs("lm", IDS, ["blocks.0.fc"]),
        "model",
    ),
    Case(
        "qat.layer_inputs", "string x", lambda: qat.layer_inputs(LM, "hello", ["blocks.0.fc"]), "x"
    ),
    Case("qat.linear_stats", "string model", lambda: qat.linear_stats("lm", IDS), "model"),
    Case("qat.linear_stats", "string x", lambda: qat.linear_stats(LM, "some text"), "x"),
    Case(
        "qat.quantize_linears",
        "unknown method",
        lambda: qat.quantize_linears(LM, "hqq", 4, 8),
        "method",
    ),
    Case(
        "qat.quantize_linears",
        "gptq without stats",
        lambda: qat.quantize_linears(LM, "gptq", 4, 8),
        "stats",
    ),
    Case(
        "qat.quantize_linears",
        "group_size not dividing in",
        lambda: qat.quantize_linears(LM, "rtn", 4, 7),
        "group_size",
    ),
    Case("qat.quantize_linears", "bits 0", lambda: qat.quantize_linears(LM, "rtn", 0, 8), "bits"),
    Case(
        "qat.quantize_linears",
        "string model",
        lambda: qat.quantize_linears("lm", "rtn", 4, 8),
        "model",
    ),
    Case("qat.groupwise_size_bytes", "bits 1", lambda: qat.groupwise_size_bytes(LM, 1, 8), "bits"),
    Case(
        "qat.groupwise_size_bytes",
        "group_size 0",
        lambda: qat.groupwise_size_bytes(LM, 4, 0),
        "group_size",
    ),
    Case(
        "qat.groupwise_size_bytes",
        "string model",
        lambda: qat.groupwise_size_bytes("lm", 4, 8),
        "model",
    ),
    Case(
        "qat.lsq_fake_quantize",
        "float step, not a tensor",
        lambda: qat.lsq_fake_quantize(X, 0.1, 0.0, -8, 7),
        "step",
    ),
    Case(
        "qat.lsq_fake_quantize",
        "qmin > qmax",
        lambda: qat.lsq_fake_quantize(X, torch.tensor(0.1), 0.0, 7, -8),
        "qmin",
    ),
    Case(
        "qat.lsq_fake_quantize",
        "string x",
        lambda: qat.lsq_fake_quantize("x", torch.tensor(0.1), 0.0, -8, 7),
        "x",
    ),
    Case(
        "qat.lsq_fake_quantize",
        "empty step",
        lambda: qat.lsq_fake_quantize(X, torch.empty(0), 0.0, -8, 7),
        "step",
    ),
    Case("qat.lsq_model", "bits 1", lambda: qat.lsq_model(MLP, CALIB, 1), "bits"),
    Case("qat.lsq_model", "empty batches", lambda: qat.lsq_model(MLP, [], 4), "batches"),
    Case("qat.lsq_model", "a tensor as batches", lambda: qat.lsq_model(MLP, XV, 4), "batches"),
    Case("qat.lsq_model", "string model", lambda: qat.lsq_model("model", CALIB, 4), "model"),
    # ------------------------------------------------------------------ precision: formats
    Case(
        "precision.FloatFormat",
        "exponent_bits 0",
        lambda: precision.FloatFormat("f", 0, 3, torch.float16),
        "exponent_bits",
    ),
    Case(
        "precision.FloatFormat",
        "negative mantissa_bits",
        lambda: precision.FloatFormat("f", 5, -1, torch.float16),
        "mantissa_bits",
    ),
    Case(
        "precision.FloatFormat",
        "string dtype",
        lambda: precision.FloatFormat("f", 5, 10, "float16"),
        "dtype",
    ),
    Case("precision.get_format", "unknown name", lambda: precision.get_format("fp64"), "fmt"),
    Case("precision.get_format", "None", lambda: precision.get_format(None), "fmt"),
    Case("precision.fields", "negative bits", lambda: precision.fields(-1, "fp16"), "bits"),
    Case("precision.fields", "bits beyond 16", lambda: precision.fields(2**16, "fp16"), "bits"),
    Case("precision.fields", "fractional bits", lambda: precision.fields(1.5, "fp16"), "bits"),
    Case("precision.fields", "unknown fmt", lambda: precision.fields(0, "fp4"), "fmt"),
    Case(
        "precision.bits_to_float",
        "bits beyond 32",
        lambda: precision.bits_to_float(2**32, "fp32"),
        "bits",
    ),
    Case(
        "precision.bits_to_float",
        "bits as a hex string",
        lambda: precision.bits_to_float("0x3c00", "fp16"),
        "bits",
    ),
    Case(
        "precision.bits_to_float", "unknown fmt", lambda: precision.bits_to_float(0, "half"), "fmt"
    ),
    Case(
        "precision.float_to_bits",
        "string value",
        lambda: precision.float_to_bits("0.1", "fp16"),
        "value",
    ),
    Case(
        "precision.float_to_bits",
        "None value",
        lambda: precision.float_to_bits(None, "fp16"),
        "value",
    ),
    Case(
        "precision.float_to_bits",
        "a 2-element tensor",
        lambda: precision.float_to_bits(torch.ones(2), "fp16"),
        "value",
    ),
    Case(
        "precision.float_to_bits",
        "unknown fmt",
        lambda: precision.float_to_bits(0.1, "fp64"),
        "fmt",
    ),
    Case("precision.explain", "string value", lambda: precision.explain("0.1", "fp16"), "value"),
    Case("precision.explain", "unknown fmt", lambda: precision.explain(0.1, "fp64"), "fmt"),
    Case("precision.explain", "None value", lambda: precision.explain(None, "bf16"), "value"),
    Case("precision.limits", "unknown fmt", lambda: precision.limits("fp64"), "fmt"),
    Case("precision.limits", "an int as fmt", lambda: precision.limits(16), "fmt"),
    Case(
        "precision.round_trip",
        "integer dtype",
        lambda: precision.round_trip(X, torch.int8),
        "dtype",
    ),
    Case(
        "precision.round_trip",
        "dtype as a string",
        lambda: precision.round_trip(X, "float16"),
        "dtype",
    ),
    Case(
        "precision.round_trip",
        "empty x",
        lambda: precision.round_trip(torch.empty(0), torch.float16),
        "x",
    ),
    Case("precision.round_trip", "string x", lambda: precision.round_trip("x", torch.float16), "x"),
    Case("precision.round_trip", "integer x", lambda: precision.round_trip(QX, torch.float16), "x"),
    Case(
        "precision.underflow_fraction",
        "all-zero x",
        lambda: precision.underflow_fraction(torch.zeros(4), torch.float16),
        "x",
    ),
    Case(
        "precision.underflow_fraction",
        "empty x",
        lambda: precision.underflow_fraction(torch.empty(0), torch.float16),
        "x",
    ),
    Case(
        "precision.underflow_fraction",
        "integer dtype",
        lambda: precision.underflow_fraction(X, torch.int8),
        "dtype",
    ),
    Case(
        "precision.running_sum",
        "negative steps",
        lambda: precision.running_sum(1e-4, -1, torch.float16),
        "steps",
    ),
    Case(
        "precision.running_sum",
        "steps 10**12",
        lambda: precision.running_sum(1e-4, 10**12, torch.float16),
        "steps",
    ),
    Case(
        "precision.running_sum",
        "fractional steps",
        lambda: precision.running_sum(1e-4, 2.5, torch.float16),
        "steps",
    ),
    Case(
        "precision.running_sum",
        "NaN increment",
        lambda: precision.running_sum(math.nan, 10, torch.float16),
        "increment",
    ),
    Case(
        "precision.running_sum",
        "integer dtype",
        lambda: precision.running_sum(1e-4, 10, torch.int32),
        "dtype",
    ),
    Case(
        "precision.running_sum",
        "inf start",
        lambda: precision.running_sum(1e-4, 10, torch.float16, math.inf),
        "start",
    ),
    # ------------------------------------------------------------------ precision: loss scaling
    Case(
        "precision.update_scale", "scale 0", lambda: precision.update_scale(0.0, 0, False), "scale"
    ),
    Case(
        "precision.update_scale",
        "negative growth_tracker",
        lambda: precision.update_scale(2.0**16, -1, False),
        "growth_tracker",
    ),
    Case(
        "precision.update_scale",
        "growth_factor 1",
        lambda: precision.update_scale(2.0**16, 0, False, growth_factor=1.0),
        "growth_factor",
    ),
    Case(
        "precision.update_scale",
        "backoff_factor 0",
        lambda: precision.update_scale(2.0**16, 0, True, backoff_factor=0.0),
        "backoff_factor",
    ),
    Case(
        "precision.update_scale",
        "growth_interval 0",
        lambda: precision.update_scale(2.0**16, 0, False, growth_interval=0),
        "growth_interval",
    ),
    Case(
        "precision.update_scale",
        "found_inf as a string",
        lambda: precision.update_scale(2.0**16, 0, "no"),
        "found_inf",
    ),
    Case(
        "precision.update_scale",
        "None found_inf",
        lambda: precision.update_scale(2.0**16, 0, None),
        "found_inf",
    ),
    Case(
        "precision.DynamicLossScaler",
        "init_scale 0",
        lambda: precision.DynamicLossScaler(0.0),
        "init_scale",
    ),
    Case(
        "precision.DynamicLossScaler",
        "inf init_scale",
        lambda: precision.DynamicLossScaler(math.inf),
        "init_scale",
    ),
    Case(
        "precision.DynamicLossScaler",
        "growth_factor 0.5",
        lambda: precision.DynamicLossScaler(growth_factor=0.5),
        "growth_factor",
    ),
    Case(
        "precision.DynamicLossScaler",
        "backoff_factor 2",
        lambda: precision.DynamicLossScaler(backoff_factor=2.0),
        "backoff_factor",
    ),
    Case(
        "precision.DynamicLossScaler",
        "growth_interval 0",
        lambda: precision.DynamicLossScaler(growth_interval=0),
        "growth_interval",
    ),
    Case(
        "precision.DynamicLossScaler.scale",
        "string loss",
        lambda: precision.DynamicLossScaler().scale("loss"),
        "loss",
    ),
    Case(
        "precision.DynamicLossScaler.scale",
        "None loss",
        lambda: precision.DynamicLossScaler().scale(None),
        "loss",
    ),
    Case(
        "precision.DynamicLossScaler.unscale_",
        "string params",
        lambda: precision.DynamicLossScaler().unscale_("model"),
        "params",
    ),
    Case(
        "precision.DynamicLossScaler.unscale_",
        "an int as params",
        lambda: precision.DynamicLossScaler().unscale_(5),
        "params",
    ),
    Case(
        "precision.DynamicLossScaler.step",
        "string optimizer",
        lambda: precision.DynamicLossScaler().step("sgd"),
        "optimizer",
    ),
    Case(
        "precision.DynamicLossScaler.step",
        "a model as optimizer",
        lambda: precision.DynamicLossScaler().step(MLP),
        "optimizer",
    ),
    Case(
        "precision.DynamicLossScaler.update",
        "found_inf as a string",
        lambda: precision.DynamicLossScaler().update("yes"),
        "found_inf",
    ),
    Case(
        "precision.DynamicLossScaler.update",
        "None found_inf",
        lambda: precision.DynamicLossScaler().update(None),
        "found_inf",
    ),
    Case(
        "precision.replay_gradients",
        "empty grads",
        lambda: precision.replay_gradients([], precision.DynamicLossScaler()),
        "grads",
    ),
    Case(
        "precision.replay_gradients",
        "grads of different shapes",
        lambda: precision.replay_gradients(
            [torch.ones(4), torch.ones(3)], precision.DynamicLossScaler()
        ),
        "grads",
    ),
    Case(
        "precision.replay_gradients",
        "string scaler",
        lambda: precision.replay_gradients(GRADS, "dynamic"),
        "scaler",
    ),
    Case(
        "precision.replay_gradients",
        "lr 0",
        lambda: precision.replay_gradients(GRADS, precision.DynamicLossScaler(), lr=0.0),
        "lr",
    ),
    Case(
        "precision.replay_gradients",
        "integer grad_dtype",
        lambda: precision.replay_gradients(
            GRADS, precision.DynamicLossScaler(), grad_dtype=torch.int8
        ),
        "grad_dtype",
    ),
    Case(
        "precision.replay_gradients",
        "a string in grads",
        lambda: precision.replay_gradients(["g"], precision.DynamicLossScaler()),
        "grads",
    ),
    Case(
        "precision.gradient_sequence",
        "steps 0",
        lambda: precision.gradient_sequence(steps=0),
        "steps",
    ),
    Case(
        "precision.gradient_sequence",
        "negative size",
        lambda: precision.gradient_sequence(size=-1),
        "size",
    ),
    Case(
        "precision.gradient_sequence",
        "steps 10**12",
        lambda: precision.gradient_sequence(steps=10**12),
        "steps",
    ),
    Case(
        "precision.gradient_sequence",
        "fractional seed",
        lambda: precision.gradient_sequence(seed=1.5),
        "seed",
    ),
    # ------------------------------------------------------------------ precision: autocast
    Case("precision.op_dtypes", "string fn", lambda: precision.op_dtypes("matmul"), "fn"),
    Case(
        "precision.op_dtypes",
        "fp32 dtype",
        lambda: precision.op_dtypes(lambda: X @ X.T, dtype=torch.float32),
        "dtype",
    ),
    Case(
        "precision.op_dtypes",
        "unknown device_type",
        lambda: precision.op_dtypes(lambda: X @ X.T, device_type="tpu"),
        "device_type",
    ),
    Case(
        "precision.autocast_policy",
        "unknown device_type",
        lambda: precision.autocast_policy("gpu"),
        "device_type",
    ),
    Case(
        "precision.autocast_policy",
        "fp32 dtype",
        lambda: precision.autocast_policy("cpu", torch.float32),
        "dtype",
    ),
    Case(
        "precision.autocast_policy",
        "dtype as a string",
        lambda: precision.autocast_policy("cpu", "bf16"),
        "dtype",
    ),
    Case(
        "precision.amp_memory",
        "fp32 dtype",
        lambda: precision.amp_memory(MLP, XV, YV, torch.float32),
        "dtype",
    ),
    Case(
        "precision.amp_memory",
        "y of another length",
        lambda: precision.amp_memory(MLP, XV, YV[:2]),
        "y",
    ),
    Case(
        "precision.amp_memory", "string model", lambda: precision.amp_memory("mlp", XV, YV), "model"
    ),
    Case("precision.amp_memory", "empty x", lambda: precision.amp_memory(MLP, XV[:0], YV[:0]), "x"),
    Case(
        "precision.amp_memory",
        "float labels y",
        lambda: precision.amp_memory(MLP, XV, YV.float()),
        "y",
    ),
    Case(
        "precision.bf16_verdict",
        "empty results",
        lambda: precision.bf16_verdict(SUPPORT, {}),
        "results",
    ),
    Case(
        "precision.bf16_verdict",
        "speed-up 0",
        lambda: precision.bf16_verdict(SUPPORT, {"mm": (0.0, True)}),
        "results",
    ),
    Case(
        "precision.bf16_verdict",
        "a speed-up without its flag",
        lambda: precision.bf16_verdict(SUPPORT, {"mm": 1.5}),
        "results",
    ),
    Case(
        "precision.bf16_verdict",
        "empty support",
        lambda: precision.bf16_verdict({}, {"mm": (1.5, True)}),
        "support",
    ),
    Case(
        "precision.bf16_verdict",
        "string support",
        lambda: precision.bf16_verdict("avx2", {"mm": (1.5, True)}),
        "support",
    ),
    Case(
        "precision.amp_train_step",
        "string optimizer",
        lambda: precision.amp_train_step(MLP, XV, YV, "adam"),
        "optimizer",
    ),
    Case(
        "precision.amp_train_step",
        "fp32 dtype",
        lambda: precision.amp_train_step(MLP, XV, YV, OPT, dtype=torch.float32),
        "dtype",
    ),
    Case(
        "precision.amp_train_step",
        "max_grad_norm 0",
        lambda: precision.amp_train_step(MLP, XV, YV, OPT, max_grad_norm=0.0),
        "max_grad_norm",
    ),
    Case(
        "precision.amp_train_step",
        "string scaler",
        lambda: precision.amp_train_step(MLP, XV, YV, OPT, scaler="grad"),
        "scaler",
    ),
    Case(
        "precision.amp_train_step",
        "y of another length",
        lambda: precision.amp_train_step(MLP, XV, YV[:2], OPT),
        "y",
    ),
    Case(
        "precision.amp_train_step",
        "string model",
        lambda: precision.amp_train_step("mlp", XV, YV, OPT),
        "model",
    ),
    Case(
        "precision.cuda_fp16_training",
        "steps 0",
        lambda: precision.cuda_fp16_training(MLP, XV, YV, steps=0),
        "steps",
    ),
    Case(
        "precision.cuda_fp16_training",
        "negative lr",
        lambda: precision.cuda_fp16_training(MLP, XV, YV, lr=-0.1),
        "lr",
    ),
    Case(
        "precision.cuda_fp16_training",
        "string model",
        lambda: precision.cuda_fp16_training("mlp", XV, YV),
        "model",
    ),
    Case(
        "precision.cuda_fp16_training",
        "steps 10**12",
        lambda: precision.cuda_fp16_training(MLP, XV, YV, steps=10**12),
        "steps",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_gets_a_clear_error(case: Case) -> None:
    assert outcome(case) == "clear"
