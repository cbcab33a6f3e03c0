"""Planted wrong answers to notebook 06's exercises must be rejected (forward, STE gradient,
weights after two QAT steps); the worked solutions pass."""

import torch
import torch.nn.functional as F

from labkit import checks
from solutions import n06_ptq_and_qat as sol


def _fq(x, scale, zero_point, qmin, qmax):
    q = torch.round(x / scale) + zero_point
    return (torch.clamp(q, qmin, qmax) - zero_point) * scale


def test_solutions_pass() -> None:
    assert checks.check("qat.ste_fake_quant", sol.ste_fake_quant).passed
    assert checks.check("qat.qat_step", sol.qat_step).passed
    assert checks.check("qat.fake_quantize_groupwise", sol.fake_quantize_groupwise).passed
    assert checks.check("qat.smoothquant_scales", sol.smoothquant_scales).passed


def test_not_attempted_is_reported() -> None:
    def stub(*args):
        raise NotImplementedError

    res = checks.check("qat.ste_fake_quant", stub)
    assert not res.passed and not res.attempted


def test_plain_autograd_through_round_is_rejected() -> None:
    """d round / dx = 0 almost everywhere: no gradient reaches x."""
    res = checks.check("qat.ste_fake_quant", _fq)
    assert not res.passed and "gradient wrong" in res.message


def test_no_clamp_mask_in_backward_is_rejected() -> None:
    class NoMask(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, s, z, qmin, qmax):
            return _fq(x, s, z, qmin, qmax)

        @staticmethod
        def backward(ctx, g):
            return g, None, None, None, None

    res = checks.check("qat.ste_fake_quant", lambda *a: NoMask.apply(*a))
    assert not res.passed and "clamped values" in res.message


def test_mask_on_the_real_range_instead_of_the_codes_is_rejected() -> None:
    """A mask that ignores the zero point (|x| <= S qmax) is wrong for asymmetric grids."""

    class RealMask(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, s, z, qmin, qmax):
            ctx.save_for_backward((x >= s * qmin) & (x <= s * qmax))
            return _fq(x, s, z, qmin, qmax)

        @staticmethod
        def backward(ctx, g):
            (m,) = ctx.saved_tensors
            return g * m, None, None, None, None

    res = checks.check("qat.ste_fake_quant", lambda *a: RealMask.apply(*a))
    assert not res.passed and "gradient wrong" in res.message


def test_floor_rounding_is_rejected() -> None:
    class Floor(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, s, z, qmin, qmax):
            q = torch.floor(x / s) + z
            ctx.save_for_backward((q >= qmin) & (q <= qmax))
            return (q.clamp(qmin, qmax) - z) * s

        @staticmethod
        def backward(ctx, g):
            (m,) = ctx.saved_tensors
            return g * m, None, None, None, None

    res = checks.check("qat.ste_fake_quant", lambda *a: Floor.apply(*a))
    assert not res.passed and "forward differs" in res.message


def test_detached_output_is_rejected() -> None:
    res = checks.check("qat.ste_fake_quant", lambda *a: _fq(*a).detach())
    assert not res.passed and "no gradient" in res.message


def _step(model, x, y, optimizer, *, zero=True, train=True, early_step=False, item=True):
    if train:
        model.train()
    loss = F.cross_entropy(model(x), y)
    if zero:
        optimizer.zero_grad()
    if early_step:
        optimizer.step()
    loss.backward()
    if not early_step:
        optimizer.step()
    return loss.item() if item else loss


def test_forgetting_zero_grad_is_rejected() -> None:
    res = checks.check("qat.qat_step", lambda *a: _step(*a, zero=False))
    assert not res.passed and "step 2" in res.message


def test_forgetting_train_mode_is_rejected() -> None:
    res = checks.check("qat.qat_step", lambda *a: _step(*a, train=False))
    assert not res.passed and "step 1" in res.message


def test_stepping_before_backward_is_rejected() -> None:
    assert not checks.check("qat.qat_step", lambda *a: _step(*a, early_step=True)).passed


def test_zero_grad_after_the_step_and_a_scalar_tensor_loss_pass() -> None:
    def late_zero(model, x, y, optimizer):
        model.train()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.detach()

    assert checks.check("qat.qat_step", late_zero).passed


def test_forgetting_the_optimizer_step_is_rejected() -> None:
    def no_step(model, x, y, optimizer):
        model.train()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        return loss.item()

    res = checks.check("qat.qat_step", no_step)
    assert not res.passed and "weight" in res.message


def test_loss_on_detached_logits_is_rejected() -> None:
    def detached(model, x, y, optimizer):
        model.train()
        logits = model(x).detach().requires_grad_(True)  # no gradient reaches the weights
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    assert not checks.check("qat.qat_step", detached).passed


