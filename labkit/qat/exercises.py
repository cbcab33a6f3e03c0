"""Exercises of notebook 06 (PTQ and QAT): the STE fake-quant and one QAT training step.

Both are checked by behaviour, not by value alone: the STE by its forward output *and* the
gradient it sends back; the training step by the weights, observer ranges and loss after two
consecutive steps (so a forgotten ``zero_grad`` or a forgotten ``model.train()`` shows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from labkit import qat, quant
from labkit.core.checks import Exercise

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


EXERCISES = {
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
