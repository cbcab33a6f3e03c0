"""Exercises of notebook 06 (PTQ and QAT): the STE fake-quant, one QAT training step, the
group-wise quantise/dequantise of LLM weights and SmoothQuant's scale.

The first two are checked by behaviour, not by value alone: the STE by its forward output *and*
the gradient it sends back; the training step by the weights, observer ranges and loss after
two consecutive steps (so a forgotten ``zero_grad`` or a forgotten ``model.train()`` shows).
The group-wise cases are built so that each plausible wrong grid gives other values: groups of
one sign only (a grid widened to include 0), lopsided ranges (a symmetric grid), groups of very
different sizes in one row and one column (per tensor, per row, or groups down the columns),
a constant group (0 / 0). SmoothQuant's cases use alpha != 0.5 (alpha on the wrong side) and a
channel with a zero range.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from labkit import qat, quant
from labkit.core.checks import Case, Exercise

# --------------------------------------------------------------------------- STE fake-quant


def ste_fake_quant(
    x: torch.Tensor, scale: float, zero_point: int, qmin: int, qmax: int
) -> torch.Tensor:
    """Reference: y = S (clamp(round(x/S) + Z, qmin, qmax) - Z); dy/dx = 1 inside, 0 clamped.

    The library's STE fake-quant is notebook 05's ``quant.fake_quantize`` (``quant.STEFakeQuant``).
    """
    return quant.fake_quantize(x, scale, zero_point, qmin, qmax)


def _ste_cases() -> list[tuple[str, torch.Tensor, float, int, int, int]]:
    """(label, x, scale, zero_point, qmin, qmax); every case has values on both sides of the range."""
    g = torch.Generator().manual_seed(0)
    wide = torch.randn(400, generator=g) * 3
    ties = (torch.arange(-40, 40, dtype=torch.float32) + 0.5) * 0.25  # exact halves of S = 0.25
    return [
        ("int8 symmetric, values beyond the range", wide, 0.02, 0, -128, 127),
        ("uint8 asymmetric, zero point 100", wide, 0.03, 100, 0, 255),
        ("4-bit asymmetric, exact ties x/S = k + 0.5", ties, 0.25, 3, 0, 15),
        ("2-bit signed, a (2, 3, 5) tensor", torch.randn(2, 3, 5, generator=g), 0.5, 0, -2, 1),
    ]


def _check_ste(fn: Callable[..., Any]) -> str | None:
    for label, x, s, z, qmin, qmax in _ste_cases():
        xin = x.clone().requires_grad_(True)
        y = fn(xin, s, z, qmin, qmax)
        if not isinstance(y, torch.Tensor):
            return f"{label}: expected a tensor, got {type(y).__name__}"
        expected = torch.fake_quantize_per_tensor_affine(x, s, z, qmin, qmax)
        if y.shape != x.shape:
            return f"{label}: output shape {tuple(y.shape)}, expected {tuple(x.shape)}"
        if not torch.allclose(y.detach(), expected, atol=1e-6, rtol=0):
            worst = float((y.detach() - expected).abs().max())
            return (
                f"{label}: forward differs from torch.fake_quantize_per_tensor_affine "
                f"(largest difference {worst:.3g}; rounding must be round-half-to-even, "
                "clamp in the integer domain)"
            )
        if not y.requires_grad:
            return f"{label}: the output carries no gradient (did you detach or use no_grad?)"
        upstream = torch.linspace(0.5, 1.5, x.numel()).reshape(x.shape)
        y.backward(upstream)
        q = torch.round(x * (1.0 / torch.tensor(s))) + z
        inside = (q >= qmin) & (q <= qmax)
        want = upstream * inside
        if xin.grad is None:
            return f"{label}: no gradient reached x"
        if not torch.allclose(xin.grad, want, atol=1e-6, rtol=0):
            wrong_in = int((xin.grad != want)[inside].sum())
            wrong_out = int((xin.grad != want)[~inside].sum())
            return (
                f"{label}: gradient wrong at {wrong_in} of {int(inside.sum())} values inside "
                f"[qmin, qmax] (expected dL/dy there) and at {wrong_out} of "
                f"{int((~inside).sum())} clamped values (expected 0)"
            )
    return None


# --------------------------------------------------------------------------- one QAT step


def qat_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer
) -> float:
    """Reference: train mode, cross-entropy, zero_grad, backward (STE), step; returns the loss."""
    return qat.qat_step(model, x, y, optimizer)


def _qat_setup(seed: int, opt: str) -> tuple[nn.Module, torch.optim.Optimizer, list[Any]]:
    """A 4-bit QAT MLP (calibrated ranges), its optimizer, and two (x, y) batches."""
    g = torch.Generator().manual_seed(seed)
    base = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    with torch.no_grad():
        for p in base.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    calib = [torch.randn(32, 8, generator=g)]
    model = qat.qat_model(base, calib, bits=4)
    batches = [(torch.randn(16, 8, generator=g) * 1.5, torch.randint(0, 4, (16,), generator=g))]
    batches.append((torch.randn(16, 8, generator=g) * 1.5, torch.randint(0, 4, (16,), generator=g)))
    if opt == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    return model, optimizer, batches


def _check_qat_step(fn: Callable[..., Any]) -> str | None:
    for seed, opt in ((0, "sgd"), (1, "adam")):
        ref_model, ref_opt, batches = _qat_setup(seed, opt)
        model, optimizer, _ = _qat_setup(seed, opt)
        for step, (x, y) in enumerate(batches, start=1):
            want = qat.qat_step(ref_model, x, y, ref_opt)
            got = fn(model, x, y, optimizer)
            where = f"{opt.upper()} optimizer, step {step} of 2"
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if not isinstance(got, int | float):
                return f"{where}: return the loss as a Python float (loss.item())"
            if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6):
                return f"{where}: loss {got:.6f}, expected {want:.6f}"
            ref_state, state = ref_model.state_dict(), model.state_dict()
            for name, t in ref_state.items():
                if not torch.allclose(state[name], t, atol=1e-6, rtol=1e-5):
                    kind = "observer range" if "act_" in name else "weight"
                    return (
                        f"{where}: {kind} {name!r} differs from the reference "
                        f"(largest difference {float((state[name] - t).abs().max()):.3g})"
                    )
    return None


# --------------------------------------------------------------------------- LLM quantisation


def _groupwise_cases() -> list[Case]:
    g = torch.Generator().manual_seed(6)
    mixed = torch.randn(6, 64, generator=g) * torch.tensor(
        [0.05, 3.0, 0.4, 12.0]
    ).repeat_interleave(16)  # four groups of 16 columns with very different ranges
    mixed[2] *= 40.0  # and one row far larger than the others
    positive = torch.rand(4, 32, generator=g) * 2.0 + 1.0  # every group in [1, 3]: 0 is outside
    lopsided = torch.rand(5, 24, generator=g) * 5.0 - 0.5  # ranges like [-0.5, 4.5]
    const = torch.randn(3, 32, generator=g)
    const[:, 8:16] = 0.625  # one constant group per row
    return [
        Case((positive, 4, 8), label="every weight in [1, 3], 4 bits, groups of 8"),
        Case((lopsided, 3, 8), label="ranges far from symmetric, 3 bits, groups of 8"),
        Case((mixed, 4, 16), label="groups of very different ranges, 4 bits, groups of 16"),
        Case((mixed, 2, 32), label="2 bits, groups of 32"),
        Case((mixed, 8, 64), label="8 bits, group_size = in (one grid a row)"),
        Case((const, 3, 8), label="a constant group (max = min) comes back unchanged"),
        Case((mixed[:, :16].T.contiguous(), 4, 2), label="a tall matrix (16, 6), groups of 2"),
    ]


def _smoothquant_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)
    act = torch.rand(12, generator=g) * 3.0 + 0.1
    act[4] = 60.0  # an outlier channel
    w = torch.rand(12, generator=g) * 0.5 + 0.05
    act0 = act.clone()
    act0[7] = 0.0  # a channel that never fires
    return [
        Case((act, w, 0.5), label="alpha = 0.5"),
        Case((act, w, 0.8), label="alpha = 0.8"),
        Case((act, w, 0.25), label="alpha = 0.25"),
        Case((act, w, 0.0), label="alpha = 0 (s = 1 / weight_absmax)"),
        Case((act, w, 1.0), label="alpha = 1"),
        Case((act0, w, 0.6), label="a channel with act_absmax = 0 gets s = 1"),
    ]


EXERCISES = {
    "qat.fake_quantize_groupwise": Exercise(
        reference=qat.fake_quantize_groupwise,
        cases=_groupwise_cases,
        hint="Reshape w (out, in) to (out, in // group_size, group_size) so each group is a row "
        "of the last dimension; where does each group's grid start and end - and must it "
        "contain 0? How many steps lie between 2**bits levels? What happens when max = min?",
        formula="g = w.reshape(out, -1, group_size); lo, hi = g.amin(2, keepdim=True), "
        "g.amax(2, keepdim=True); step = (hi - lo) / (2**bits - 1); safe = torch.where(step > 0, "
        "step, 1); w_hat = lo + torch.round((g - lo) / safe) * step; return w_hat.reshape(w.shape)",
    ),
    "qat.smoothquant_scales": Exercise(
        reference=qat.smoothquant_scales,
        cases=_smoothquant_cases,
        hint="alpha says how much of the difficulty moves from the activation to the weight: "
        "which of the two ranges gets the exponent alpha, which gets 1 - alpha, and which one "
        "is divided? A channel with a zero range has nothing to migrate.",
        formula="s = act_absmax**alpha / weight_absmax**(1 - alpha); return torch.where("
        "(act_absmax > 0) & (weight_absmax > 0), s, torch.ones_like(s))",
    ),
    # Learner-only name: the learner re-implements notebook 05's quant.fake_quantize (its
    # straight-through gradient included) in notebook 06; allow-listed in
    # tests/test_exercise_keys.py.
    "qat.ste_fake_quant": Exercise(
        reference=ste_fake_quant,
        custom=_check_ste,
        hint="forward: the same fake quantisation as notebook 05, plus remember (ctx) WHERE the "
        "code landed inside [qmin, qmax]. backward: what should the gradient be for a value the "
        "clamp did not touch, and for one it clipped? Return one gradient per forward input.",
        formula="forward: q = torch.round(x / S) + Z; ctx.save_for_backward((q >= qmin) & "
        "(q <= qmax)); return S * (q.clamp(qmin, qmax) - Z).  backward: (mask,) = "
        "ctx.saved_tensors; return grad_out * mask, None, None, None, None.",
    ),
    "qat.qat_step": Exercise(
        reference=qat_step,
        custom=_check_qat_step,
        hint="The usual PyTorch training step - but in which mode must the model be for the "
        "QAT observers to update, and what must happen to last step's gradients?",
        formula="model.train(); loss = F.cross_entropy(model(x), y); optimizer.zero_grad(); "
        "loss.backward(); optimizer.step(); return loss.item()",
    ),
}
