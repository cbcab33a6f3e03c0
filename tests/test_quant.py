"""labkit.quant against torch's own fake-quant ops and independent references."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import quant

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _data(g: torch.Generator, scale: float, n: int = 3000) -> torch.Tensor:
    """Random values, exact ties (k + 0.5) S, values far out of range, +-inf and signed zeros."""
    k = torch.randint(-400, 400, (n,), generator=g).double()
    special = torch.tensor([math.inf, -math.inf, 1e30, -1e30, 0.0, -0.0], dtype=torch.float64)
    return torch.cat(
        [(k + 0.5) * scale, torch.randn(n, generator=g).double() * 80 * scale, special]
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("qrange", [(-128, 127), (0, 255), (0, 15), (-8, 7), (-32768, 32767)])
def test_per_tensor_equals_torch_bit_for_bit(dtype: torch.dtype, qrange: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(hash(qrange) % 1000)
    qmin, qmax = qrange
    for trial in range(8):
        scale = 2.0 ** -int(torch.randint(0, 6, ())) if trial % 2 else float(torch.rand(()) + 1e-3)
        zp = int(torch.randint(qmin, qmax + 1, (), generator=g))
        x = _data(g, scale).to(dtype)
        ref = torch.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
        got = quant.fake_quantize(x, scale, zp, qmin, qmax)
        assert got.dtype == ref.dtype
        assert torch.equal(got, ref), (dtype, scale, zp, (got != ref).sum())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_channel_equals_torch_bit_for_bit(dtype: torch.dtype, axis: int) -> None:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 5, 40, generator=g, dtype=torch.float64) * 30
    n = x.shape[axis]
    scale = torch.rand(n, generator=g) * 0.4 + 1e-3
    shape = [1, 1, 1]
    shape[axis] = n
    ties = (torch.randint(-200, 200, x.shape, generator=g) + 0.5) * scale.double().view(shape)
    x = torch.where(torch.rand(x.shape, generator=g) < 0.5, x, ties).to(dtype)
    for qmin, qmax in [(-128, 127), (0, 255), (-8, 7)]:
        zp = torch.randint(qmin, qmax + 1, (n,), generator=g, dtype=torch.int32)
        ref = torch.fake_quantize_per_channel_affine(x, scale, zp, axis % 3, qmin, qmax)
        got = quant.fake_quantize(x, scale, zp, qmin, qmax, axis=axis)
        assert got.dtype == ref.dtype
        assert torch.equal(got, ref)


def test_gradient_equals_torch_straight_through_estimator() -> None:
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(2000, generator=g) * 40).requires_grad_()
    w = torch.randn(2000, generator=g)
    (torch.fake_quantize_per_tensor_affine(x, 0.3, 5, -128, 127) * w).sum().backward()
    ref = x.grad.clone()
    x.grad = None
    (quant.fake_quantize(x, 0.3, 5, -128, 127) * w).sum().backward()
    assert torch.equal(x.grad, ref)
    assert 0 < int((ref == 0).sum()) < 2000  # some values were clamped, some passed through
    xc = (torch.randn(4, 300, generator=g) * 40).requires_grad_()
    s, z = torch.rand(4, generator=g) + 0.1, torch.tensor([0, 3, -2, 9], dtype=torch.int32)
    torch.fake_quantize_per_channel_affine(xc, s, z, 0, -128, 127).sum().backward()
    ref = xc.grad.clone()
    xc.grad = None
    quant.fake_quantize(xc, s, z, -128, 127, axis=0).sum().backward()
    assert torch.equal(xc.grad, ref)


def test_quantize_equals_torch_quantized_tensor_codes() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.cat([torch.randn(3000, generator=g) * 5, (torch.arange(-60, 60) + 0.5) * 0.125])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # quantized dtypes are deprecated
        ref_u = torch.quantize_per_tensor(x, 0.125, 7, torch.quint8).int_repr().int()
        ref_s = torch.quantize_per_tensor(x, 0.125, -3, torch.qint8).int_repr().int()
    assert torch.equal(quant.quantize(x, 0.125, 7, 0, 255), ref_u)
    assert torch.equal(quant.quantize(x, 0.125, -3, -128, 127), ref_s)


@settings(max_examples=60, deadline=None)
@given(
    xmin=st.floats(-1e3, 1e3),
    width=st.floats(0, 1e3),
    bits=st.integers(2, 16),
    symmetric=st.booleans(),
)
def test_compute_qparams_zero_exact_and_range_covered(
    xmin: float, width: float, bits: int, symmetric: bool
) -> None:
    xmax = xmin + width
    qp = quant.compute_qparams(xmin, xmax, bits, symmetric)
    assert qp.scale > 0 and qp.qmin <= qp.zero_point <= qp.qmax
    assert qp.qmax - qp.qmin == 2**bits - 1
    zero = torch.zeros(3)
    assert torch.equal(quant.fake_quantize(zero, qp.scale, qp.zero_point, qp.qmin, qp.qmax), zero)
    ends = torch.tensor([min(xmin, 0.0), max(xmax, 0.0)], dtype=torch.float64)
    back = quant.fake_quantize(ends, qp.scale, qp.zero_point, qp.qmin, qp.qmax)
    # the ends of the range are reproduced to within one step (no clipping of the range)
    assert torch.all((back - ends).abs() <= qp.scale * (1 + 1e-4) + 1e-12)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-50, 50, width=32), min_size=1, max_size=64),
    bits=st.integers(2, 12),
    symmetric=st.booleans(),
)
def test_error_is_at_most_half_a_step_inside_the_range(
    values: list[float], bits: int, symmetric: bool
) -> None:
    x = torch.tensor(values)
    q, qp = quant.quantize_tensor(x, bits, symmetric)
    assert q.dtype == torch.int32 and int(q.min()) >= qp.qmin and int(q.max()) <= qp.qmax
    err = (quant.dequantize(q, qp.scale, qp.zero_point) - x).abs().max()
    assert float(err) <= qp.scale / 2 * (1 + 1e-3) + 1e-6


def test_per_channel_qparams_and_error_smaller_than_per_tensor() -> None:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(8, 4, 3, 3, generator=g) * torch.logspace(-2, 0, 8).view(8, 1, 1, 1)
    qp = quant.compute_qparams(w.amin((1, 2, 3)), w.amax((1, 2, 3)), 8, True)
    assert qp.scale.shape == (8,) and qp.zero_point.dtype == torch.int64
    pc = quant.fake_quantize_minmax(w, 4, True, axis=0)
    pt = quant.fake_quantize_minmax(w, 4, True)
    assert quant.sqnr_db(w, pc) > quant.sqnr_db(w, pt) + 3


def test_sqnr_of_uniform_quantiser_follows_6_db_per_bit() -> None:
    x = torch.rand(200_000, generator=torch.Generator().manual_seed(4)) * 2 - 1
    s8 = quant.sqnr_db(x, quant.fake_quantize_minmax(x, 8, True))
    s4 = quant.sqnr_db(x, quant.fake_quantize_minmax(x, 4, True))
    # uniform signal on [-1, 1]: SQNR = 10 log10((1/3) / (S^2 / 12)) with S = 1/(2^(b-1)-1)
    for s, b in ((s8, 8), (s4, 4)):
        step = 1 / (2 ** (b - 1) - 1)
        assert s == pytest.approx(10 * math.log10((1 / 3) / (step**2 / 12)), abs=0.1)
    assert quant.sqnr_db(x, x) == math.inf


# ---------------------------------------------------------------- observers


def _batches(x: torch.Tensor, n: int = 4) -> list[torch.Tensor]:
    return list(x.chunk(n))


def test_minmax_observer_over_several_batches() -> None:
    obs = quant.MinMaxObserver()
    for b in (torch.tensor([-1.0, 2.0]), torch.tensor([0.5, 3.0]), torch.tensor([-2.0])):
        obs.observe(b)
    assert obs.range(8, False) == (-2.0, 3.0)
    assert obs.range(8, True) == (-3.0, 3.0)
    assert obs.qparams(8, False) == quant.compute_qparams(-2.0, 3.0, 8, False)
    pc = quant.MinMaxObserver(axis=0).observe(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
    qp = pc.qparams(8, True)
    assert torch.allclose(qp.scale, torch.tensor([2.0, 4.0]) / 127)


def test_percentile_observer_matches_numpy_quantile() -> None:
    x = torch.randn(400_000, generator=torch.Generator().manual_seed(5))
    obs = quant.calibrate(_batches(x), quant.PercentileObserver(99.9, bins=4096))
    _, t = obs.range(8, True)
    ref = float(np.quantile(x.abs().numpy(), 0.999))
    assert t == pytest.approx(ref, abs=2 * obs.width)
    lo, hi = obs.range(8, False)
    assert lo == pytest.approx(float(np.quantile(x.numpy(), 0.0005)), abs=2 * obs.width)
    assert hi == pytest.approx(float(np.quantile(x.numpy(), 0.9995)), abs=2 * obs.width)


def test_histogram_growth_by_doubling_keeps_every_count() -> None:
    a, b = torch.randn(1000) * 0.1, torch.randn(1000) * 10
    obs = quant.PercentileObserver(99.0, bins=64).observe(a).observe(b)
    assert obs.hist.sum() == 2000
    assert obs.radius >= float(b.abs().max())
    fresh = torch.histc(torch.cat([a, b]).double(), 128, -obs.radius, obs.radius)
    # doubling merges bins exactly, so the counts equal a histogram built in one go,
    # except for values lying exactly on a merged edge (none with random normals)
    assert torch.equal(obs.hist, fresh)


def test_entropy_threshold_on_gaussian_is_a_few_sigma() -> None:
    x = torch.randn(1_000_000, generator=torch.Generator().manual_seed(6))
    obs = quant.calibrate(_batches(x), quant.EntropyObserver())
    _, t = obs.range(8, True)
    # KL calibration of a unit Gaussian at 8 bits clips near 3 to 4.5 sigma, below the max
    assert 3.0 < t < 4.8 < float(x.abs().max())
    _, t4 = obs.range(4, True)
    assert t4 < t  # fewer levels -> clip harder


def test_entropy_threshold_agrees_with_onnxruntime_on_symmetric_data() -> None:
    pytest.importorskip("onnxruntime")
    x = torch.randn(200_000, generator=torch.Generator().manual_seed(7))
    obs = quant.calibrate(_batches(x), quant.EntropyObserver(bins=1024))
    ours = obs.range(8, True)[1]
    lo, hi = quant.ort_range(_batches(x), "entropy", True, num_bins=2048, num_quantized_bins=256)
    assert ours == pytest.approx(hi, rel=0.15)


def test_minmax_and_percentile_agree_with_onnxruntime() -> None:
    pytest.importorskip("onnxruntime")
    x = torch.randn(50_000, generator=torch.Generator().manual_seed(8)) * 2 + 0.5
    lo, hi = quant.ort_range(_batches(x), "minmax", False)
    assert (lo, hi) == pytest.approx((float(x.min()), float(x.max())), rel=1e-6)
    obs = quant.calibrate(_batches(x), quant.PercentileObserver(99.9, bins=2048))
    ort = quant.ort_range(_batches(x), "percentile", True, num_bins=2048, percentile=99.9)
    assert obs.range(8, True)[1] == pytest.approx(ort[1], rel=0.02)


def test_mse_observer_beats_minmax_with_an_outlier() -> None:
    g = torch.Generator().manual_seed(9)
    x = torch.randn(100_000, generator=g)
    x[0] = 60.0
    mm = quant.calibrate([x], quant.MinMaxObserver()).qparams(4, True)
    ms = quant.calibrate([x], quant.MSEObserver()).qparams(4, True)

    def mse(qp: quant.QParams) -> float:
        return float(
            (quant.fake_quantize(x, qp.scale, qp.zero_point, qp.qmin, qp.qmax) - x).pow(2).mean()
        )

    assert mse(ms) < 0.2 * mse(mm)
    assert ms.scale < mm.scale


def test_observers_need_data_and_finite_values() -> None:
    for cls in quant.OBSERVERS.values():
        with pytest.raises(ValueError, match="observe"):
            cls().qparams(8, False)
        with pytest.raises(ValueError, match="inf or NaN"):
            cls().observe(torch.tensor([1.0, math.nan]))


# ---------------------------------------------------------------- fixed point, log, integer


def test_fixed_point_grid() -> None:
    x = torch.tensor([0.1, 3.3, -9.0, 7.99])
    y = quant.fixed_point(x, 3, 4)
    assert torch.equal(y, torch.tensor([0.125, 3.3125, -8.0, 7.9375]))


@settings(max_examples=80, deadline=None)
@given(m=st.floats(1e-6, 1e3))
def test_quantize_multiplier_relative_error(m: float) -> None:
    mult, shift = quant.quantize_multiplier(m)
    assert 2**30 <= mult < 2**31
    assert abs(mult / 2**shift - m) <= m * 2**-30


@settings(max_examples=80, deadline=None)
@given(acc=st.integers(-(2**31), 2**31 - 1), m=st.floats(1e-5, 0.99))
def test_rounding_shift_is_round_half_up_of_the_exact_product(acc: int, m: float) -> None:
    mult, shift = quant.quantize_multiplier(m)
    got = int(
        quant.rounding_shift(torch.tensor([acc]), torch.tensor([mult]), torch.tensor([shift]))
    )
    from fractions import Fraction

    exact = Fraction(acc * mult, 2**shift)
    assert got == math.floor(exact + Fraction(1, 2))


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_in=st.integers(1, 96),
    n_out=st.integers(1, 24),
    x_signed=st.booleans(),
)
def test_integer_only_linear_within_one_step_of_float(
    seed: int, n_in: int, n_out: int, x_signed: bool
) -> None:
    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n_out, n_in, generator=g) * 0.3)
        lin.bias.copy_(torch.randn(n_out, generator=g))
    x = torch.randn(16, n_in, generator=g) * 2
    if not x_signed:
        x = x.relu()
    xq = quant.compute_qparams(float(x.min()), float(x.max()), 8, symmetric=x_signed)
    with torch.no_grad():
        y = lin(x)
    yq = quant.compute_qparams(float(y.min()), float(y.max()), 8, symmetric=False)
    layer = quant.int_linear_prepare(lin, xq, yq)
    qx = quant.quantize(x, xq.scale, xq.zero_point, xq.qmin, xq.qmax)
    qy = quant.int_linear(qx, layer)
    assert qy.dtype == torch.int32
    # float reference on the same quantised operands, quantised to the same output grid
    xd = quant.dequantize(qx, xq.scale, xq.zero_point).double()
    zeros = torch.zeros(n_out, dtype=torch.int64)
    wd = quant.dequantize(layer.q_weight.int(), layer.w_scale, zeros, axis=0).double()
    y_ref = xd @ wd.T + lin.bias.detach().double()
    q_ref = quant.quantize(y_ref, yq.scale, yq.zero_point, yq.qmin, yq.qmax)
    assert int((qy - q_ref).abs().max()) <= 1
    y_int = quant.dequantize(qy, yq.scale, yq.zero_point).double()
    lo, hi = yq.scale * (yq.qmin - yq.zero_point), yq.scale * (yq.qmax - yq.zero_point)
    inside = (y_ref > lo) & (y_ref < hi)  # outside the output range clamping dominates
    err = (y_int - y_ref)[inside].abs()
    worst = float(err.max()) if err.numel() else 0.0
    assert worst <= yq.scale * 1.0001


def test_pow2_codes_are_powers_of_two() -> None:
    x = torch.tensor([0.0, 0.01, 0.3, -0.7, 1.0, 3.0, -0.2])
    c = quant.pow2_quantize(x, 4)
    nz = ~c.zero
    assert torch.equal(c.values[nz].abs(), torch.pow(2.0, c.exponent[nz].float()))
    assert torch.equal(c.values, torch.tensor([0.0, 0.0, 0.25, -0.5, 1.0, 4.0, -0.25]))
    assert int(c.exponent.max()) - int(c.exponent[nz].min()) <= 2**3 - 2


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: quant.compute_qparams(-1.0, 1.0, 1, False), "bits"),
        (lambda: quant.compute_qparams(-1.0, 1.0, 17, True), "bits"),
        (lambda: quant.compute_qparams(2.0, 1.0, 8, True), "xmin <= xmax"),
        (lambda: quant.compute_qparams(-1.0, math.inf, 8, True), "finite"),
        (lambda: quant.quantize(torch.ones(3), 0.0, 0, 0, 255), "scale"),
        (lambda: quant.quantize(torch.ones(3), -0.1, 0, 0, 255), "scale"),
        (lambda: quant.quantize(torch.ones(3, dtype=torch.int32), 0.1, 0, 0, 255), "floating"),
        (lambda: quant.quantize([1.0, 2.0], 0.1, 0, 0, 255), "torch.Tensor"),
        (lambda: quant.quantize(torch.ones(3), 0.1, 0, 10, 5), "qmin < qmax"),
        (lambda: quant.quantize(torch.ones(3), 0.1, 0.5, 0, 255), "zero_point"),
        (lambda: quant.quantize(torch.ones(2, 3), torch.ones(3), torch.zeros(3), 0, 9), "axis"),
        (
            lambda: quant.fake_quantize(
                torch.ones(2, 3), torch.ones(2), torch.zeros(2), 0, 9, axis=1
            ),
            "entries",
        ),
        (lambda: quant.dequantize(torch.ones(3), 0.1, 0), "integer"),
        (lambda: quant.pow2_quantize(torch.ones(3), 20), "bits"),
        (lambda: quant.quantize_multiplier(0.0), "> 0"),
    ],
)
def test_bad_input_gives_clear_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
