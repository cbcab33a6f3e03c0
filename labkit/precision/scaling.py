"""Dynamic loss scaling from scratch (notebook 01, part 3, and its exercise 1).

DynamicLossScaler implements the same rule as torch.amp.GradScaler: multiply the loss by S,
unscale the gradients by 1/S, skip the optimizer step when any gradient is inf/NaN and set
S <- S * backoff, else after ``growth_interval`` good steps in a row set S <- S * growth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from labkit.core.errors import (
    check_int,
    check_number,
    check_positive,
    check_same_shape,
    check_tensor,
)
from labkit.precision.formats import _check_float_dtype


def update_scale(
    scale: float,
    growth_tracker: int,
    found_inf: bool,
    growth_factor: float = 2.0,
    backoff_factor: float = 0.5,
    growth_interval: int = 2000,
) -> tuple[float, int]:
    """The dynamic loss-scale rule -> (new scale, new growth tracker).

    inf/NaN found:  scale * backoff_factor, tracker 0 (the step was skipped)
    else:           tracker + 1; when it reaches growth_interval: scale * growth_factor
                    (kept only if still finite) and tracker 0.
    The scale is a float32 number, as in torch.amp.GradScaler. The worked solution of the
    exercise (solutions/n01_mixed_precision.py) is a deliberate copy, checked against this.
    Taught in notebooks/01_mixed_precision.ipynb, "Exercise 1: the scale update rule".
    """
    _check_update(scale, growth_tracker, growth_factor, backoff_factor, growth_interval, found_inf)
    s = np.float32(scale)
    if found_inf:
        return float(s * np.float32(backoff_factor)), 0
    growth_tracker += 1
    if growth_tracker == growth_interval:
        with np.errstate(over="ignore"):
            grown = s * np.float32(growth_factor)
        return (float(grown) if np.isfinite(grown) else float(s)), 0
    return float(s), growth_tracker


class DynamicLossScaler:
    """Dynamic loss scaling from scratch (the decisions of torch.amp.GradScaler).

    Per step:  scaler.scale(loss).backward(); stepped = scaler.step(optimizer)
    ``step`` unscales the gradients (g <- g / S, unless ``unscale_`` already ran, e.g. before
    gradient clipping), skips ``optimizer.step()`` if any gradient is inf/NaN, then calls
    ``update``. ``history`` records (scale used, step taken) for every step.
    Taught in notebooks/01_mixed_precision.ipynb, "3. Dynamic loss scaling from scratch".
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
    ) -> None:
        _check_scaler(init_scale, growth_factor, backoff_factor, growth_interval)
        self.scale_value = float(np.float32(init_scale))
        self.growth_factor = growth_factor
        self.backoff_factor = backoff_factor
        self.growth_interval = growth_interval
        self.growth_tracker = 0
        self.history: list[tuple[float, bool]] = []
        self._found_inf: bool | None = None  # set by unscale_ within one step

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """loss * S, so that small gradients stay above fp16's underflow threshold."""
        _check_loss(loss)
        return loss * self.scale_value

    def unscale_(self, params: Iterable[nn.Parameter] | torch.optim.Optimizer) -> bool:
        """Divide every gradient by S in place; return True if any gradient is inf/NaN.

        1/S is computed in float64 and rounded to float32, as GradScaler does.
        """
        tensors = _check_unscale(self._found_inf, params)
        inv = float(np.float32(1.0 / self.scale_value))
        found = False
        for p in tensors:
            if p.grad is None:
                continue
            found = found or not bool(torch.isfinite(p.grad).all())
            p.grad.mul_(inv)
        self._found_inf = found
        return found

    def update(self, found_inf: bool) -> None:
        """Apply ``update_scale`` to this scaler's state."""
        self.scale_value, self.growth_tracker = update_scale(
            self.scale_value,
            self.growth_tracker,
            found_inf,
            self.growth_factor,
            self.backoff_factor,
            self.growth_interval,
        )

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Unscale (if not done), step unless inf/NaN was found, update S; True if it stepped."""
        found = self._found_inf if self._found_inf is not None else self.unscale_(optimizer)
        self.history.append((self.scale_value, not found))
        if not found:
            optimizer.step()
        self._found_inf = None
        self.update(found)
        return not found


def replay_gradients(
    grads: list[torch.Tensor],
    scaler: DynamicLossScaler | torch.amp.GradScaler,
    lr: float = 0.1,
    grad_dtype: torch.dtype = torch.float16,
) -> list[tuple[float, bool]]:
    """Drive a scaler with a recorded sequence of true gradients -> (scale, stepped) per step.

    Step t uses the loss L = sum(w * grads[t]), so dL/dw = grads[t]; the scaler scales L,
    backward gives S * grads[t], which is stored in ``grad_dtype`` (fp16 like a real fp16
    backward: values above 65504 become inf), then the scaler's step (and update) runs with
    SGD. Works for DynamicLossScaler and for torch.amp.GradScaler("cpu"), so their decisions
    can be compared step by step.
    Taught in notebooks/01_mixed_precision.ipynb, "3. Dynamic loss scaling from scratch".
    """
    _check_replay(grads, scaler, lr, grad_dtype)
    w = nn.Parameter(torch.zeros_like(grads[0]))  # (size,) like every grads[t]
    opt = torch.optim.SGD([w], lr=lr)
    steps_taken = [0]
    opt.register_step_post_hook(lambda *_: steps_taken.__setitem__(0, steps_taken[0] + 1))
    decisions = []
    is_torch = isinstance(scaler, torch.amp.GradScaler)
    for g in grads:
        current = scaler.get_scale() if is_torch else scaler.scale_value
        opt.zero_grad(set_to_none=True)
        scaler.scale((w * g).sum()).backward()  # w.grad = S * g
        w.grad = w.grad.to(grad_dtype).to(w.dtype)  # fp16 storage
        before = steps_taken[0]
        scaler.step(opt)
        if is_torch:
            scaler.update()
        decisions.append((current, steps_taken[0] > before))
    return decisions


def gradient_sequence(steps: int = 40, size: int = 8, seed: int = 0) -> list[torch.Tensor]:
    """A recorded-style gradient sequence: magnitudes that drift over 6 decades, with a
    NaN at step 7 and an inf at step 20 (as from a bad batch).

        g_t = randn(size) * 10^(-6 + 6 t / (steps - 1))
    Taught in notebooks/01_mixed_precision.ipynb, "3. Dynamic loss scaling from scratch".
    """
    _check_sequence(steps, size, seed)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for t in range(steps):
        magnitude = 10.0 ** (-6 + 6 * t / max(steps - 1, 1))
        g = torch.randn(size, generator=gen) * magnitude  # (size,)
        if t == 7:
            g[0] = math.nan
        if t == 20:
            g[3 % size] = math.inf
        out.append(g)
    return out


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_scale(scale: object, name: str) -> None:
    """A loss scale is a finite float32 number > 0 (a negative or inf scale breaks training)."""
    v = check_number(scale, name)  # a str, a bool, NaN and inf end here
    if v <= 0:
        raise ValueError(
            f"{name} must be a float > 0 (a loss scale such as 65536.0), got {scale!r}"
            + (
                ": a scale that backed off to 0 means every step overflowed - look for a real "
                "inf/NaN in the forward pass (torch.autograd.detect_anomaly())."
                if v == 0
                else "."
            )
        )
    with np.errstate(over="ignore"):
        if not math.isfinite(float(np.float32(v))):
            raise ValueError(f"{name} must be finite in float32 (<= 3.4e38), got {scale!r}.")


def _check_update(
    scale, growth_tracker, growth_factor, backoff_factor, interval, found_inf=False, name="scale"
):
    """The arguments of update_scale (``name``: what the scale is called at the caller)."""
    _check_scale(scale, name)
    one = isinstance(found_inf, torch.Tensor) and found_inf.numel() == 1  # GradScaler's flag
    if not (isinstance(found_inf, (bool, np.bool_)) or one):
        raise ValueError(
            f"found_inf must be True or False (did any gradient hold inf/NaN?), got {found_inf!r}."
        )
    interval = check_int(interval, "growth_interval", low=1)
    if type(growth_tracker) is not int or not 0 <= growth_tracker < interval:  # bool is no count
        raise ValueError(
            f"growth_tracker must be an int in [0, growth_interval={interval}), got "
            f"{growth_tracker!r}: it counts the good steps since the last growth or back-off."
        )
    if check_number(growth_factor, "growth_factor") <= 1.0:
        raise ValueError(f"growth_factor must be > 1 (e.g. 2.0), got {growth_factor!r}.")
    if not 0.0 < check_number(backoff_factor, "backoff_factor") < 1.0:
        raise ValueError(f"backoff_factor must be in (0, 1) (e.g. 0.5), got {backoff_factor!r}.")


def _check_scaler(init_scale, growth_factor, backoff_factor, growth_interval) -> None:
    _check_update(init_scale, 0, growth_factor, backoff_factor, growth_interval, name="init_scale")


def _check_loss(loss: object) -> None:
    if not isinstance(loss, torch.Tensor) or not loss.is_floating_point():
        got = f"dtype {loss.dtype}" if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss must be a float tensor (the loss of a forward pass), got {got}.")


def _check_unscale(
    found_inf: bool | None, params: Iterable[nn.Parameter] | torch.optim.Optimizer
) -> list[torch.Tensor]:
    """The tensors whose .grad unscale_ divides (the optimizer's, or the iterable's)."""
    if found_inf is not None:
        raise RuntimeError("unscale_ was already called this step; call step() next.")
    if isinstance(params, torch.optim.Optimizer):
        return [p for g in params.param_groups for p in g["params"]]
    tensors = list(params) if isinstance(params, Iterable) else [None]
    if not all(isinstance(p, torch.Tensor) for p in tensors):
        raise ValueError(
            "params must be an optimizer or an iterable of parameters "
            f"(model.parameters()), got {type(params).__name__}."
        )
    return tensors


def _check_replay(grads, scaler, lr, grad_dtype) -> None:
    if not isinstance(grads, (list, tuple)) or not grads:
        raise ValueError("grads is empty: pass a list of gradient tensors, one per step.")
    for t, g in enumerate(grads):  # every step's gradient belongs to the same weight
        check_same_shape(check_tensor(g, f"grads[{t}]"), grads[0], f"grads[{t}], grads[0]")
    if not isinstance(scaler, (DynamicLossScaler, torch.amp.GradScaler)):
        raise ValueError(
            "scaler must be a precision.DynamicLossScaler or a torch.amp.GradScaler, got "
            f"{type(scaler).__name__}."
        )
    check_positive(lr, "lr")
    _check_float_dtype(grad_dtype, "grad_dtype")


def _check_sequence(steps: int, size: int, seed: int) -> None:
    check_int(steps, "steps", low=1)
    check_int(size, "size", low=1)
    check_int(seed, "seed")
    if steps * size * 4 > 2**31:
        raise ValueError(
            f"steps * size = {steps * size:,} floats would need more than 2 GB; use fewer steps "
            "or a smaller size (the demo uses 40 x 8)."
        )
