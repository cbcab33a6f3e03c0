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
    obs = quant.calibrate_observer(_batches(x), quant.PercentileObserver(99.9, bins=4096))
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
    obs = quant.calibrate_observer(_batches(x), quant.EntropyObserver())
    _, t = obs.range(8, True)
    # KL calibration of a unit Gaussian at 8 bits clips near 3 to 4.5 sigma, below the max
    assert 3.0 < t < 4.8 < float(x.abs().max())
    _, t4 = obs.range(4, True)
    assert t4 < t  # fewer levels -> clip harder


def test_entropy_threshold_agrees_with_onnxruntime_on_symmetric_data() -> None:
    pytest.importorskip("onnxruntime")
    x = torch.randn(200_000, generator=torch.Generator().manual_seed(7))
    obs = quant.calibrate_observer(_batches(x), quant.EntropyObserver(bins=1024))
    ours = obs.range(8, True)[1]
    lo, hi = quant.ort_range(_batches(x), "entropy", True, num_bins=2048, num_quantized_bins=256)
    assert ours == pytest.approx(hi, rel=0.15)


def test_minmax_and_percentile_agree_with_onnxruntime() -> None:
    pytest.importorskip("onnxruntime")
    x = torch.randn(50_000, generator=torch.Generator().manual_seed(8)) * 2 + 0.5
    lo, hi = quant.ort_range(_batches(x), "minmax", False)
    assert (lo, hi) == pytest.approx((float(x.min()), float(x.max())), rel=1e-6)
    obs = quant.calibrate_observer(_batches(x), quant.PercentileObserver(99.9, bins=2048))
    ort = quant.ort_range(_batches(x), "percentile", True, num_bins=2048, percentile=99.9)
    assert obs.range(8, True)[1] == pytest.approx(ort[1], rel=0.02)


def test_mse_observer_beats_minmax_with_an_outlier() -> None:
    g = torch.Generator().manual_seed(9)
    x = torch.randn(100_000, generator=g)
    x[0] = 60.0
    mm = quant.calibrate_observer([x], quant.MinMaxObserver()).qparams(4, True)
    ms = quant.calibrate_observer([x], quant.MSEObserver()).qparams(4, True)

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


# ---------------------------------------------------------------- issue 13: planted bugs, sources


def test_per_channel_along_axis_1_of_a_square_tensor() -> None:
    """axis=1 on a square tensor must give per-COLUMN scales (a planted `axis=0` is the same
    shape, so only the values tell them apart)."""
    x = torch.tensor([[1.0, -8.0, 0.5], [2.0, 4.0, -0.25], [-3.0, 1.0, 0.125]])
    q1, qp1 = quant.quantize_tensor(x, 8, symmetric=True, axis=1)
    want_scale = x.abs().amax(dim=0) / 127  # one per column
    assert torch.allclose(qp1.scale, want_scale)
    ref = torch.fake_quantize_per_channel_affine(x, qp1.scale, qp1.zero_point.int(), 1, -128, 127)
    assert torch.equal(quant.fake_quantize(x, qp1.scale, qp1.zero_point, -128, 127, axis=1), ref)
    assert torch.equal(quant.dequantize(q1, qp1.scale, qp1.zero_point, axis=1), ref)
    _, qp0 = quant.quantize_tensor(x, 8, symmetric=True, axis=0)
    assert not torch.allclose(qp0.scale, qp1.scale)  # rows differ from columns here
    obs = quant.MinMaxObserver(axis=1).observe(x)
    assert torch.allclose(obs.qparams(8, True).scale, want_scale)


@pytest.mark.parametrize("axis", [0, 1, 2, 3])
def test_per_channel_minmax_matches_pytorch_observer_test(axis: int) -> None:
    """Source: pytorch/pytorch test/quantization/core/test_workflow_module.py,
    TestObserver.test_per_channel_observers (PerChannelMinMaxObserver, quint8,
    per_channel_affine): the reference min/max, scales and zero points for ch_axis 0-3."""
    x = torch.tensor(
        [
            [[[1.0, 2.0], [2.0, 2.5]], [[3.0, 4.0], [4.5, 6.0]]],
            [[[-4.0, -3.0], [5.0, 5.0]], [[6.0, 3.0], [7.0, 8.0]]],
        ]
    )
    ref_min = [[1.0, -4.0], [-4.0, 3.0], [-4.0, 2.0], [-4.0, -3.0]][axis]
    ref_max = [[6.0, 8.0], [5.0, 8.0], [6.0, 8.0], [7.0, 8.0]][axis]
    ref_scale = [
        [0.02352941, 0.04705882],
        [0.03529412, 0.03137255],
        [0.03921569, 0.03137255],
        [0.04313726, 0.04313726],
    ][axis]
    ref_zp = [[0, 85], [113, 0], [102, 0], [93, 70]][axis]
    obs = quant.MinMaxObserver(axis=axis).observe(x)
    assert obs.min_val.tolist() == ref_min and obs.max_val.tolist() == ref_max
    qp = obs.qparams(8, symmetric=False)
    assert torch.allclose(qp.scale, torch.tensor(ref_scale), rtol=1e-5, atol=1e-4)
    assert qp.zero_point.tolist() == ref_zp


