"""labkit's calibration against ONNX Runtime's own quantisation tests.

Each test names the ONNX Runtime test it ports: the same inputs and the expected values the
source asserts (or computes the way the source computes them), adapted to labkit's API.
Where ONNX Runtime and labkit differ on purpose, the test shows the difference and says why.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labkit import deploy, quant
from labkit.core import onnx as lkonnx

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator  # noqa: E402

EPS32 = float(np.finfo(np.float32).eps)


# ------------------------------------------------- test_quant_util.py, test_compute_scale_zp


@pytest.mark.parametrize(
    ("rmin", "rmax", "symmetric", "ort_zp", "ort_scale"),
    [
        (-1.0, 2.0, True, 0, 2.0 / 127),  # compute_scale_zp(-1, 2, -127, 127, symmetric=True)
        (-1.0, 2.0, False, 85, 3.0 / 255),  # compute_scale_zp(-1, 2, 0, 255, symmetric=False)
    ],
)
def test_compute_qparams_matches_ort_compute_scale_zp(rmin, rmax, symmetric, ort_zp, ort_scale):
    """Source: microsoft/onnxruntime onnxruntime/test/python/quantization/test_quant_util.py,
    TestQuantUtil.test_compute_scale_zp.

    Adapted: ORT's (qmin, qmax) = (-127, 127) symmetric and (0, 255) asymmetric are labkit's
    compute_qparams(bits=8, symmetric=True / False) (labkit's signed range is [-128, 127] but
    its symmetric scale uses 127 levels per side, as ORT's). The scale is compared within
    float32 rounding because labkit stores it as float32. Not ported: the asymmetric signed
    range (zp -42) and the symmetric unsigned range (zp 128), which compute_qparams does not
    offer, and ``min_rrange``, which labkit has no option for.
    """
    qp = quant.compute_qparams(rmin, rmax, 8, symmetric)
    assert qp.zero_point == ort_zp
    assert qp.scale == pytest.approx(ort_scale, rel=1e-7)


_TINY = float(np.float32(np.finfo(np.float32).tiny * 0.1))


@pytest.mark.parametrize(
    ("lo", "hi", "symmetric"),
    [(0.0, 0.0, True), (-_TINY, _TINY, True), (-_TINY, 0.0, False)],
)
def test_zero_range_keeps_ort_zero_point_with_a_smallest_scale(lo, hi, symmetric) -> None:
    """Source: microsoft/onnxruntime onnxruntime/test/python/quantization/test_quant_util.py,
    TestQuantUtil.test_compute_scale_zp: compute_scale_zp(0, 0, ...) and
    compute_scale_zp(-tiny_float, tiny_float / 0.0, 0, 255, ...) == [0, 1.0].

    The difference, on purpose: for an (almost) empty range ORT substitutes scale 1.0; labkit
    keeps its documented floor, float32 eps, so the grid is as fine as float32 allows. Both give
    ORT's zero point 0 (labkit: the code for 0.0) and both represent 0.0 exactly.
    """
    qp = quant.compute_qparams(lo, hi, 8, symmetric)
    assert qp.zero_point == 0
    assert qp.scale == EPS32  # ORT: 1.0
    q = quant.quantize(torch.zeros(3), qp.scale, qp.zero_point, qp.qmin, qp.qmax)
    assert quant.dequantize(q, qp.scale, qp.zero_point).tolist() == [0.0, 0.0, 0.0]


def test_reversed_range_is_an_error_where_ort_returns_scale_one() -> None:
    """Source: microsoft/onnxruntime onnxruntime/test/python/quantization/test_quant_util.py,
    TestQuantUtil.test_compute_scale_zp: compute_scale_zp(1.0, -1.0, ...) == [0, 1.0].

    The difference, on purpose: ORT clips rmin > 0 and rmax < 0 to 0 and silently returns a
    grid for an empty range. labkit treats xmin > xmax as a caller's mistake (swapped arguments)
    and says so, naming both values.
    """
    with pytest.raises(ValueError, match="xmin <= xmax"):
        quant.compute_qparams(1.0, -1.0, 8, True)
    with pytest.raises(ValueError, match="xmin <= xmax"):
        quant.compute_qparams(1.0, -1.0, 8, False)


# ------------------------------ test_calibration.py, ranges over several samples (MinMax)

# TestCalibrateMinMaxCalibrator.test_compute_data_preserves_ranges_with_limited_outputs
_SAMPLES = np.array([[[-9, 1]], [[2, 12]], [[-4, 7]], [[6, -3]], [[0, 3]]], dtype=np.float32)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("sample_count", [1, 2, 3, 4, 5])
def test_minmax_observer_matches_ort_ranges_over_samples(sample_count, per_channel, symmetric):
    """Source: microsoft/onnxruntime onnxruntime/test/python/quantization/test_calibration.py,
    TestCalibrateMinMaxCalibrator.test_compute_data_preserves_ranges_with_limited_outputs.

    Same samples ([-9, 1], [2, 12], [-4, 7], [6, -3], [0, 3], each of shape (1, 2), the first
    ``sample_count`` of them), same expected values computed as the source computes them
    (np.nanmin / np.nanmax over the samples, per column when per_channel; symmetric:
    (-max |.|, max |.|)). Adapted: the samples go one by one through labkit's MinMaxObserver
    (axis=1 = ORT's per-channel axis of a (1, 2) tensor) instead of an ONNX Identity model;
    symmetric per-channel ranges are read back from the symmetric scales (S * 127). The
    ``max_intermediate_outputs`` and opset variations only concern ORT's graph plumbing.
    """
    samples = _SAMPLES[:sample_count]
    axes = (0, 1) if per_channel else (0, 1, 2)
    expected_min = np.nanmin(samples, axis=axes).reshape(-1)
    expected_max = np.nanmax(samples, axis=axes).reshape(-1)
    if symmetric:
        expected_max = np.maximum(np.abs(expected_min), np.abs(expected_max))
        expected_min = -expected_max

    obs = quant.MinMaxObserver(axis=1 if per_channel else None)
    for s in samples:
        obs.observe(torch.from_numpy(s))
    if not per_channel:
        assert obs.range(8, symmetric) == (float(expected_min[0]), float(expected_max[0]))
        return
    if symmetric:
        qp = obs.qparams(8, symmetric=True)
        np.testing.assert_allclose(qp.scale.double().numpy() * 127, expected_max, rtol=1e-6)
        assert qp.zero_point.tolist() == [0, 0]
    else:
        assert obs.min_val.tolist() == expected_min.tolist()
        assert obs.max_val.tolist() == expected_max.tolist()


@pytest.mark.parametrize("nan_first", [False, True])
def test_nan_samples_are_refused_where_ort_skips_them(nan_first: bool) -> None:
    """Source: microsoft/onnxruntime onnxruntime/test/python/quantization/test_calibration.py,
    TestCalibrateMinMaxCalibrator.test_compute_data_preserves_ranges_with_limited_outputs,
    the ``nan_first`` cases (3 samples, the first or last two all NaN; ORT's range is
    np.nanmin / np.nanmax of the rest).

    The difference, on purpose: ORT ignores NaN samples; labkit's observers stop at the first
    NaN with an error that says why (a NaN activation is a bug upstream that a range would hide).
    The finite samples alone give ORT's expected range.
    """
    samples = _SAMPLES[:3].copy()
    if nan_first:
        samples[:2] = np.nan
    else:
        samples[-2:] = np.nan
    finite = [s for s in samples if np.isfinite(s).all()]
    obs = quant.MinMaxObserver()
    with pytest.raises(ValueError, match="NaN"):
        for s in samples:
            obs.observe(torch.from_numpy(s))
    obs = quant.MinMaxObserver()
    for s in finite:
        obs.observe(torch.from_numpy(s))
    assert obs.range(8, False) == (float(np.nanmin(samples)), float(np.nanmax(samples)))


# --------------------------- test_calibration.py, a small conv graph and the data reader


def _compute_data_model(path: str, opset: int, rng: np.random.Generator) -> None:
    """The graph of ``construct_test_compute_data_model`` (augmented=False):
    input -> Relu(X1) -> Conv(X2) -> Relu(X3) -> Conv(X4); X1 -> Conv(X5); X4 + X5 -> X6."""

    def init(shape: list[int], name: str) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["input"], ["X1"], name="Relu1"),
            helper.make_node("Conv", ["X1", "W1", "B1"], ["X2"], name="Conv1"),
            helper.make_node("Relu", ["X2"], ["X3"], name="Relu2"),
            helper.make_node("Conv", ["X3", "W3", "B3"], ["X4"], name="Conv2"),
            helper.make_node("Conv", ["X1", "W5", "B5"], ["X5"], name="Conv3"),
            helper.make_node("Add", ["X4", "X5"], ["X6"], name="Add"),
        ],
        "test_graph_4",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 1, 3])],
        [helper.make_tensor_value_info("X6", TensorProto.FLOAT, [1, 3, 1, 3])],
        [
            init([3, 3, 1, 1], "W1"),
            init([3], "B1"),
            init([3, 3, 1, 1], "W3"),
            init([3], "B3"),
            init([3, 3, 1, 1], "W5"),
            init([3], "B5"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, path)


def _intermediates(path: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """X1 ... X6 for one input, from a session whose outputs are all six tensors."""
    model = onnx.load(path)
    del model.graph.output[:]
    for name in ("X1", "X2", "X3", "X4", "X5", "X6"):
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"input": x}), strict=True))


@pytest.mark.parametrize("per_channel", [False, True])
def test_calibration_reader_feeds_ort_minmax_like_the_observer(tmp_path, per_channel) -> None:
    """Source: microsoft/onnxruntime onnxruntime/test/python/quantization/test_calibration.py,
    TestCalibrateMinMaxCalibrator.test_compute_data (per tensor, opset 13) and
    test_compute_data_per_channel (per channel, opset 18).

    Same graph, same data shape (4 samples of normal(0, 0.33), shape (1, 3, 1, 3), seeded
    here) and the same expectation: the calibrator's range of every tensor X1 ... X6 equals the
    min / max of that tensor over the samples, per channel (axis 1) when per_channel. Adapted:
    the samples come from labkit's ``calibration_reader`` (batch_size=1), the reference min /
    max from labkit's MinMaxObserver (axis=1 per channel) fed the session's tensors, after a
    ``rewind()`` of the same reader, as the source rewinds its reader.
    """
    rng = np.random.default_rng(0)
    path = str(tmp_path / "model.onnx")
    _compute_data_model(path, 18 if per_channel else 13, rng)
    x = torch.from_numpy(rng.normal(0, 0.33, (4, 3, 1, 3)).astype(np.float32))
    reader = lkonnx.calibration_reader(x, input_name="input", batch_size=1)
    cal = create_calibrator(
        path,
        augmented_model_path=str(tmp_path / "augmented.onnx"),
        extra_options={"per_channel": per_channel},
    )
    cal.collect_data(reader)
    ranges = cal.compute_data()

    reader.rewind()
    observers = {n: quant.MinMaxObserver(axis=1 if per_channel else None) for n in ranges}
    batches = 0
    while (feed := reader.get_next()) is not None:
        batches += 1
        for name, value in _intermediates(path, feed["input"]).items():
            observers[name].observe(torch.from_numpy(value))
    assert batches == 4
    for name in ("X1", "X2", "X3", "X4", "X5", "X6"):
        lo, hi = ranges[name].range_value
        obs = observers[name]
        assert np.asarray(lo, np.float32).reshape(-1).tolist() == obs.min_val.float().tolist()
        assert np.asarray(hi, np.float32).reshape(-1).tolist() == obs.max_val.float().tolist()


def test_histogram_calibrators_run_through_labkit_reader_and_quantizer(tmp_path) -> None:
    """Source: microsoft/onnxruntime onnxruntime/test/python/quantization/test_calibration.py,
    TestCalibrateMinMaxCalibrator.test_histogram_calibrators_run.

    Same graph (not augmented), same 4 samples of shape (1, 3, 1, 3); for Percentile, Entropy
    and Distribution the calibrator returns a range for every tensor of the graph (the source's
    only assertion), the reader being rewound between methods. Adapted: the reader is labkit's
    ``calibration_reader``; and labkit's ``quantize_static_int8`` with each of its methods
    (minmax, entropy, percentile) turns the same model into a QDQ model that runs and stays
    close to the float one.
    """
    rng = np.random.default_rng(1)
    path = str(tmp_path / "model.onnx")
    _compute_data_model(path, 13, rng)
    x = torch.from_numpy(rng.normal(0, 0.33, (4, 3, 1, 3)).astype(np.float32))
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    n_tensors = len(model.graph.value_info) + len(model.graph.input) + len(model.graph.output)

    reader = lkonnx.calibration_reader(x, input_name="input", batch_size=1)
    for method in (
        CalibrationMethod.Percentile,
        CalibrationMethod.Entropy,
        CalibrationMethod.Distribution,
    ):
        reader.rewind()
        cal = create_calibrator(
            path,
            calibrate_method=method,
            augmented_model_path=str(tmp_path / f"augmented_{method}.onnx"),
        )
        cal.collect_data(reader)
        assert len(cal.compute_data().items()) == n_tensors, method

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = sess.run(None, {"input": x[:1].numpy()})[0]
    for method in ("minmax", "entropy", "percentile"):
        out = lkonnx.quantize_static_int8(
            path,
            tmp_path / f"int8_{method}.onnx",
            x,
            method=method,
            input_name="input",
            reader=lkonnx.calibration_reader(x, "input", batch_size=1),  # the graph's batch is 1
        )
        q = onnx.load(str(out))
        assert any(n.op_type == "QuantizeLinear" for n in q.graph.node), method
        got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
            None, {"input": x[:1].numpy()}
        )[0]
        assert np.abs(got - want).max() < 0.05 * np.abs(want).max() + 0.02, method


# ----------------------------- calibrate.py, HistogramCollector.compute_percentile


def test_percentile_exact_where_ort_lands_past_the_quantile_at_a_count_boundary() -> None:
    """Source: microsoft/onnxruntime onnxruntime/python/tools/quantization/calibrate.py,
    HistogramCollector.compute_percentile (the Percentile calibrator that test_calibration.py's
    test_histogram_calibrators_run runs without checking values).

    A known blind spot of the reference, shown rather than copied: ORT compares a float CDF
    with percentile / 100, and 99.9 / 100 is stored as 0.9990000000000001 > 999 / 1000. With
    999 values of 1.0 and one outlier of 4.0 the 99.9th percentile is 1.0 (999 of 1,000 values
    are <= 1.0), but ORT's comparison skips the bin that holds them and returns the left edge
    of the outlier's bin, ~4.0. labkit ranks with exact integers and returns 1.0 (to one
    histogram bin). ORT's "symmetric" result here is also not symmetric: its lower end is
    clipped to the data's min (1.0).
    """
    x = torch.ones(1000)
    x[-1] = 4.0
    exact = float(np.quantile(x.numpy(), 0.999, method="inverted_cdf"))
    assert exact == 1.0
    obs = quant.PercentileObserver(99.9).observe(x)
    lo, hi = obs.range(8, symmetric=True)
    assert lo == -hi and exact <= hi <= exact + obs.width
    ort_lo, ort_hi = quant.ort_range([x], "percentile", True, num_bins=2048, percentile=99.9)
    assert ort_hi > 3.99  # the outlier's bin: past the quantile
    assert ort_lo == 1.0  # and not symmetric


# -------------------------------------------- parity: the tolerance side (numpy's rule)


def test_parity_tolerance_is_relative_to_the_expected_value() -> None:
    """Source: numpy's allclose / np.testing.assert_allclose(actual, desired): the test is
    |actual - desired| <= atol + rtol * |desired|, the reference side (the rule labkit's
    parity documents for comparing ONNX Runtime's output with PyTorch's).

    Values in the band where the side matters: expected 1000, got 999, rtol 1e-3, atol 0:
    |diff| = 1 <= 1e-3 * 1000 passes, while rtol * |got| = 0.999 would fail it; and the
    mirror case, expected 999 and got 1000, fails (1 > 0.999) where rtol * |got| would pass.
    """
    r = deploy.parity(torch.tensor([1000.0]), torch.tensor([999.0]), atol=0.0, rtol=1e-3)
    assert r["ok"] is True
    assert bool(np.allclose(999.0, 1000.0, rtol=1e-3, atol=0.0))
    e = np.array([999.0], dtype=np.float64)
    g = np.array([1000.0], dtype=np.float64)
    r = deploy.parity(e, g, atol=0.0, rtol=1e-3)
    assert r["ok"] is False  # 1 > 0.999 = rtol * |expected|; rtol * |got| = 1.0 would pass
    assert not np.allclose(g, e, rtol=1e-3, atol=0.0)
    assert r["max_rel_diff"] == pytest.approx(1 / 999)
    assert math.isclose(r["max_abs_diff"], 1.0)


# ------------------------------------------ issue 13 pin (not a ported case): entropy bin


@pytest.mark.parametrize("bits", [3, 4])
def test_entropy_observer_threshold_is_the_edge_of_the_kl_bin(bits: int) -> None:
    """Not a ported case: a pin for the planted bug "entropy threshold off by one bin".

    kl_threshold's bin is pinned elsewhere (test_quant.py, exact bin against an independent
    search); this pins the observer around it: the histogram of |x| (B bins over [0, max |x|],
    built here with numpy) goes to kl_threshold with 2^(bits-1) levels, and the threshold is
    the upper edge of the chosen bin, T = i * max|x| / B. A threshold one bin lower or higher
    ((i -+ 1) * width) fails. Asymmetric ranges are T clipped to the data.
    """
    g = torch.Generator().manual_seed(7)
    x = torch.cat([torch.randn(4000, generator=g), torch.tensor([9.0, -7.5])]).double()
    bins = 256
    obs = quant.EntropyObserver(bins=bins).observe(x)
    r = float(x.abs().max())
    hist, _ = np.histogram(x.abs().numpy(), bins=bins, range=(0.0, r))
    levels = 2 ** (bits - 1)
    i = quant.kl_threshold(torch.from_numpy(hist.astype(np.float64)), levels)
    t = i * r / bins
    assert 1 < t < 8.9  # an interior bin: the outliers are clipped
    lo, hi = obs.range(bits, symmetric=True)
    assert hi == pytest.approx(t, rel=1e-12) and lo == -hi
    lo, hi = obs.range(bits, symmetric=False)
    assert (lo, hi) == (pytest.approx(max(float(x.min()), -t)), pytest.approx(min(9.0, t)))
