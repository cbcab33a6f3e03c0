"""How LLMs are quantised (labkit/qat/llm.py, lsq.py, char_lm.py): group-wise RTN, GPTQ, AWQ,
SmoothQuant and LSQ hold to their definitions; bad input names the parameter."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from labkit import qat


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _correlated_inputs(n_in: int, n: int = 600, seed: int = 1) -> torch.Tensor:
    """X (in, n): neighbouring input features correlated, a few channels much larger."""
    x = _rand(n_in, n, seed=seed)
    x = x + 0.9 * x.roll(1, 0) + 0.5 * x.roll(2, 0)
    x[::7] *= 5.0
    return x


def gptq_slow(w, h, bits, group_size, damp=0.01):
    """The published algorithm, one column and one later column at a time (float64)."""
    W, H = w.double().clone(), h.double().clone()
    n = W.shape[1]
    H += damp * H.diagonal().mean() * torch.eye(n, dtype=torch.float64)
    U = torch.linalg.cholesky(torch.linalg.inv(H), upper=True)
    Q = torch.zeros_like(W)
    levels = 2**bits - 1
    for i in range(n):
        if i % group_size == 0:
            lo = W[:, i : i + group_size].amin(1)
            hi = W[:, i : i + group_size].amax(1)
            step = (hi - lo) / levels
        k = torch.clamp(torch.round((W[:, i] - lo) / step), 0, levels)
        Q[:, i] = lo + k * step
        err = (W[:, i] - Q[:, i]) / U[i, i]
        for j in range(i + 1, n):
            W[:, j] -= err * U[i, j]
    return Q.to(w.dtype)


# --------------------------------------------------------------------------- group-wise RTN


@settings(max_examples=40, deadline=None)
@given(
    bits=st.integers(2, 8),
    groups=st.integers(1, 4),
    group_size=st.sampled_from([1, 2, 8, 32]),
    rows=st.integers(1, 5),
    seed=st.integers(0, 10_000),
    scale=st.floats(1e-3, 1e3),
)
def test_groupwise_error_is_at_most_half_a_step_of_each_groups_own_grid(
    bits, groups, group_size, rows, seed, scale
) -> None:
    w = _rand(rows, groups * group_size, seed=seed) * scale + 0.3 * scale
    w_hat = qat.fake_quantize_groupwise(w, bits, group_size)
    g = w.view(rows, groups, group_size)
    lo, hi = g.amin(2, keepdim=True), g.amax(2, keepdim=True)
    step = (hi - lo) / (2**bits - 1)
    err = (w - w_hat).view(rows, groups, group_size).abs()
    assert bool((err <= step / 2 + 1e-5 * scale).all())
    gh = w_hat.view(rows, groups, group_size)  # the grid spans [min, max], not widened to 0
    assert torch.allclose(gh.amin(2, keepdim=True), lo, atol=1e-5 * scale)
    assert torch.allclose(gh.amax(2, keepdim=True), hi, atol=1e-5 * scale)
    levels = torch.round((gh - lo) / torch.where(step > 0, step, 1))
    assert int(levels.max()) <= 2**bits - 1 and int(levels.min()) >= 0


def test_grid_is_not_widened_to_include_zero() -> None:
    w = torch.tensor([[1.0, 1.5, 2.0, 4.0]])  # 2 bits: levels 1, 2, 3, 4
    assert torch.equal(qat.fake_quantize_groupwise(w, 2, 4), torch.tensor([[1.0, 1.0, 2.0, 4.0]]))
    # a grid widened to [0, 4] (levels 0, 4/3, 8/3, 4) would give 4/3 for the first three


def test_constant_group_comes_back_unchanged_and_groups_are_independent() -> None:
    w = _rand(6, 96)
    w[:, 32:64] = 0.7  # one constant group per row
    w[2, :32] = -3.0
    w_hat = qat.fake_quantize_groupwise(w, 3, 32)
    assert torch.isfinite(w_hat).all()
    assert torch.equal(w_hat[:, 32:64], w[:, 32:64]) and torch.equal(w_hat[2, :32], w[2, :32])
    w2 = w.clone()
    w2[:, 64:] *= 100  # changing one group leaves the others' codes alone
    assert torch.equal(qat.fake_quantize_groupwise(w2, 3, 32)[:, :64], w_hat[:, :64])


def test_group_size_in_is_per_row_and_one_row_is_one_grid() -> None:
    w = _rand(4, 48)
    per_row = torch.cat([qat.fake_quantize_groupwise(w[r : r + 1], 4, 48) for r in range(4)])
    assert torch.equal(qat.fake_quantize_groupwise(w, 4, 48), per_row)
    lo, hi = w.amin(1, keepdim=True), w.amax(1, keepdim=True)
    step = (hi - lo) / 15
    assert torch.allclose(per_row, lo + torch.round((w - lo) / step) * step, atol=1e-6)


# --------------------------------------------------------------------------- GPTQ


@pytest.mark.parametrize("c", [1.0, 0.02, 250.0])
@pytest.mark.parametrize("group_size", [8, 32, 64])
def test_gptq_with_identity_hessian_is_round_to_nearest(c, group_size) -> None:
    w = _rand(12, 64, seed=3)
    got = qat.gptq_quantize(w, c * torch.eye(64), 3, group_size)
    assert torch.equal(got, qat.fake_quantize_groupwise(w, 3, group_size))


@pytest.mark.parametrize(
    ("n_in", "bits", "group_size"),
    [(48, 4, 16), (48, 3, 48), (256, 3, 32), (256, 4, 64), (192, 2, 96)],
)  # 256 columns: more than one lazy block of 128; 192 / 96: blocks of two groups
def test_gptq_equals_the_published_algorithm_column_by_column(n_in, bits, group_size) -> None:
    w = _rand(10, n_in, seed=5)
    x = _correlated_inputs(n_in)
    h = x @ x.T
    got = qat.gptq_quantize(w, h, bits, group_size)
    want = gptq_slow(w, h, bits, group_size)
    assert torch.allclose(got, want, atol=1e-4), float((got - want).abs().max())


def test_gptq_lowers_the_output_error_against_round_to_nearest() -> None:
    w = _rand(64, 128, seed=7) * 0.1
    x = _correlated_inputs(128, n=1000)
    h = x @ x.T
    for bits, g in ((4, 128), (3, 32), (4, 64)):
        e_gptq = qat.output_error(w, qat.gptq_quantize(w, h, bits, g), h)
        e_rtn = qat.output_error(w, qat.fake_quantize_groupwise(w, bits, g), h)
        assert e_gptq < 0.8 * e_rtn, (bits, g, e_gptq, e_rtn)
        direct = float(((w - qat.gptq_quantize(w, h, bits, g)).double() @ x.double()).pow(2).sum())
        assert e_gptq == pytest.approx(direct, rel=1e-6)


def test_gptq_ignores_the_scale_of_h_and_survives_a_dead_input() -> None:
    w = _rand(8, 32, seed=2)
    x = _correlated_inputs(32)
    h = x @ x.T
    assert torch.allclose(qat.gptq_quantize(w, h, 3, 16), qat.gptq_quantize(w, 1e3 * h, 3, 16))
    x[4] = 0  # an input that never fires: its row and column of H are 0
    got = qat.gptq_quantize(w, x @ x.T, 3, 16, damp=0.0)
    assert torch.isfinite(got).all()


# --------------------------------------------------------------------------- AWQ


def test_awq_never_does_worse_than_rtn_on_its_calibration_data_and_helps_salient_channels() -> None:
    w = _rand(32, 64, seed=11) * 0.05
    x = _rand(64, 800, seed=12)
    x[[3, 17, 40]] *= 20.0  # salient input channels, as in LLM activations
    h = x @ x.T
    act_mean = x.abs().mean(1)
    s = qat.awq_scales(w, h, act_mean, 3, 32)
    w_hat = qat.fake_quantize_groupwise(w * s, 3, 32) / s
    e_awq = qat.output_error(w, w_hat, h)
    e_rtn = qat.output_error(w, qat.fake_quantize_groupwise(w, 3, 32), h)
    assert e_awq < 0.9 * e_rtn
    assert s[[3, 17, 40]].min() > s.median()  # the salient channels get the finer grid


# --------------------------------------------------------------------------- SmoothQuant


def test_smoothquant_scales_follow_the_formula() -> None:
    a = torch.tensor([4.0, 0.5, 9.0, 0.0])
    w = torch.tensor([1.0, 2.0, 0.25, 3.0])
    for alpha in (0.0, 0.3, 0.5, 1.0):
        s = qat.smoothquant_scales(a, w, alpha)
        want = a[:3] ** alpha / w[:3] ** (1 - alpha)
        assert torch.allclose(s[:3], want) and s[3] == 1.0  # a zero range: s = 1
    assert torch.allclose(qat.smoothquant_scales(a, w, 0.5)[:3], torch.tensor([2.0, 0.5, 6.0]))


def test_smooth_linear_is_an_exact_rewrite_and_moves_the_outlier_into_the_weight() -> None:
    lin = nn.Linear(16, 8).double()
    x = _rand(50, 16, seed=4).double()
    x[:, 5] *= 60  # an outlier channel
    s = qat.smoothquant_scales(x.abs().amax(0), lin.weight.abs().amax(0).detach(), 0.5)
    smooth = qat.smooth_linear(lin, s)
    assert smooth is not lin and torch.equal(smooth.bias, lin.bias)
    assert torch.allclose(smooth(x / s), lin(x), atol=1e-10, rtol=0)
    assert torch.allclose(smooth.weight, lin.weight * s)
    ratio = (x / s).abs().amax(0)
    assert float(ratio.max() / ratio.median()) < float(
        x.abs().amax(0).max() / x.abs().amax(0).median()
    )


def test_smoothing_lowers_the_w8a8_error_on_an_outlier_activation() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(64, 32)
    x = _rand(256, 64, seed=9)
    x[:, [2, 30]] *= 80.0
    y = lin(x).detach()
    before = (qat.w8a8_linear(lin, x) - y).norm() / y.norm()
    s = qat.smoothquant_scales(x.abs().amax(0), lin.weight.abs().amax(0).detach(), 0.5)
    after = (qat.w8a8_linear(qat.smooth_linear(lin, s), x / s) - y).norm() / y.norm()
    assert after < 0.5 * before


# --------------------------------------------------------------------------- inputs, bad input


def test_no_function_modifies_its_inputs() -> None:
    w, x = _rand(8, 32, seed=1), _correlated_inputs(32)
    h = x @ x.T
    act, lin = x.abs().mean(1), nn.Linear(32, 8)
    keep = [t.clone() for t in (w, h, act, lin.weight.detach())]
    qat.fake_quantize_groupwise(w, 3, 16)
    qat.gptq_quantize(w, h, 3, 16)
    qat.awq_scales(w, h, act, 3, 16)
    s = qat.smoothquant_scales(act, lin.weight.abs().amax(0).detach(), 0.5)
    s_keep = s.clone()
    qat.smooth_linear(lin, s)
    qat.output_error(w, w * 0.9, h)
    for t, k in zip((w, h, act, lin.weight.detach(), s), [*keep, s_keep], strict=True):
        assert torch.equal(t, k)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: qat.fake_quantize_groupwise(_rand(4, 30), 4, 8), "group_size"),
        (lambda: qat.fake_quantize_groupwise(_rand(4, 32), 1, 8), "bits"),
        (lambda: qat.fake_quantize_groupwise(_rand(4, 32), 17, 8), "bits"),
        (lambda: qat.fake_quantize_groupwise(_rand(4, 32), 4, 0), "group_size"),
        (lambda: qat.fake_quantize_groupwise(_rand(32), 4, 8), "w"),
        (lambda: qat.gptq_quantize(_rand(4, 32), torch.eye(16), 4, 8), "h"),
        (lambda: qat.gptq_quantize(_rand(4, 32), torch.ones(32, 16), 4, 8), "h"),
        (lambda: qat.gptq_quantize(_rand(4, 32), torch.eye(32), 4, 8, damp=-0.1), "damp"),
        (lambda: qat.gptq_quantize(_rand(4, 32), torch.eye(32), 4, 12), "group_size"),
        (lambda: qat.smoothquant_scales(torch.ones(4), torch.ones(4), -0.5), "alpha"),
        (lambda: qat.smoothquant_scales(torch.ones(4), torch.ones(4), 1.5), "alpha"),
        (lambda: qat.smoothquant_scales(torch.ones(4), torch.ones(3), 0.5), "act_absmax"),
        (lambda: qat.smoothquant_scales(-torch.ones(4), torch.ones(4), 0.5), "act_absmax"),
        (lambda: qat.smooth_linear(nn.Linear(4, 2), torch.ones(3)), "s"),
        (lambda: qat.smooth_linear(nn.Linear(4, 2), torch.zeros(4)), "s"),
        (lambda: qat.smooth_linear(nn.Conv2d(4, 2, 1), torch.ones(4)), "linear"),
        (lambda: qat.awq_scales(_rand(4, 32), torch.eye(32), torch.ones(31), 4, 8), "act_mean"),
        (lambda: qat.quantize_linears(_tiny_lm(), "gptq", 4, 32), "stats"),
        (lambda: qat.quantize_linears(_tiny_lm(), "nf4", 4, 32), "method"),
        (lambda: qat.quantize_linears(_tiny_lm(), "rtn", 4, 24), "group_size"),
    ],
)
def test_bad_input_names_the_parameter(call, name) -> None:
    with pytest.raises(ValueError, match=name):
        call()


def test_a_hessian_that_is_not_positive_definite_is_named() -> None:
    with pytest.raises(ValueError, match="damp"):
        qat.gptq_quantize(_rand(4, 8), -torch.eye(8), 4, 8, damp=0.0)


# --------------------------------------------------------------------------- whole models


def _tiny_lm() -> qat.CharLM:
    torch.manual_seed(0)
    return qat.CharLM(qat.LMConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=32))


def test_linear_stats_hold_each_block_linears_inputs() -> None:
    lm = _tiny_lm()
    x = torch.randint(0, 20, (3, 16), generator=torch.Generator().manual_seed(0))
    names = qat.block_linears(lm)
    assert names == [f"blocks.{b}.{n}" for b in range(2) for n in ("qkv", "proj", "fc", "out")]
    stats = qat.linear_stats(lm, x)
    seen = {}
    handle = lm.blocks[1].fc.register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    lm(x)
    handle.remove()
    X = seen["x"].reshape(-1, 32).double()
    st1 = stats["blocks.1.fc"]
    assert st1.samples == 48 and torch.allclose(st1.h, X.T @ X)
    assert torch.allclose(st1.act_absmax, X.abs().amax(0)) and stats["blocks.1.out"].h.shape == (
        128,
        128,
    )


def test_quantize_linears_touches_only_the_block_linears_and_leaves_the_model() -> None:
    lm = _tiny_lm()
    x = torch.randint(0, 20, (4, 16), generator=torch.Generator().manual_seed(1))
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    stats = qat.linear_stats(lm, x)
    for method in qat.llm.METHODS:
        q = qat.quantize_linears(lm, method, 3, 16, stats)
        for k, v in q.state_dict().items():
            changed = not torch.equal(v, before[k])
            assert changed == (
                k.endswith("weight") and k.rsplit(".", 1)[0] in qat.block_linears(lm)
            )
    for k, v in lm.state_dict().items():
        assert torch.equal(v, before[k])
    gq = qat.quantize_linears(lm, "gptq", 3, 16, stats)
    want = qat.gptq_quantize(lm.blocks[1].out.weight, stats["blocks.1.out"].h, 3, 16)
    assert torch.allclose(gq.blocks[1].out.weight, want, atol=1e-6)
    rtn = qat.quantize_linears(lm, "rtn", 3, 16)
    assert torch.equal(
        rtn.blocks[0].fc.weight, qat.fake_quantize_groupwise(lm.blocks[0].fc.weight, 3, 16)
    )


def test_groupwise_size_counts_bits_and_one_fp16_pair_per_group() -> None:
    lm = _tiny_lm()
    total = sum(p.numel() for p in lm.parameters())
    quantised = 2 * (32 * 96 + 32 * 32 + 32 * 128 + 128 * 32)  # the weights of 8 block linears
    assert qat.groupwise_size_bytes(lm) == 4 * total
    assert qat.groupwise_size_bytes(lm, 4, 16) == 4 * (total - quantised) + quantised // 2 + (
        4 * quantised // 16
    )
    assert qat.groupwise_size_bytes(lm, 3, 32) == 4 * (total - quantised) + -(
        -quantised * 3 // 8
    ) + (4 * quantised // 32)


def test_lm_windows_are_fixed_and_lm_loss_is_per_window() -> None:
    x, y = qat.lm_windows("val", 3, 16, seed=1)
    x2, _ = qat.lm_windows("val", 3, 16, seed=1)
    assert x.shape == y.shape == (3, 16) and torch.equal(x, x2) and torch.equal(x[:, 1:], y[:, :-1])
    lm = qat.CharLM(qat.LMConfig(block_size=16, n_layer=1, n_head=2, n_embd=16))
    loss = qat.lm_loss(lm, x, y)
    assert loss.shape == (3,) and bool((loss > 0).all())
    with pytest.raises(ValueError, match="split"):
        qat.lm_windows("test", 3, 16)
    with pytest.raises(ValueError, match="block_size"):
        lm(torch.zeros(1, 17, dtype=torch.long))


# --------------------------------------------------------------------------- LSQ


def test_lsq_step_gradient_is_the_rounding_error_inside_and_the_bound_outside() -> None:
    x = torch.tensor([0.26, -0.74, 1.1, -5.0, 9.0])
    step = torch.tensor(0.5, requires_grad=True)
    y = qat.lsq_fake_quantize(x, step, 0.0, -4, 3)
    assert torch.equal(y.detach(), torch.fake_quantize_per_tensor_affine(x, 0.5, 0, -4, 3))
    y.sum().backward()
    v = x / 0.5
    inside = torch.round(v) - v
    want = torch.where(v < -4, torch.tensor(-4.0), torch.where(v > 3, torch.tensor(3.0), inside))
    g = 1 / (5 * 3) ** 0.5  # LSQ's gradient scale 1 / sqrt(numel * qmax)
    assert step.grad == pytest.approx(float(want.sum()) * g, rel=1e-5)


def test_lsq_model_starts_where_static_ptq_is_and_learns_its_steps() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    calib = [torch.randn(32, 8)]
    lsq = qat.lsq_model(net, calib, 4)
    ptq = qat.static_ptq(net, calib, 4)
    x = torch.randn(10, 8)
    with torch.no_grad():
        assert torch.allclose(lsq(x), ptq(x), atol=1e-5)
    steps = [n for n, _ in lsq.named_parameters() if n.endswith("_step")]
    assert len(steps) == 4
    batches = [(torch.randn(16, 8), torch.randint(0, 4, (16,)))]
    before = {n: p.detach().clone() for n, p in lsq.named_parameters()}
    qat.qat_finetune(lsq, batches, epochs=2, lr=1e-2)
    assert all(not torch.equal(before[n], p) for n, p in lsq.named_parameters() if n in steps)
    with pytest.raises(ValueError, match="bits"):
        qat.lsq_model(net, calib, 1)