def test_per_tensor_minmax_matches_pytorch_observer_test() -> None:
    """Source: pytorch/pytorch test_workflow_module.py, TestObserver.test_per_tensor_observers:
    x = [1, 2, 2, 3, 4, 5, 6], y = [4, 5, 5, 6, 7, 8] -> min 1, max 8; quint8 per_tensor_affine
    widens to [0, 8]: scale 8 / 255, zero point 0."""
    obs = quant.MinMaxObserver()
    obs.observe(torch.tensor([1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    obs.observe(torch.tensor([4.0, 5.0, 5.0, 6.0, 7.0, 8.0]))
    assert obs.range(8, False) == (1.0, 8.0)
    qp = obs.qparams(8, False)
    assert qp.scale == pytest.approx(8.0 / 255, abs=1e-5) and qp.zero_point == 0


def test_observer_axis_outside_the_tensor_is_a_clear_error() -> None:
    """axis=5 on a 2-D tensor used to wrap to axis 1 silently."""
    with pytest.raises(ValueError, match="axis=5"):
        quant.MinMaxObserver(axis=5).observe(torch.ones(3, 4))
    with pytest.raises(ValueError, match="axis"):
        quant.MinMaxObserver(axis=-3).observe(torch.ones(3, 4))
    with pytest.raises(ValueError, match="axis"):
        quant.MinMaxObserver(axis=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="axis"):
        quant.quantize_tensor(torch.ones(3, 4), 8, True, axis=5)
    assert quant.MinMaxObserver(axis=-1).observe(torch.ones(3, 4)).min_val.shape == (4,)


def test_percentile_observer_lands_on_the_exact_quantile_at_a_count_boundary() -> None:
    """99.9 / 100 is stored as 0.9990000000000001 > 999 / 1000: with 1,000 samples a float
    comparison skips the 999th value and returns the max. The rank is an exact integer now."""
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0)).double()
    obs = quant.PercentileObserver(99.9).observe(x)
    _, t = obs.range(8, True)
    exact = float(np.quantile(x.abs().numpy(), 0.999, method="inverted_cdf"))  # 999th of 1000
    assert exact <= t <= exact + obs.width  # the upper edge of the bin holding it
    assert t < float(x.abs().max()) - obs.width  # not the maximum
    torch_q = float(torch.quantile(x.abs(), 0.999))  # linear interpolation, same value here
    assert abs(t - torch_q) <= obs.width + abs(torch_q - exact)
    # the same boundary on the asymmetric path: (100 - p) / 2 = 0.05 % of 2,000 is one value
    y = torch.randn(2000, generator=torch.Generator().manual_seed(1)).double()
    lo, hi = quant.PercentileObserver(99.9).observe(y).range(8, False)
    s = y.sort().values
    assert float(s[-2]) <= hi < float(s[-1])  # the 1,999th value of 2,000, not the max
    assert lo == float(s[0])  # rank ceil(2000 * 0.0005) = 1: the minimum itself


@pytest.mark.parametrize(
    ("batches", "percentile", "expected"),
    [
        ([torch.arange(100.0)], 90.0, 89.0),
        ([torch.arange(100.0)], 80.0, 79.0),
        ([torch.arange(100.0), torch.arange(0, 50, 0.5)], 99.0, 97.0),
    ],
)
def test_percentile_matches_nvidia_calibrator_tests(batches, percentile, expected) -> None:
    """Source: NVIDIA/TensorRT tools/pytorch-quantization/tests/calibrator_test.py,
    TestPercentileCalibrator (test_one_tensor, test_unsigned_one_tensor, test_two_tensor):
    amax within 100 / 1024 of 89, 79 and 97."""
    obs = quant.PercentileObserver(percentile)
    for b in batches:
        obs.observe(b)
    _, t = obs.range(8, True)
    assert abs(t - expected) < 100 / 1024


def test_mse_observer_clips_an_outlier_within_half_a_percent_of_the_max() -> None:
    """Source: NVIDIA/TensorRT tools/pytorch-quantization/tests/calibrator_test.py,
    TestMSECalibrator.test_unsigned_one_tensor: 692 values of 512 and one of 513, unsigned
    8 bits -> amax closer to 512 than to 513. A grid of max/200 has no candidate there and kept
    513 with a mean squared error 55x above the best one."""
    x = torch.ones(11, 7, 3, 3) * 512.0
    x[1, 1, 1, 1] = 513.0
    lo, hi = quant.MSEObserver().observe(x).range(8, False)
    assert lo == 0.0 and abs(hi - 512.0) < abs(hi - 513.0)

    def mse(top: float) -> float:
        qp = quant.compute_qparams(0.0, top, 8, False)
        x_hat = quant.fake_quantize(x, qp.scale, qp.zero_point, qp.qmin, qp.qmax)
        return float((x_hat - x).double().pow(2).mean())

    best = min(mse(t) for t in torch.linspace(500, 513, 1301).tolist())
    assert mse(hi) <= 2 * best < mse(513.0) / 10


def test_mse_observer_matches_nvidia_signed_one_tensor_case() -> None:
    """Source: NVIDIA calibrator_test.py, TestMSECalibrator.test_one_tensor and test_two_tensor
    (signed, i.e. symmetric here): 255s with one 256 -> amax closer to 255."""
    x = torch.ones(11, 7, 3, 3) * 255.0
    x[1, 1, 1, 1] = 256.0
    obs = quant.MSEObserver().observe(x)
    _, t = obs.range(8, True)
    assert abs(t - 255.0) < abs(t - 256.0)
    obs.observe(torch.ones(11, 7, 3, 3) * 255.0)
    _, t = obs.range(8, True)
    assert abs(t - 255.0) < abs(t - 256.0)


def test_entropy_drops_a_single_outlier_like_nvidia_calibrator_test() -> None:
    """Source: NVIDIA calibrator_test.py, TestEntropyCalibrator.test_one_tensor /
    test_unsigned: uniform (0, 1) values and one outlier of 10 -> amax < 1.1."""
    x = torch.rand(11, 7, 3, 3, generator=torch.Generator().manual_seed(12345))
    x[1, 1, 1, 1] = 10.0
    obs = quant.EntropyObserver().observe(x)
    assert obs.range(8, True)[1] < 1.1
    assert obs.range(8, False)[1] < 1.1


def _kl_by_hand(hist: list[float], n: int) -> int:
    """An independent, plain-Python KL search (NVIDIA grouping: bin j -> group j * n // i)."""
    best_i, best = -1, math.inf
    for i in range(n, len(hist) + 1):
        p = list(hist[:i])
        p[-1] += sum(hist[i:])
        q = [0.0] * i
        for g in range(n):
            members = [j for j in range(i) if j * n // i == g]
            nonzero = [j for j in members if hist[j] > 0]
            for j in nonzero:
                q[j] = sum(hist[k] for k in members) / len(nonzero)
        sp, sq = sum(p), sum(q)
        kl = 0.0
        for pj, qj in zip(p, q, strict=True):
            if pj > 0:
                kl += pj / sp * math.log((pj / sp) / max(qj / sq, 1e-10))
        if kl < best:
            best_i, best = i, kl
    return best_i


def test_kl_threshold_exact_bin_matches_an_independent_implementation() -> None:
    """The exact bin, not a loose bound: a planted change of the grouping, the outlier
    folding or the loop range moves the answer on these histograms."""
    g = torch.Generator().manual_seed(3)
    cases = []
    for n_bins, levels, scale in ((96, 8, 20.0), (120, 16, 30.0), (200, 8, 15.0)):
        c = torch.arange(n_bins, dtype=torch.float64) + 0.5
        h = torch.round(1000 * torch.exp(-c / scale)) + torch.randint(0, 3, (n_bins,), generator=g)
        h[torch.randint(0, n_bins, (n_bins // 8,), generator=g)] = 0  # some empty bins
        h[-1] += 5  # a few outliers at the top
        cases.append((h, levels))
    answers = []
    for h, levels in cases:
        got = quant.kl_threshold(h, levels)
        assert got == _kl_by_hand(h.tolist(), levels)
        answers.append(got)
    assert len(set(answers)) > 1 and all(
        levels < a for a, (_, levels) in zip(answers, cases, strict=True)
    )


def test_kl_threshold_rejects_histograms_with_nan_or_negative_counts() -> None:
    h = torch.ones(64)
    for bad in (math.nan, -1.0, math.inf):
        hb = h.clone()
        hb[5] = bad
        with pytest.raises(ValueError, match="hist"):
            quant.kl_threshold(hb, 8)
    with pytest.raises(ValueError, match="dimensions"):
        quant.kl_threshold(torch.ones(4, 16), 8)
    with pytest.raises(ValueError, match="num_quantized_bins"):
        quant.kl_threshold(h, 8.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("m", "tflite_q", "tflite_shift"),
    [
        (0.25, 1073741824, -1),
        (0.5 - 5e-9, 2147483627, -1),
        (0.5 - 1e-10, 1073741824, 0),
        (0.5, 1073741824, 0),
        (0.75, 1610612736, 0),
        (1 - 1e-9, 2147483646, 0),
        (1 + 1e-11, 1073741824, 1),
        (1.25, 1342177280, 1),
        (1.75, 1879048192, 1),
        (2 - 1e-9, 2147483647, 1),
        (2 - 1e-11, 1073741824, 2),
        (4.0, 1073741824, 3),
    ],
)
def test_quantize_multiplier_matches_tflite(m: float, tflite_q: int, tflite_shift: int) -> None:
    """Source: tensorflow/tensorflow tensorflow/lite/kernels/internal/quantization_util_test.cc
    (QuantizeMultiplierSmallerThanOneExp, QuantizeMultiplierGreaterThanOne, QuantizeMultiplier):
    TFLite writes m = q / 2^31 * 2^shift; ours is m = q / 2^(31 - shift)."""
    assert quant.quantize_multiplier(m) == (tflite_q, 31 - tflite_shift)


@pytest.mark.parametrize(
    ("x", "m", "expected"),
    [
        (10000, 0.00097656, 10),
        (-10000, 0.00097656, -10),
        (-(2**31), 0.00001, -21475),
        (2**31 - 1, 0.00001, 21475),
    ],
)
def test_rounding_shift_matches_tflite_multiply_by_quantized_multiplier(x, m, expected) -> None:
    """Source: TFLite quantization_util_test.cc, MultiplyByQuantizedMultiplierInt32."""
    mult, shift = quant.quantize_multiplier(m)
    out = quant.rounding_shift(torch.tensor([x]), torch.tensor([mult]), torch.tensor([shift]))
    assert int(out) == expected


def test_rounding_shift_refuses_products_that_overflow_int64() -> None:
    """TFLite's 64-bit case x = 2^47 - 1, m = 1e-5 (1407385600 there): acc * multiplier is
    about 2^77, which int64 cannot hold - raise instead of wrapping around."""
    mult, shift = quant.quantize_multiplier(0.00001)
    acc = torch.tensor([2**47 - 1], dtype=torch.int64)
    with pytest.raises(ValueError, match="overflow"):
        quant.rounding_shift(acc, torch.tensor([mult]), torch.tensor([shift]))
    with pytest.raises(ValueError, match="shift"):
        quant.rounding_shift(torch.tensor([5]), torch.tensor([mult]), torch.tensor([0]))
    with pytest.raises(ValueError, match="integer"):
        quant.rounding_shift(torch.tensor([5.0]), torch.tensor([mult]), torch.tensor([31]))
    # an int32 -2^31 (whose abs() wraps in int32) is seen as 2^31
    i32_min = torch.tensor([-(2**31)], dtype=torch.int32)
    assert int(quant.rounding_shift(i32_min, torch.tensor([mult]), torch.tensor([shift]))) == -21475
    # the largest int32 accumulator with the largest multiplier is fine and exact
    big = quant.rounding_shift(
        torch.tensor([2**31 - 1]), torch.tensor([2**31 - 1]), torch.tensor([62])
    )
    assert int(big) == ((2**31 - 1) ** 2 + 2**61) >> 62


def test_histogram_observers_refuse_huge_sizes_before_allocating() -> None:
    with pytest.raises(ValueError, match="bins"):
        quant.PercentileObserver(99.9, bins=2**30)
    with pytest.raises(ValueError, match="grid"):
        quant.MSEObserver(grid=10**9)


# ---------------------------------------------------------------- one STE fake-quant, one weight scale
# quant.STEFakeQuant is the course's only straight-through fake-quant (qat's QuantLayer uses it);
# quant.symmetric_scale the only max|w| / 127 (qat.weight_qparams, generate.Int8Linear use it).


def test_ste_gradient_is_one_inside_the_range_and_zero_outside() -> None:
    # S = 0.5, Z = 0, codes [-4, 3]: x/S rounds into the range for x in [-2.25, 1.75]
    # (-4.5 rounds half-to-even to -4, inside; 3.5 to 4, outside)
    x = torch.tensor([-3.0, -2.25, -2.0, 0.0, 0.3, 1.5, 1.75, 1.76, 4.0], requires_grad=True)
    y = quant.fake_quantize(x, 0.5, 0, -4, 3)
    y.backward(torch.full_like(x, 2.0))
    want = torch.tensor([0.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0])
    assert torch.equal(x.grad, want)
    assert torch.equal(y.detach(), torch.tensor([-2.0, -2.0, -2.0, 0.0, 0.5, 1.5, 1.5, 1.5, 1.5]))


def test_nan_maps_to_qmin_forward_and_gets_zero_gradient() -> None:
    """The one NaN rule: x = NaN -> code qmin, value S (qmin - Z), gradient 0 (as torch)."""
    x = torch.tensor([math.nan, 0.4, math.nan], requires_grad=True)
    y = quant.fake_quantize(x, 0.1, 3, 0, 255)
    y.sum().backward()
    assert torch.equal(y.detach(), torch.tensor([-0.3, 0.4, -0.3]))
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 0.0]))
    assert torch.equal(quant.quantize(x.detach(), 0.1, 3, 0, 255), torch.tensor([0, 7, 0]).int())
    ref = torch.fake_quantize_per_tensor_affine(x.detach(), 0.1, 3, 0, 255)
    assert torch.equal(y.detach(), ref)
    w = torch.tensor([[math.nan, 1.0], [2.0, math.nan]], requires_grad=True)
    s, z = torch.tensor([0.5, 0.25]), torch.tensor([1, -2])
    yc = quant.fake_quantize(w, s, z, -8, 7, axis=0)
    yc.sum().backward()
    assert torch.equal(yc.detach(), torch.tensor([[-4.5, 1.0], [2.0, -1.5]]))
    assert torch.equal(w.grad, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    ref = torch.fake_quantize_per_channel_affine(w.detach(), s, z.int(), 0, -8, 7)
    assert torch.equal(yc.detach(), ref)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_per_channel_fake_quantize_equals_a_loop_over_channels(axis: int, dtype) -> None:
    g = torch.Generator().manual_seed(axis + 7)
    x = (torch.randn(5, 6, 3, generator=g) * 4).to(dtype).requires_grad_(True)
    c = x.shape[axis]
    scale = torch.rand(c, generator=g) * 0.2 + 0.02
    zp = torch.randint(-5, 5, (c,), generator=g)
    up = torch.randn(x.shape, generator=g).to(dtype)
    y = quant.fake_quantize(x, scale, zp, -16, 15, axis=axis)
    y.backward(up)
    q = quant.quantize(x.detach(), scale, zp, -16, 15, axis=axis)
    for i in range(c):
        xi = x.detach().select(axis, i).clone().requires_grad_(True)
        yi = quant.fake_quantize(xi, float(scale[i]), int(zp[i]), -16, 15)
        yi.backward(up.select(axis, i))
        qi = quant.quantize(xi.detach(), float(scale[i]), int(zp[i]), -16, 15)
        assert torch.equal(q.select(axis, i), qi)
        if dtype == torch.float64:  # torch: S (q - Z) in float32 per tensor, float64 per channel
            torch.testing.assert_close(y.detach().select(axis, i), yi.detach(), atol=0, rtol=2**-23)
        else:
            assert torch.equal(y.detach().select(axis, i), yi.detach())
        assert torch.equal(x.grad.select(axis, i), xi.grad)


def test_symmetric_scale_is_max_abs_over_qmax_per_tensor_and_per_axis() -> None:
    w = torch.tensor([[1.0, -8.0, 0.5], [2.0, 4.0, -0.25], [0.0, 0.0, 0.0]])
    assert torch.equal(quant.symmetric_scale(w), torch.tensor(8.0 / 127))
    assert torch.equal(quant.symmetric_scale(w, 8, axis=0)[:2], torch.tensor([8.0, 4.0]) / 127)
    assert quant.symmetric_scale(w, 8, axis=0)[2] == torch.finfo(torch.float32).eps  # zero row
    assert torch.equal(quant.symmetric_scale(w, 4, axis=1), torch.tensor([2.0, 8.0, 0.5]) / 7)
    assert torch.equal(quant.symmetric_scale(w, 8, axis=-1), quant.symmetric_scale(w, 8, axis=1))
    conv = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    got = quant.symmetric_scale(conv, 8, axis=0)
    assert got.shape == (6,) and got.dtype == torch.float32
    # the same S as compute_qparams(symmetric=True) on the per-channel min/max
    ref = quant.compute_qparams(conv.amin((1, 2, 3)), conv.amax((1, 2, 3)), 8, True).scale
    assert torch.equal(got, ref)
    assert torch.equal(got, conv.abs().flatten(1).amax(1) / 127)  # generate's old formula
    for bad in (2, -3, 1.0, True):
        with pytest.raises(ValueError, match="axis"):
            quant.symmetric_scale(w, 8, axis=bad)
    with pytest.raises(ValueError, match="bits"):
        quant.symmetric_scale(w, 1)


def test_calibrate_observer_feeds_every_batch() -> None:
    obs = quant.calibrate_observer(
        [torch.tensor([1.0, -2.0]), torch.tensor([5.0])], quant.MinMaxObserver()
    )
    assert obs.range() == (-2.0, 5.0)
    assert not hasattr(quant, "calibrate")  # one name per thing: qat.calibrate_activations


# ---------------------------------------------------------------- issue 18: the unguarded classes
# Each call below ended in a raw torch/numpy/Python traceback, a silent result or a search that
# runs for minutes before the check; now each raises ValueError naming the parameter.
_X = torch.tensor([0.5, -1.0, 2.0])
_QP = quant.QParams(0.1, 0, -128, 127)
_BN, _LIN = torch.nn.BatchNorm2d(2), torch.nn.Linear(8, 3)
_BAD = {
    # empty tensors and empty lists
    "minmax observer, empty": (lambda: quant.MinMaxObserver().observe(torch.empty(0)), "empty"),
    "per-channel observer, empty": (
        lambda: quant.MinMaxObserver(axis=0).observe(torch.empty(3, 0)),
        "empty",
    ),
    "calibrate, no batches": (lambda: quant.calibrate_observer([], quant.MSEObserver()), "batches"),
    "calibrate, one tensor": (lambda: quant.calibrate_observer(_X, quant.MinMaxObserver()), "[x]"),
    "calibrate, not an observer": (lambda: quant.calibrate_observer([_X], "minmax"), "observer"),
    "quantize_tensor, empty": (lambda: quant.quantize_tensor(torch.empty(0)), "x is empty"),
    "sqnr, empty": (lambda: quant.sqnr_db(torch.empty(0), torch.empty(0)), "x is empty"),
    "sqnr, NaN": (lambda: quant.sqnr_db(torch.tensor([math.nan]), torch.ones(1)), "x contains"),
    "sqnr, shapes": (lambda: quant.sqnr_db(torch.ones(3), torch.ones(4)), "same shape"),
    "compute_qparams, empty": (
        lambda: quant.compute_qparams(torch.empty(0), torch.empty(0)),
        "xmin is empty",
    ),
    "compute_qparams, a list": (lambda: quant.compute_qparams([0.0, -1.0], [1.0, 1.0]), "xmin"),
    "pow2, empty": (lambda: quant.pow2_quantize(torch.empty(0)), "x is empty"),
    "rounding_shift, empty": (
        lambda: quant.rounding_shift(torch.empty(0, dtype=torch.int64), _IONE, _IONE),
        "acc is empty",
    ),
    "ort_range, no batches": (lambda: quant.ort_range([]), "batches"),
    # NaN or inf reaching a scale or a multiplier
    "multiplier NaN": (lambda: quant.quantize_multiplier(math.nan), "m must be"),
    "multiplier inf": (lambda: quant.quantize_multiplier(math.inf), "m must be"),
    "multiplier too large": (lambda: quant.quantize_multiplier(2.0**40), "multiplier"),
    "multiplier a bool": (lambda: quant.quantize_multiplier(True), "m must be"),
    "scale NaN": (lambda: quant.quantize(_X, math.nan, 0, 0, 255), "scale"),
    "scale inf": (lambda: quant.fake_quantize(_X, math.inf, 0, 0, 255), "scale"),
    "symmetric_scale of inf": (
        lambda: quant.symmetric_scale(torch.tensor([1.0, math.inf])),
        "x contains NaN or inf",
    ),
    "quantize_tensor of NaN": (
        lambda: quant.quantize_tensor(torch.tensor([math.nan])),
        "x contains",
    ),
    "pow2 of inf": (lambda: quant.pow2_quantize(torch.tensor([math.inf])), "x contains"),
    "int layer, NaN scale": (
        lambda: quant.int_linear_prepare(_LIN, quant.QParams(math.nan, 0, 0, 255), _QP),
        "x_qparams.scale",
    ),
    "pow2 error, amax NaN": (lambda: quant.pow2_rounding_error(4, math.nan, _X), "amax"),
    "pow2 error, amax < 0": (lambda: quant.pow2_rounding_error(4, -1.0, _X), "amax"),
    # a percentile outside [0, 100]
    "percentile 150": (lambda: quant.PercentileObserver(150), "percentile"),
    "percentile -5": (lambda: quant.PercentileObserver(-5), "percentile"),
    "percentile NaN": (lambda: quant.PercentileObserver(math.nan), "percentile"),
    "ORT percentile 150": (
        lambda: quant.ort_range([_X], "percentile", percentile=150.0),
        "percentile",
    ),
    # absurd bins / grid / candidate counts
    "entropy bins 2**16": (lambda: quant.EntropyObserver(bins=2**16), "bins"),
    "kl hist 2**15 bins": (lambda: quant.kl_threshold(torch.ones(2**15), 128), "hist"),
    "MSE candidates < 0": (lambda: quant.MSEObserver(max_data_candidates=-1), "max_data_candid"),
    "ORT num_bins 2**30": (lambda: quant.ort_range([_X], "entropy", num_bins=2**30), "num_bins"),
    "ORT method": (lambda: quant.ort_range([_X], "kl"), "method"),
    "fixed point 20 bits": (lambda: quant.fixed_point(_X, 10, 9), "int_bits"),
    # a bool where an int is meant
    "qmin True": (lambda: quant.quantize(_X, 0.1, 0, True, 255), "qmin"),
    "int_bits True": (lambda: quant.fixed_point(_X, True, 2), "int_bits"),
    "max_exponent True": (lambda: quant.pow2_quantize(_X, 4, max_exponent=True), "max_exponent"),
    "channel True": (lambda: quant.inject_outlier_channel(_BN, _LIN, True, 2.0), "channel"),
    "grid True": (lambda: quant.MSEObserver(grid=True), "grid"),
    "bins True": (lambda: quant.PercentileObserver(99.0, bins=True), "bins"),
    "observer axis True": (lambda: quant.MinMaxObserver(axis=True), "axis"),
    "bits True": (lambda: quant.fake_quantize_weights(_LIN, True), "bits"),
    # mismatched shapes in the low-level steps
    "rounding_shift shapes": (
        lambda: quant.rounding_shift(torch.ones(2, 3, dtype=torch.int64), _IONE4, _IONE4),
        "broadcast",
    ),
    "observer channels change": (
        lambda: quant.MinMaxObserver(axis=0).observe(torch.ones(3, 2)).observe(torch.ones(4, 2)),
        "channels",
    ),
    # a non-model where a module is expected
    "weights of a string": (lambda: quant.fake_quantize_weights("model.pt", 8), "model"),
    "int layer of a dict": (lambda: quant.int_linear_prepare({}, _QP, _QP), "linear"),
    "int_linear of a tuple": (
        lambda: quant.int_linear(torch.zeros(1, 8, dtype=torch.int32), (1, 2)),
        "layer",
    ),
    "outlier of a Linear": (lambda: quant.inject_outlier_channel(_LIN, _LIN, 0, 2.0), "bn"),
    "int_linear, empty": (
        lambda: quant.int_linear(torch.zeros(0, 8, dtype=torch.int32), _int_layer()),
        "q_x is empty",
    ),
}
_IONE, _IONE4 = torch.tensor([3]), torch.full((4,), 3)


def _int_layer() -> quant.IntLinear:
    return quant.int_linear_prepare(_LIN, _QP, _QP)


@pytest.mark.parametrize("case", list(_BAD), ids=list(_BAD))
def test_issue18_bad_input_names_the_parameter(case: str) -> None:
    call, match = _BAD[case]
    with pytest.raises(ValueError, match=match.replace("[", r"\[").replace("]", r"\]")):
        call()


def test_issue18_guards_leave_good_input_alone() -> None:
    """The new checks reject only bad input: the edge values next to each one still work."""
    assert quant.quantize_multiplier(2.0**-32) == (2**30, 62)  # the smallest shift-62 value
    assert quant.PercentileObserver(100).observe(_X).range(8, True) == (-2.0, 2.0)
    assert quant.fixed_point(_X, 0, 15).shape == _X.shape  # 16 bits: the widest
    assert quant.EntropyObserver(bins=2**14).bins == 2**14
    obs = quant.calibrate_observer(iter([_X, _X * 2]), quant.MinMaxObserver())  # any iterable
    assert obs.range() == (-2.0, 4.0)
    assert math.isinf(quant.sqnr_db(_X, _X.clone()))


# ---------------------------------------------------------------- issue 19: outlier equalisation


def _bn_relu_linear(seed: int) -> tuple[torch.nn.Sequential, torch.Tensor]:
    """conv -> BN -> ReLU -> Flatten -> Linear in eval, random BN statistics, and a batch."""
    g = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 6, 3, padding=1),
        torch.nn.BatchNorm2d(6),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * 4 * 4, 5),
    ).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        net[1].running_mean.copy_(torch.randn(6, generator=g))
        net[1].running_var.copy_(torch.rand(6, generator=g) + 0.5)
    return net, torch.randn(256, 2, 4, 4, generator=g)