def test_mse_loss_instead_of_cross_entropy_is_rejected() -> None:
    def mse(model, x, y, optimizer):
        model.train()
        loss = F.mse_loss(model(x), F.one_hot(y, 4).float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    assert not checks.check("qat.qat_step", mse).passed


def test_ste_passing_the_gradient_everywhere_is_rejected() -> None:
    class NoMask(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale, zero_point, qmin, qmax):
            q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)
            return (q - zero_point) * scale

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out, None, None, None, None

    res = checks.check("qat.ste_fake_quant", lambda x, s, z, lo, hi: NoMask.apply(x, s, z, lo, hi))
    assert not res.passed and "clamped" in res.message


def test_every_exercise_has_a_nudge_and_a_formula() -> None:
    from labkit.qat import exercises as ex

    for key, e in ex.EXERCISES.items():
        assert e.hint and e.formula and e.hint != e.formula, key
        assert "zero_grad()" not in e.hint and "save_for_backward" not in e.hint, key


# --------------------------------------------------------------------------- LLM quantisation


def _groupwise(w, bits, group_size, *, widen=False, symmetric=False, levels=None, safe=True):
    out, n = w.shape
    g = w.reshape(out, n // group_size, group_size)
    lo, hi = g.amin(2, keepdim=True), g.amax(2, keepdim=True)
    if widen:
        lo, hi = lo.clamp(max=0), hi.clamp(min=0)
    if symmetric:
        m = torch.maximum(lo.abs(), hi.abs())
        lo, hi = -m, m
    step = (hi - lo) / (levels or 2**bits - 1)
    if safe:
        step_div = torch.where(step > 0, step, torch.ones_like(step))
    else:
        step_div = step
    k = torch.clamp(torch.round((g - lo) / step_div), 0, 2**bits - 1)
    return (lo + k * step).reshape(out, n)


def test_groupwise_solution_agrees_with_the_library() -> None:
    from labkit import qat

    w = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    for bits, g in ((2, 8), (4, 16), (3, 64)):
        assert torch.allclose(
            sol.fake_quantize_groupwise(w, bits, g), qat.fake_quantize_groupwise(w, bits, g)
        )


def test_groupwise_grid_widened_to_include_zero_is_rejected() -> None:
    res = checks.check(
        "qat.fake_quantize_groupwise", lambda w, b, g: _groupwise(w, b, g, widen=True)
    )
    assert not res.passed and "[1, 3]" in res.message


def test_groupwise_symmetric_grid_is_rejected() -> None:
    res = checks.check(
        "qat.fake_quantize_groupwise", lambda w, b, g: _groupwise(w, b, g, symmetric=True)
    )
    assert not res.passed


def test_groupwise_per_tensor_grid_is_rejected() -> None:
    def per_tensor(w, bits, group_size):
        return _groupwise(w.reshape(1, -1), bits, w.numel()).reshape(w.shape)

    res = checks.check("qat.fake_quantize_groupwise", per_tensor)
    assert not res.passed


def test_groupwise_one_grid_per_row_instead_of_per_group_is_rejected() -> None:
    res = checks.check("qat.fake_quantize_groupwise", lambda w, b, g: _groupwise(w, b, w.shape[1]))
    assert not res.passed


def test_groupwise_groups_down_the_columns_are_rejected() -> None:
    """Groups of group_size consecutive ROWS of one column (the wrong axis)."""

    def down_columns(w, bits, group_size):
        out, n = w.shape
        if out % group_size:
            raise ValueError("rows not divisible")
        return _groupwise(w.T.contiguous(), bits, group_size).T

    assert not checks.check("qat.fake_quantize_groupwise", down_columns).passed


def test_groupwise_2_to_the_bits_steps_is_rejected() -> None:
    res = checks.check(
        "qat.fake_quantize_groupwise", lambda w, b, g: _groupwise(w, b, g, levels=2**b)
    )
    assert not res.passed


def test_groupwise_nan_on_a_constant_group_is_rejected() -> None:
    res = checks.check(
        "qat.fake_quantize_groupwise", lambda w, b, g: _groupwise(w, b, g, safe=False)
    )
    assert not res.passed and "constant group" in res.message


def test_smoothquant_alpha_on_the_wrong_side_is_rejected() -> None:
    def swapped(a, w, alpha):
        return a ** (1 - alpha) / w**alpha

    res = checks.check("qat.smoothquant_scales", swapped)
    assert not res.passed and "alpha = 0.8" in res.message


def test_smoothquant_without_the_weight_exponent_is_rejected() -> None:
    res = checks.check("qat.smoothquant_scales", lambda a, w, alpha: a**alpha / w)
    assert not res.passed


def test_smoothquant_product_instead_of_ratio_is_rejected() -> None:
    res = checks.check("qat.smoothquant_scales", lambda a, w, alpha: a**alpha * w ** (1 - alpha))
    assert not res.passed


def test_smoothquant_scale_zero_for_a_dead_channel_is_rejected() -> None:
    res = checks.check("qat.smoothquant_scales", lambda a, w, alpha: a**alpha / w ** (1 - alpha))
    assert not res.passed and "act_absmax = 0" in res.message
