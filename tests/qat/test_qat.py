"""labkit.qat: the STE (quant.fake_quantize) against its definition and torch, PTQ/QAT models, size accounting,
sensitivity -> mixed precision, and the library quantizers."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from labkit import data, generate, models, qat, quant, train
from labkit.qat.runtimes import _allow_nondeterministic


@pytest.fixture(scope="module")
def digits_mlp() -> tuple[nn.Module, list[torch.Tensor], dict[str, data.Split]]:
    """A small MLP trained 4 epochs on digits (about a second), calibration batches, splits."""
    torch.manual_seed(0)
    with torch.random.fork_rng():
        loaders = data.digits_loaders(batch_size=64)
        model = models.mlp(width=64, depth=2)
        train.fit(model, loaders.train, epochs=4, lr=3e-3, progress=False)
    return model.eval(), qat.calibration_batches(loaders.train, 4), data.digits()


def _accuracy(model: nn.Module, split: data.Split) -> float:
    with torch.no_grad():
        return float((model(split.x).argmax(1) == split.y).float().mean())


# --------------------------------------------------------------------------- STE


@settings(max_examples=60, deadline=None)
@given(
    scale=st.floats(1e-3, 2.0),
    zp=st.integers(-20, 20),
    bits=st.integers(2, 8),
    seed=st.integers(0, 10_000),
)
def test_ste_forward_is_torch_and_gradient_is_the_ste_definition(
    scale: float, zp: int, bits: int, seed: int
) -> None:
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    zp = max(qmin, min(qmax, zp))
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(300, generator=g) * scale * 2 ** (bits - 1) * 1.5).requires_grad_(True)
    upstream = torch.randn(300, generator=g)
    y = quant.fake_quantize(x, scale, zp, qmin, qmax)
    y.backward(upstream)
    ref = torch.fake_quantize_per_tensor_affine(x.detach(), scale, zp, qmin, qmax)
    assert torch.equal(y.detach(), ref)
    # STE definition: d y / d x = 1 where round(x / S) + Z lies in [qmin, qmax], else 0
    q = torch.round(x.detach() * (1.0 / torch.tensor(scale))) + zp
    inside = (q >= qmin) & (q <= qmax)
    assert torch.equal(x.grad, upstream * inside)
    # and the same as torch's own fake-quant backward
    x2 = x.detach().clone().requires_grad_(True)
    torch.fake_quantize_per_tensor_affine(x2, scale, zp, qmin, qmax).backward(upstream)
    assert torch.equal(x.grad, x2.grad)


def test_ste_with_per_channel_scale_broadcasts() -> None:
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    s, qmin, qmax = qat.weight_qparams(w, 4)
    assert s.shape == (4, 1, 1, 1)
    torch.testing.assert_close(s.flatten(), w.detach().abs().flatten(1).amax(1) / 7)
    assert torch.equal(s.flatten(), quant.symmetric_scale(w, 4, axis=0))  # the one weight scale
    y = quant.STEFakeQuant.apply(w, s, torch.zeros_like(s), qmin, qmax)  # as QuantLayer calls it
    ref = torch.fake_quantize_per_channel_affine(
        w.detach(), s.flatten(), torch.zeros(4, dtype=torch.int32), 0, qmin, qmax
    )
    assert torch.equal(y.detach(), ref)
    y.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # MinMax scale: nothing is clamped


def test_true_gradient_of_round_is_zero_which_is_why_ste_exists() -> None:
    x = torch.linspace(-1, 1, 11, requires_grad=True)
    torch.round(x / 0.1).sum().backward()
    assert torch.count_nonzero(x.grad) == 0


def test_per_tensor_weight_scale_is_one_scale_broadcast_to_every_channel() -> None:
    w = torch.tensor([[1.0, -3.0], [0.5, 0.25], [2.0, 0.0]])
    s, qmin, qmax = qat.weight_qparams(w, 8, per_channel=False)
    assert (qmin, qmax) == (-128, 127) and s.shape == (3, 1)
    assert torch.equal(s.flatten(), torch.full((3,), 3.0 / 127))


def test_quant_layer_uses_the_one_ste_of_quant() -> None:
    """qat has no fake-quant Function of its own: QuantLayer's weight gradient is quant's STE."""
    assert not hasattr(qat, "STEFakeQuant") and not hasattr(qat, "ste_fake_quantize")
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -0.5, 0.25], [2.0, 1.0, -1.0]]))
    ql = qat.QuantLayer(lin, w_bits=2, a_bits=None)
    w_hat = ql.quantized_weight()
    assert w_hat.grad_fn is not None and type(w_hat.grad_fn).__name__ == "STEFakeQuantBackward"
    s = quant.symmetric_scale(lin.weight, 2, axis=0)
    ref = quant.fake_quantize(lin.weight, s, torch.zeros(2, dtype=torch.int64), -2, 1, axis=0)
    assert torch.equal(w_hat, ref)


# --------------------------------------------------------------------------- models


def test_prepare_with_no_bits_is_the_folded_float_model() -> None:
    torch.manual_seed(0)
    cnn = models.cnn(width=4, depth=3).eval()
    for m in cnn.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(5, 1, 8, 8)
    q = qat.prepare(cnn, None, None)
    assert len(qat.quant_layers(q)) == 4
    assert not any(isinstance(m, nn.BatchNorm2d) for m in q.modules())
    with torch.no_grad():
        torch.testing.assert_close(q(x), cnn(x), atol=1e-5, rtol=1e-5)


def test_weights_are_fake_quantised_per_channel() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(6, 3)
    layer = qat.QuantLayer(lin, w_bits=4, a_bits=None)
    w = layer.quantized_weight().detach()
    s = lin.weight.detach().abs().amax(1, keepdim=True) / 7
    torch.testing.assert_close(w, torch.round(lin.weight.detach() / s).clamp(-8, 7) * s)
    assert torch.unique(torch.round(w / s)).numel() <= 16


def test_calibration_sets_the_minmax_range_of_each_layer_input() -> None:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    batches = [torch.randn(10, 5) * 2, torch.randn(10, 5) + 1]
    q = qat.static_ptq(mlp, batches, bits=8)
    first, second = qat.quant_layers(q).values()
    x = torch.cat(batches)
    assert float(first.act_min) == pytest.approx(float(x.min()))
    assert float(first.act_max) == pytest.approx(float(x.max()))
    with torch.no_grad():  # calibration sees float activations, 8-bit weights
        w = first.quantized_weight()
        h = torch.relu(x @ w.T + first.layer.bias)
    assert float(second.act_max) == pytest.approx(float(h.max()), rel=1e-5)
    assert float(second.act_min) == pytest.approx(0.0)


def test_static_and_dynamic_ptq_at_8_bits_stay_close_to_fp32(digits_mlp) -> None:
    model, calib, splits = digits_mlp
    test = splits["test"]
    fp32 = _accuracy(model, test)
    with torch.no_grad():
        ref = model(test.x)
        for q in (qat.static_ptq(model, calib, 8), qat.dynamic_ptq(model, 8)):
            assert abs(_accuracy(q, test) - fp32) <= 0.01
            err = (q(test.x) - ref).norm() / ref.norm()
            assert err < 0.02
    assert fp32 > 0.9


def test_fewer_bits_give_larger_error(digits_mlp) -> None:
    model, calib, splits = digits_mlp
    x = splits["val"].x
    with torch.no_grad():
        ref = model(x)
        errs = [float((qat.static_ptq(model, calib, b)(x) - ref).norm()) for b in (8, 4, 2)]
    assert errs[0] < errs[1] < errs[2]


def test_dynamic_mode_uses_each_inputs_own_range() -> None:
    torch.manual_seed(0)
    layer = qat.QuantLayer(nn.Linear(4, 2), w_bits=None, a_bits=4, mode="dynamic")
    x = torch.randn(3, 4) * 5
    got = layer._quantize_input(x)
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    s = (hi - lo) / 15
    z = round(-lo / s)
    torch.testing.assert_close(got, torch.fake_quantize_per_tensor_affine(x, s, z, 0, 15))


def test_qat_mode_tracks_an_ema_of_the_range_in_train_mode_only() -> None:
    mlp = nn.Sequential(nn.Linear(3, 2))
    q = qat.qat_model(mlp, [torch.tensor([[-1.0, 0.0, 1.0]])], bits=8)
    layer = qat.quant_layers(q)["0"]
    assert layer.mode == "qat" and float(layer.act_max) == 1.0
    q.train()
    q(torch.tensor([[-3.0, 0.0, 11.0]]))
    assert float(layer.act_max) == pytest.approx(1.0 + 0.1 * (11.0 - 1.0))
    assert float(layer.act_min) == pytest.approx(-1.0 + 0.1 * (-3.0 + 1.0))
    q.eval()
    q(torch.tensor([[-30.0, 0.0, 110.0]]))
    assert float(layer.act_max) == pytest.approx(2.0)  # frozen in eval


def test_qat_gradients_reach_the_float_weights_and_finetuning_recovers(digits_mlp) -> None:
    model, calib, splits = digits_mlp
    q = qat.qat_model(model, calib, bits=3)
    before = _accuracy(q, splits["val"])
    x, y = calib[0], next(iter(data.digits_loaders(batch_size=64).train))[1]
    q.train()
    nn.functional.cross_entropy(q(x), y).backward()
    grads = [m.layer.weight.grad for m in qat.quant_layers(q).values()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    q.zero_grad()
    torch.manual_seed(0)
    loaders = data.digits_loaders(batch_size=64)
    hist = qat.qat_finetune(q, loaders.train, epochs=2, lr=1e-3)
    assert len(hist) == 2 and hist[1] < hist[0]
    assert _accuracy(q, splits["val"]) >= before - 0.01
    assert not q.training


def test_bad_input_raises_clear_errors(digits_mlp) -> None:
    model, calib, _ = digits_mlp
    with pytest.raises(ValueError, match="bits must be an integer"):
        qat.prepare(model, w_bits=1)
    with pytest.raises(ValueError, match="bits must be an integer"):
        qat.static_ptq(model, calib, bits=17)
    with pytest.raises(ValueError, match="bits must be an integer"):
        qat.size_bytes(model, 0)
    with pytest.raises(ValueError, match="unknown layers"):
        qat.prepare(model, {"nope": 4})
    with pytest.raises(ValueError, match="mode"):
        qat.prepare(model, mode="int8")
    with pytest.raises(ValueError, match="nn.Conv2d or nn.Linear"):
        qat.QuantLayer(nn.ReLU())
    with pytest.raises(ValueError, match="at least one batch"):
        qat.static_ptq(model, [], bits=8)
    with pytest.raises(ValueError, match="observer"):
        qat.static_ptq(model, calib, bits=8, observer="kl")
    with pytest.raises(ValueError, match="calibrate"):
        qat.prepare(model, 8, 8, mode="static")(calib[0])
    with pytest.raises(ValueError, match="epochs"):
        qat.qat_finetune(qat.qat_model(model, calib, 4), [], epochs=0)
    with pytest.raises(ValueError, match="nn.Module"):
        qat.prepare("model")
    with pytest.raises(ValueError, match="num_batches"):
        qat.calibration_batches([(calib[0], None)], num_batches=0)
    with pytest.raises(ValueError, match="no batches"):
        qat.calibration_batches([], num_batches=4)
    x_val = torch.cat(calib)
    with pytest.raises(ValueError, match="y_val"):
        qat.sensitivity(model, calib, x_val, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="bits in bits_list must be an integer"):
        qat.sensitivity(model, calib, x_val, torch.zeros(len(x_val), dtype=torch.long), (1,))


def _tiny() -> tuple[nn.Module, list[torch.Tensor]]:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), [torch.randn(5, 4)]


def _bad_calls() -> list[tuple[str, object]]:
    """(parameter the message must name, call) for every class of bad input qat guards."""
    mlp, calib = _tiny()
    x, y = calib[0], torch.zeros(5, dtype=torch.long)
    sens = {"0": {2: 0.1, 8: 0.0}, "2": {2: 0.1, 8: 0.0}}
    opt = torch.optim.SGD(mlp.parameters(), lr=0.1)
    return [
        # a string (or a state dict) where a model is expected
        ("model", lambda: qat.quantizable_layers("mlp.pt")),
        ("model", lambda: qat.quant_layers({"weight": x})),
        ("model", lambda: qat.size_bytes("mlp.pt", 8)),
        ("model", lambda: qat.qat_step("mlp.pt", x, y, opt)),
        ("qmodel", lambda: qat.qat_finetune("mlp.pt", [(x, y)])),
        ("qmodel", lambda: qat.calibrate_activations("mlp.pt", calib)),
        ("model", lambda: qat.sensitivity("mlp.pt", calib, x, y)),
        ("model", lambda: qat.torch_int8("mlp.pt")),
        ("labkit_int8", lambda: qat.runtime_table(mlp, calib, x, y, "int8.pt", batch=2)),
        # counts: zero, negative, fractional, bool, absurdly large
        ("num_batches", lambda: qat.calibration_batches([(x, y)], num_batches=-1)),
        ("num_batches", lambda: qat.calibration_batches([(x, y)], num_batches=2.5)),
        ("num_batches", lambda: qat.calibration_batches([(x, y)], num_batches=True)),
        ("num_batches", lambda: qat.calibration_batches([(x, y)], num_batches=10**9)),
        ("epochs", lambda: qat.qat_finetune(mlp, [(x, y)], epochs=True)),
        ("epochs", lambda: qat.qat_finetune(mlp, [(x, y)], epochs=1.5)),
        ("epochs", lambda: qat.qat_finetune(mlp, [(x, y)], epochs=10**9)),
        ("lr", lambda: qat.qat_finetune(mlp, [(x, y)], lr=float("nan"))),
        ("batch", lambda: qat.runtime_table(mlp, calib, x, y, mlp, batch=0)),
        ("batch", lambda: qat.runtime_table(mlp, calib, x, y, mlp, batch=True)),
        ("budget_bytes", lambda: qat.assign_bits(mlp, sens, 10.5)),
        ("budget_bytes", lambda: qat.assign_bits(mlp, sens, True)),
        # bit widths outside 2..16, or a bool
        ("bits", lambda: qat.prepare(mlp, w_bits=True)),
        ("bits", lambda: qat.size_bytes(mlp, {"0": 1})),
        ("bits", lambda: qat.QuantLayer(nn.Linear(2, 2), a_bits=32)),
        ("bits", lambda: qat.assign_bits(mlp, {"0": {1: 0.0}, "2": {8: 0.0}}, 10**6)),
        ("momentum", lambda: qat.QuantLayer(nn.Linear(2, 2), momentum=float("nan"))),
        # empty lists and tensors, NaN inputs
        (r"batches\[0\] is empty", lambda: qat.static_ptq(mlp, [torch.empty(0, 4)], 8)),
        (
            r"batches\[0\] contains NaN",
            lambda: qat.static_ptq(mlp, [torch.full((2, 4), float("nan"))]),
        ),
        ("batches", lambda: qat.static_ptq(mlp, torch.randn(5, 4), 8)),
        ("calib", lambda: qat.sensitivity(mlp, [], x, y)),
        ("calib", lambda: qat.torch_int8(mlp, [])),
        ("x_val", lambda: qat.sensitivity(mlp, calib, torch.empty(0, 4), y[:0])),
        ("bits_list", lambda: qat.sensitivity(mlp, calib, x, y, bits_list=())),
        ("loader", lambda: qat.qat_finetune(mlp, [])),
        ("loader", lambda: qat.qat_finetune(mlp, iter([(x, y)]), epochs=2)),
        ("loader", lambda: qat.calibration_batches("digits", 4)),
        ("sens", lambda: qat.assign_bits(mlp, {"0": {}, "2": {8: 0.0}}, 10**6)),
        # mismatched shapes between arguments
        ("y", lambda: qat.qat_step(mlp, x, y[:3], opt)),
        ("y_test", lambda: qat.runtime_table(mlp, calib, x, y[:2], mlp, batch=2)),
        ("a_bits", lambda: qat.QuantLayer(nn.Linear(4, 3), a_bits=None).act_qparams()),
    ]


@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_every_bad_input_class_names_the_parameter(case: int) -> None:
    name, call = _bad_calls()[case]
    with pytest.raises(ValueError, match=name):
        call()


def test_qat_step_trains_on_matching_shapes() -> None:
    """The positive twin of the shape check: the guard lets a correct step through."""
    mlp, calib = _tiny()
    opt = torch.optim.SGD(mlp.parameters(), lr=0.1)
    y = torch.zeros(5, dtype=torch.long)
    loss = qat.qat_step(mlp, calib[0], y, opt)
    assert math.isfinite(loss) and mlp.training


# --------------------------------------------------------------------------- size


def test_size_bytes_arithmetic() -> None:
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    assert qat.size_bytes(mlp) == 4 * (8 * 16 + 16 + 16 * 4 + 4)
    assert qat.size_bytes(mlp, 32) == qat.size_bytes(mlp, None)
    # weights b/8 bytes each + one float scale per output channel + float bias + (S, Z)
    l1 = lambda b: math.ceil(128 * b / 8) + 4 * 16 + 4 * 16 + 8  # noqa: E731
    l2 = lambda b: math.ceil(64 * b / 8) + 4 * 4 + 4 * 4 + 8  # noqa: E731
    assert qat.size_bytes(mlp, 8) == l1(8) + l2(8)
    assert qat.size_bytes(mlp, 3) == l1(3) + l2(3)  # 128 * 3 / 8 = 48 bytes exactly
    assert qat.size_bytes(mlp, {"1": 4}) == l1(4) + 4 * (64 + 4)
    assert qat.size_bytes(mlp, 8, per_channel=False) == l1(8) - 60 + l2(8) - 12


def test_size_bytes_folds_batchnorm_first() -> None:
    cnn = models.cnn(width=4, depth=2)
    folded = models.fold_batchnorm(cnn)
    n = sum(p.numel() for p in folded.parameters())
    assert qat.size_bytes(cnn) == 4 * n
    assert qat.size_bytes(cnn, 8) < qat.size_bytes(cnn) / 2


# --------------------------------------------------------------------------- mixed precision


def _mlp3() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4)
    )


def test_assign_bits_meets_the_budget_and_spares_the_sensitive_layer() -> None:
    model = _mlp3()
    sens = {
        "0": {2: 5.0, 4: 1.0, 8: 0.0},  # very sensitive
        "2": {2: 0.2, 4: 0.05, 8: 0.0},
        "4": {2: 0.3, 4: 0.1, 8: 0.0},
    }
    full = qat.size_bytes(model, 8)
    for budget in (full, qat.size_bytes(model, 4), qat.size_bytes(model, {"0": 8, "2": 2, "4": 2})):
        choice = qat.assign_bits(model, sens, budget)
        assert qat.size_bytes(model, choice) <= budget
    assert qat.assign_bits(model, sens, full) == {"0": 8, "2": 8, "4": 8}
    tight = qat.assign_bits(model, sens, qat.size_bytes(model, {"0": 8, "2": 2, "4": 4}))
    assert tight["0"] == 8 and tight["2"] == 2  # the big insensitive layer goes first
    with pytest.raises(ValueError, match="below the smallest"):
        qat.assign_bits(model, sens, qat.size_bytes(model, 2) - 1)
    with pytest.raises(ValueError, match="one entry per"):
        qat.assign_bits(model, {"0": {8: 0.0}}, full)
    with pytest.raises(ValueError, match="budget_bytes"):
        qat.assign_bits(model, sens, 0)


def test_assign_bits_spends_the_bytes_left_over() -> None:
    """After the budget is met no layer can be widened one step and still fit."""
    model = _mlp3()
    sens = {
        "0": {2: 5.0, 3: 2.0, 4: 1.0, 8: 0.0},
        "2": {2: 0.2, 3: 0.1, 4: 0.05, 8: 0.0},
        "4": {2: 0.3, 3: 0.2, 4: 0.1, 8: 0.0},
    }
    lo, hi = qat.size_bytes(model, 2), qat.size_bytes(model, 8)
    for budget in range(lo, hi + 1, 97):
        choice = qat.assign_bits(model, sens, budget)
        assert qat.size_bytes(model, choice) <= budget
        for n, b in choice.items():
            wider = [c for c in sens[n] if c > b]
            if wider:
                assert qat.size_bytes(model, {**choice, n: min(wider)}) > budget, (budget, choice)


def test_sensitivity_grows_as_bits_shrink(digits_mlp) -> None:
    model, calib, splits = digits_mlp
    val = splits["val"]
    sens = qat.sensitivity(model, calib, val.x, val.y, bits_list=(2, 8))
    assert set(sens) == set(qat.quantizable_layers(models.fold_batchnorm(model)))
    for s in sens.values():
        assert abs(s[8]) < 0.05 and s[2] > s[8]
    choice = qat.assign_bits(model, sens, qat.size_bytes(model, {n: 2 for n in sens} | {"1": 8}))
    assert qat.size_bytes(model, choice) <= qat.size_bytes(model, {n: 2 for n in sens} | {"1": 8})


# --------------------------------------------------------------------------- libraries


def test_torch_int8_runs_without_deterministic_warnings(digits_mlp, capfd) -> None:
    model, calib, splits = digits_mlp
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        pt = qat.torch_int8(model, calib)
        with torch.no_grad(), _allow_nondeterministic():
            acc = _accuracy(pt, splits["test"])
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    assert abs(acc - _accuracy(model, splits["test"])) <= 0.02
    assert "deterministic" not in capfd.readouterr().err


def test_runtime_table_rows(digits_mlp) -> None:
    pytest.importorskip("onnxruntime")
    model, calib, splits = digits_mlp
    test = splits["test"]
    rows, timings = qat.runtime_table(
        model, calib, test.x, test.y, qat.static_ptq(model, calib, 8), rounds=3, repeats=1
    )
    names = [r["method"] for r in rows]
    assert names[0].startswith("FP32") and "ORT quantize_static" in names
    fp32 = rows[0]
    for r in rows:
        assert abs(r["accuracy"] - fp32["accuracy"]) <= 0.03, r
        if "int8" in r["method"] or "quantize" in r["method"]:
            assert r["bytes"] < fp32["bytes"] / 2, r
    # every method timed exactly once, by bench.compare, against its own runtime's FP32
    assert set(timings) == {"PyTorch", "ONNX Runtime"}
    assert timings["PyTorch"].baseline == "FP32 (PyTorch eager)"
    assert timings["ONNX Runtime"].baseline == "ORT FP32"
    timed = [n for c in timings.values() for n in c.median_ms]
    assert sorted(timed) == sorted(names)
    assert all(ms > 0 for c in timings.values() for ms in c.median_ms.values())


def test_runtime_table_rejects_a_batch_larger_than_the_test_set(digits_mlp) -> None:
    model, calib, splits = digits_mlp
    test = splits["test"]
    with pytest.raises(ValueError, match="batch"):
        qat.runtime_table(model, calib, test.x[:8], test.y[:8], model, batch=32)


# --------------------------------------------------------------------------- names


def test_generate_int8_model_no_longer_shares_onnx_file_to_file_name() -> None:
    """Taught-in pointers of every lesson are checked once, in tests/test_lesson_pointers.py."""
    assert callable(generate.quantize_linear_int8)
    assert not hasattr(generate, "quantize_dynamic_int8")