def _channel_max(net: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net[:-1](x).reshape(len(x), 6, -1).amax(dim=(0, 2))  # (C,)


@pytest.mark.parametrize("seed", range(4))
def test_inject_outlier_channel_keeps_the_function_and_grows_one_channel(seed: int) -> None:
    net, x = _bn_relu_linear(seed)
    with torch.no_grad():
        before, r0 = net(x), _channel_max(net, x)
    quant.inject_outlier_channel(net[1], net[4], channel=2, factor=30.0)
    with torch.no_grad():
        after, r1 = net(x), _channel_max(net, x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(r1[2], 30 * r0[2])
    assert torch.equal(r1[torch.arange(6) != 2], r0[torch.arange(6) != 2])


@pytest.mark.parametrize("seed", range(4))
def test_equalize_channels_is_exact_bit_for_bit_and_evens_the_ranges(seed: int) -> None:
    net, x = _bn_relu_linear(seed)
    quant.inject_outlier_channel(net[1], net[4], channel=2, factor=30.0)
    r = _channel_max(net, x)
    with torch.no_grad():
        before = net(x)
    s = quant.equalize_channels(net[1], net[4], r)
    with torch.no_grad():
        after = net(x)
    assert torch.equal(after, before)  # powers of two: the same logits, every bit
    assert s.shape == (6,) and s.dtype == torch.float32
    assert torch.equal(s, torch.exp2(torch.log2(s).round()))  # every s_j a power of two
    r_after = _channel_max(net, x)
    assert torch.equal(r_after * s, r)  # channel j divided by s_j, exactly
    live = r_after > 0
    spread = r_after[live] / r[r > 0].median()
    assert float(spread.max()) <= 2**0.5 and float(spread.min()) >= 2**-0.5
    assert int(s.argmax()) == 2 and float(s[2]) > 1  # the outlier folded into its weight columns


def test_equalize_channels_leaves_a_dead_channel_and_even_ranges_alone() -> None:
    net, x = _bn_relu_linear(0)
    r = torch.tensor([1.0, 1.2, 0.0, 0.9, 1.1, 1.0])
    w = net[4].weight.detach().clone()
    s = quant.equalize_channels(net[1], net[4], r)
    assert torch.equal(s, torch.ones(6))  # within sqrt(2) of the median, or never positive
    assert torch.equal(net[4].weight, w)
    s = quant.equalize_channels(net[1], net[4], torch.tensor([1.0, 1.0, 1.0, 100.0, 1.0, 0.3]))
    assert s.tolist() == [1.0, 1.0, 1.0, 128.0, 1.0, 0.25]  # log2: 6.64 -> 7, -1.74 -> -2


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.ones(5), "6 finite values"),
        (torch.tensor([1.0, 1.0, -1.0, 1.0, 1.0, 1.0]), ">= 0"),
        (torch.tensor([1.0, math.nan, 1.0, 1.0, 1.0, 1.0]), "finite"),
        (torch.ones(2, 3), "dimensions"),
        ([1.0] * 6, "torch.Tensor"),
    ],
)
def test_equalize_channels_names_bad_channel_max(bad: object, match: str) -> None:
    net, _ = _bn_relu_linear(0)
    with pytest.raises(ValueError, match=match):
        quant.equalize_channels(net[1], net[4], bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bn"):
        quant.equalize_channels(net[4], net[4], torch.ones(6))  # type: ignore[arg-type]
