"""Mixed precision: float formats bit by bit, dynamic loss scaling, and torch.autocast.

A binary float with E exponent bits and M mantissa bits stores (sign s, exponent field e,
mantissa field m) and means

    normal     (0 < e < 2^E - 1):  (-1)^s * 2^(e - bias) * (1 + m / 2^M),  bias = 2^(E-1) - 1
    subnormal  (e = 0):            (-1)^s * 2^(1 - bias) * (m / 2^M)
    special    (e = 2^E - 1):      inf (m = 0) or NaN (m != 0)  -- IEEE formats

float8_e4m3fn ("fn" = finite, NaN) has no infinities: e = 15 is a normal exponent except the
single pattern m = 111 which is NaN, so its largest value is 2^8 * 1.75 = 448.

Derived limits (all computed from the bits below and tested against torch.finfo):
    eps = 2^-M (gap between 1 and the next float), smallest normal = 2^(1 - bias),
    smallest subnormal = 2^(1 - bias - M), max = the largest finite pattern.

DynamicLossScaler implements the same rule as torch.amp.GradScaler: multiply the loss by S,
unscale the gradients by 1/S, skip the optimizer step when any gradient is inf/NaN and set
S <- S * backoff, else after ``growth_interval`` good steps in a row set S <- S * growth.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from labkit.core.errors import check_tensor, require_cuda
from labkit.core.probes import OpRecorder


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: 1 sign bit, ``exponent_bits``, ``mantissa_bits``.

    bits = 1 + E + M,  bias = 2^(E-1) - 1.
    Taught in notebooks/01_mixed_precision.ipynb, "1. Float formats, bit by bit".
    """

    name: str
    exponent_bits: int
    mantissa_bits: int
    dtype: torch.dtype
    has_inf: bool = True  # False for float8_e4m3fn: the top exponent holds normal numbers

    @property
    def bits(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def bias(self) -> int:
        return 2 ** (self.exponent_bits - 1) - 1


FORMATS: dict[str, FloatFormat] = {
    "fp32": FloatFormat("fp32", 8, 23, torch.float32),
    "fp16": FloatFormat("fp16", 5, 10, torch.float16),
    "bf16": FloatFormat("bf16", 8, 7, torch.bfloat16),
    "fp8_e4m3": FloatFormat("fp8_e4m3", 4, 3, torch.float8_e4m3fn, has_inf=False),
    "fp8_e5m2": FloatFormat("fp8_e5m2", 5, 2, torch.float8_e5m2),
}

_INT_VIEW = {32: torch.int32, 16: torch.int16, 8: torch.uint8}


def get_format(fmt: str | FloatFormat) -> FloatFormat:
    """The FloatFormat named ``fmt`` (one of FORMATS), or ``fmt`` itself.

    Taught in notebooks/01_mixed_precision.ipynb, "1. Float formats, bit by bit".
    """
    if isinstance(fmt, FloatFormat):
        return fmt
    if fmt not in FORMATS:
        raise ValueError(f"unknown float format {fmt!r}; choose one of {sorted(FORMATS)}.")
    return FORMATS[fmt]


def fields(bits: int, fmt: str | FloatFormat) -> tuple[int, int, int]:
    """Split a bit pattern (an unsigned int of fmt.bits bits) into (sign, exponent, mantissa).

    mantissa = bits & (2^M - 1),  exponent = (bits >> M) & (2^E - 1),  sign = bits >> (E + M).
    Taught in notebooks/01_mixed_precision.ipynb, "1. Float formats, bit by bit".
    """
    f = get_format(fmt)
    if not isinstance(bits, int) or not 0 <= bits < 2**f.bits:
        raise ValueError(f"bits must be an integer in [0, 2^{f.bits}) for {f.name}, got {bits!r}.")
    mantissa = bits & (2**f.mantissa_bits - 1)
    exponent = (bits >> f.mantissa_bits) & (2**f.exponent_bits - 1)
    sign = bits >> (f.bits - 1)
    return sign, exponent, mantissa


def bits_to_float(bits: int, fmt: str | FloatFormat) -> float:
    """The real number a bit pattern means, from the bits alone:

        normal     (0 < e < 2^E - 1):  (-1)^s * 2^(e - bias) * (1 + m / 2^M)
        subnormal  (e = 0):            (-1)^s * 2^(1 - bias) * (m / 2^M)
        e = 2^E - 1:                   inf (m = 0) or NaN (m != 0); e4m3fn: NaN only for m = 111

    The worked solution of the exercise of the same name (solutions/n01_mixed_precision.py) is a
    deliberate copy written as a learner would; tests/test_solutions.py checks it against this.
    Taught in notebooks/01_mixed_precision.ipynb, "Exercise 2: decode a bit pattern".
    """
    f = get_format(fmt)
    s, e, m = fields(bits, f)
    top = 2**f.exponent_bits - 1
    sign = -1.0 if s else 1.0
    if e == top:
        if f.has_inf:
            return sign * math.inf if m == 0 else math.nan
        if m == 2**f.mantissa_bits - 1:  # e4m3fn: only S.1111.111 is NaN
            return math.nan
    if e == 0:
        return sign * 2.0 ** (1 - f.bias) * (m / 2**f.mantissa_bits)
    return sign * 2.0 ** (e - f.bias) * (1 + m / 2**f.mantissa_bits)


def float_to_bits(value: float, fmt: str | FloatFormat) -> int:
    """Round ``value`` to the format (torch's cast: round to nearest, ties to even) -> its bits,
    an unsigned int of fmt.bits bits (the inverse of bits_to_float for every non-NaN pattern).

    Taught in notebooks/01_mixed_precision.ipynb, "1. Float formats, bit by bit".
    """
    f = get_format(fmt)
    stored = torch.tensor(float(value), dtype=torch.float64).to(f.dtype)
    raw = int(stored.view(_INT_VIEW[f.bits]).item())  # the same bits read as a signed int
    return raw & (2**f.bits - 1)


def bit_string(bits: int, fmt: str | FloatFormat) -> str:
    """'s|eeeee|mmmmmmmmmm' for a bit pattern.

    Taught in notebooks/01_mixed_precision.ipynb, "1. Float formats, bit by bit".
    """
    f = get_format(fmt)
    s, e, m = fields(bits, f)
    return f"{s}|{e:0{f.exponent_bits}b}|{m:0{f.mantissa_bits}b}"


def limits(fmt: str | FloatFormat) -> dict[str, float]:
    """max, smallest normal, smallest subnormal and machine epsilon, decoded from bit patterns.

    max: sign 0, the largest exponent field that holds finite numbers, mantissa all ones
         (minus one ulp for e4m3fn, whose all-ones pattern is NaN);
    smallest_normal: exponent field 1, mantissa 0;  smallest_subnormal: pattern 1;
    eps: bits_to_float(1.0's bits + 1) - 1.0 (one step of the last mantissa bit at 1.0).
    Taught in notebooks/01_mixed_precision.ipynb, "1. Float formats, bit by bit".
    """
    f = get_format(fmt)
    m_all = 2**f.mantissa_bits - 1
    e_top = 2**f.exponent_bits - 1
    if f.has_inf:
        max_bits = ((e_top - 1) << f.mantissa_bits) | m_all
    else:
        max_bits = (e_top << f.mantissa_bits) | (m_all - 1)
    one = f.bias << f.mantissa_bits
    return {
        "max": bits_to_float(max_bits, f),
        "smallest_normal": bits_to_float(1 << f.mantissa_bits, f),
        "smallest_subnormal": bits_to_float(1, f),
        "eps": bits_to_float(one + 1, f) - 1.0,
    }


def limits_table() -> list[dict[str, Any]]:
    """One row per format: layout, the limits from the bits, and torch.finfo's view.

    decimal digits = -log10(eps).
    Taught in notebooks/01_mixed_precision.ipynb, "1. Float formats, bit by bit".
    """
    rows = []
    for f in FORMATS.values():
        lim = limits(f)
        fi = torch.finfo(f.dtype)
        rows.append(
            {
                "format": f.name,
                "bits (s/e/m)": f"1/{f.exponent_bits}/{f.mantissa_bits}",
                "bias": f.bias,
                "max": lim["max"],
                "smallest normal": lim["smallest_normal"],
                "smallest subnormal": lim["smallest_subnormal"],
                "eps": lim["eps"],
                "decimal digits": round(-math.log10(lim["eps"]), 1),
                "matches torch.finfo": lim["max"] == fi.max
                and lim["smallest_normal"] == fi.smallest_normal
                and lim["eps"] == fi.eps,
            }
        )
    return rows


def explain(value: float, fmt: str | FloatFormat) -> dict[str, Any]:
    """How ``value`` is stored in ``fmt``: bits, fields, the stored value and the rounding error.

    abs_error = |stored - value|, rel_error = abs_error / |value| (0 for value 0; inf when the
    value overflowed to inf or saturated).
    Taught in notebooks/01_mixed_precision.ipynb, "1. Float formats, bit by bit".
    """
    f = get_format(fmt)
    value = float(value)
    bits = float_to_bits(value, f)
    s, e, m = fields(bits, f)
    stored = bits_to_float(bits, f)
    if math.isfinite(stored) and not math.isfinite(value):  # e4m3fn saturates inf to 448
        abs_err = rel_err = math.inf
    elif math.isfinite(stored):
        abs_err = abs(stored - value)
        rel_err = abs_err / abs(value) if value else 0.0
    else:
        abs_err = rel_err = math.inf if math.isfinite(value) else 0.0
    kind = (
        "zero"
        if stored == 0
        else "nan"
        if math.isnan(stored)
        else "inf"
        if math.isinf(stored)
        else "subnormal"
        if e == 0
        else "normal"
    )
    return {
        "format": f.name,
        "value": value,
        "bits": bits,
        "bit_string": bit_string(bits, f),
        "sign": s,
        "exponent": e,
        "mantissa": m,
        "stored": stored,
        "kind": kind,
        "abs_error": abs_err,
        "rel_error": rel_err,
    }


def round_trip(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x rounded to ``dtype`` and back to x's dtype: what storing x in that format keeps.

    Taught in notebooks/01_mixed_precision.ipynb, "2.1 Small gradients underflow in fp16".
    """
    check_tensor(x, "x")
    _check_float_dtype(dtype)
    return x.to(dtype).to(x.dtype)


def underflow_fraction(x: torch.Tensor, dtype: torch.dtype) -> float:
    """Fraction of the non-zero entries of x that become exactly 0 when cast to ``dtype``.

        underflow = #{i : x_i != 0 and dtype(x_i) == 0} / #{i : x_i != 0}
    Taught in notebooks/01_mixed_precision.ipynb, "2.1 Small gradients underflow in fp16".
    """
    check_tensor(x, "x")
    _check_float_dtype(dtype)
    nonzero = x != 0
    if not nonzero.any():
        raise ValueError("x has no non-zero entries; underflow is undefined.")
    return float(((x.to(dtype) == 0) & nonzero).sum() / nonzero.sum())


def running_sum(increment: float, steps: int, dtype: torch.dtype, start: float = 1.0) -> float:
    """start + increment added ``steps`` times, every partial sum stored in ``dtype``.

    In fp16 near 1.0 the gap between floats is eps = 2^-10 ~ 1e-3, so an increment below
    eps/2 rounds away: the sum stagnates. This is why optimizers keep fp32 master weights.
    Taught in notebooks/01_mixed_precision.ipynb, "2.3 Small updates vanish: why master weights stay in fp32".
    """
    _check_float_dtype(dtype)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= 10**6:
        raise ValueError(f"steps must be an int in [0, 1e6] (one Python add each), got {steps!r}.")
    total = torch.tensor(start, dtype=dtype)
    inc = torch.tensor(increment, dtype=dtype)
    for _ in range(steps):
        total = total + inc
    return float(total)


# --------------------------------------------------------------------------- loss scaling


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
    _check_scale(scale, "scale")
    _check_interval(growth_interval)
    if not isinstance(growth_tracker, int) or not 0 <= growth_tracker < growth_interval:
        raise ValueError(
            f"growth_tracker must be an int in [0, growth_interval={growth_interval}), got "
            f"{growth_tracker!r}: it counts the good steps since the last growth or back-off."
        )
    _check_factors(growth_factor, backoff_factor)
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
        _check_scale(init_scale, "init_scale")
        _check_factors(growth_factor, backoff_factor)
        _check_interval(growth_interval)
        self.scale_value = float(np.float32(init_scale))
        self.growth_factor = growth_factor
        self.backoff_factor = backoff_factor
        self.growth_interval = growth_interval
        self.growth_tracker = 0
        self.history: list[tuple[float, bool]] = []
        self._found_inf: bool | None = None  # set by unscale_ within one step

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """loss * S, so that small gradients stay above fp16's underflow threshold."""
        check_tensor(loss, "loss")
        return loss * self.scale_value

    def unscale_(self, params: Iterable[nn.Parameter] | torch.optim.Optimizer) -> bool:
        """Divide every gradient by S in place; return True if any gradient is inf/NaN.

        1/S is computed in float64 and rounded to float32, as GradScaler does.
        """
        if self._found_inf is not None:
            raise RuntimeError("unscale_ was already called this step; call step() next.")
        inv = float(np.float32(1.0 / self.scale_value))
        found = False
        for p in _params(params):
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
    if not grads:
        raise ValueError("grads is empty: pass a list of gradient tensors, one per step.")
    w = nn.Parameter(torch.zeros_like(grads[0]))
    opt = torch.optim.SGD([w], lr=lr)
    steps_taken = [0]
    opt.register_step_post_hook(lambda *_: steps_taken.__setitem__(0, steps_taken[0] + 1))
    decisions = []
    for g in grads:
        is_torch = isinstance(scaler, torch.amp.GradScaler)
        current = scaler.get_scale() if is_torch else scaler.scale_value
        opt.zero_grad(set_to_none=True)
        scaler.scale((w * g).sum()).backward()
        assert w.grad is not None
        w.grad = w.grad.to(grad_dtype).to(w.dtype)
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
    for name, v in (("steps", steps), ("size", size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}.")
    if steps * size * 4 > 2**31:
        raise ValueError(
            f"steps * size = {steps * size:,} floats would need more than 2 GB; use fewer steps "
            "or a smaller size (the demo uses 40 x 8)."
        )
    gen = torch.Generator().manual_seed(seed)
    out = []
    for t in range(steps):
        magnitude = 10.0 ** (-6 + 6 * t / max(steps - 1, 1))
        g = torch.randn(size, generator=gen) * magnitude
        if t == 7:
            g[0] = math.nan
        if t == 20:
            g[3] = math.inf
        out.append(g)
    return out


# --------------------------------------------------------------------------- autocast


VIEW_OPS = ("detach", "t", "view", "_unsafe_view", "expand", "transpose", "reshape")


def op_dtypes(
    fn: Callable[[], Any],
    device_type: str = "cpu",
    dtype: torch.dtype | None = torch.bfloat16,
    skip: tuple[str, ...] = VIEW_OPS,
) -> list[dict[str, Any]]:
    """Run ``fn()`` (under torch.autocast(device_type, dtype) unless dtype is None) and list
    which aten ops ran with which input/output dtypes: rows {op, inputs, output, calls}.

    Ops are recorded below autocast (labkit.probes.OpRecorder, a TorchDispatchMode), so
    autocast's own casts show up as ``_to_copy``. Views and detaches (``skip``) are left out:
    they move no data.
    Taught in notebooks/01_mixed_precision.ipynb, "4.1 Which ops run in which dtype".
    """
    rec = OpRecorder()
    if dtype is None:
        with rec:
            fn()
    else:
        with torch.autocast(device_type=device_type, dtype=dtype), rec:
            fn()
    counts = Counter((c.name, _short(c.inputs), _short(c.outputs)) for c in rec.ops)
    return [
        {"op": op, "inputs": ins, "output": outs, "calls": n}
        for (op, ins, outs), n in counts.items()
        if op not in skip
    ]


def bf16_support() -> dict[str, Any]:
    """Can this torch run bf16 matmuls natively here? Flags to read next to a bf16 timing.

    avx512_bf16 / amx_tile: what the CPU has (/proc/cpuinfo);
    torch_kernels: torch's vector kernels (ATEN_CPU_CAPABILITY can lower them);
    onednn_bf16: whether oneDNN, which runs CPU bf16 matmuls, may use bf16 instructions
    (False when the CPU lacks them or ONEDNN_MAX_CPU_ISA forbids them): without it bf16 is
    emulated (convert to fp32, compute, round back) and is usually slower than fp32.
    Taught in notebooks/01_mixed_precision.ipynb, "4.3 Is it faster here? Measured, not assumed".
    """
    from labkit import env

    feats = env.cpu_features()
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        onednn = False
    return {
        "avx512_bf16": feats.get("avx512_bf16", False),
        "amx_tile": feats.get("amx_tile", False),
        "torch_kernels": torch.backends.cpu.get_cpu_capability(),
        "onednn_bf16": onednn,
    }


def bf16_verdict(support: dict[str, Any], results: dict[str, tuple[float, bool]]) -> str:
    """One sentence from this run: what the flags predict for bf16 vs fp32, and what happened.

    ``support``: bf16_support(); ``results``: {workload: (speed-up fp32/bf16, clear)} from
    bench.compare (speed-up > 1: bf16 faster; clear: the IQR of the ratio excludes 1).
    Taught in notebooks/01_mixed_precision.ipynb, "4.3 Is it faster here? Measured, not assumed".
    """
    faster = [n for n, (r, clear) in results.items() if clear and r > 1]
    slower = [n for n, (r, clear) in results.items() if clear and r < 1]
    unclear = [n for n in results if n not in faster and n not in slower]
    seen = "; ".join(
        f"{label} on {', '.join(names)}"
        for label, names in (
            ("faster", faster),
            ("slower", slower),
            ("no clear difference", unclear),
        )
        if names
    )
    if support["onednn_bf16"]:
        head = "Native bf16 instructions are usable here, so bf16 should win on large matmuls."
        ok = bool(faster)
        why = "a busy machine or layers too small to gain can hide it"
    else:
        head = (
            "No native bf16 instructions are usable here (emulated bf16), so bf16 should be slower."
        )
        ok = not faster
        why = "check the flags above"
    tail = "as expected." if ok else f"not what the flags predict ({why})."
    return f"{head} Measured: bf16 {seen} - {tail}"


def amp_train_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    dtype: torch.dtype = torch.bfloat16,
    scaler: torch.amp.GradScaler | None = None,
    max_grad_norm: float | None = None,
) -> float:
    """One mixed-precision training step on x's device; returns the loss.

    Forward under torch.autocast(device_type, dtype); the weights stay fp32 (master weights).
    fp16 needs a GradScaler: scaler.scale(loss).backward(), scaler.unscale_(optimizer) before
    clipping, scaler.step(optimizer), scaler.update(). bf16 has fp32's exponent range: no
    scaler needed.
    Taught in notebooks/01_mixed_precision.ipynb, "4.2 Does bf16 training still learn?".
    """
    device_type = x.device.type
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device_type, dtype=dtype):
        loss = nn.functional.cross_entropy(model(x), y)
    if scaler is None:
        loss.backward()
        if max_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        if max_grad_norm is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
    return float(loss.detach())


def cuda_fp16_training(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 50, lr: float = 0.05
) -> dict[str, Any]:
    """Train ``model`` on a CUDA GPU with autocast fp16 + GradScaler; report losses and scales.

    Raises labkit.MissingDependency (with what to do) when there is no CUDA GPU.
    Taught in notebooks/01_mixed_precision.ipynb, "4.4 CUDA: fp16 autocast + GradScaler".
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    dev = require_cuda("CUDA autocast fp16 + GradScaler")
    model = model.to(dev)
    x, y = x.to(dev), y.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda")
    losses, scales = [], []
    for _ in range(steps):
        scales.append(scaler.get_scale())
        losses.append(amp_train_step(model, x, y, opt, dtype=torch.float16, scaler=scaler))
    return {"losses": losses, "scales": scales, "final_scale": scaler.get_scale()}


# --------------------------------------------------------------------------- plumbing


def _check_float_dtype(dtype: object) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"dtype must be a floating-point torch.dtype (e.g. torch.float16), got {dtype!r}."
        )


def _check_scale(scale: object, name: str) -> float:
    """A loss scale is a finite float > 0 (a negative or inf scale silently breaks training)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating)) or not scale > 0:
        raise ValueError(
            f"{name} must be a float > 0 (a loss scale such as 65536.0), got {scale!r}"
            + (
                ": a scale that backed off to 0 means every step overflowed - look for a real "
                "inf/NaN in the forward pass (torch.autograd.detect_anomaly())."
                if scale == 0
                else "."
            )
        )
    v = float(scale)
    with np.errstate(over="ignore"):
        as_f32 = float(np.float32(v))
    if not math.isfinite(v) or not math.isfinite(as_f32):
        raise ValueError(f"{name} must be finite in float32 (<= 3.4e38), got {scale!r}.")
    return v


def _check_factors(growth_factor: object, backoff_factor: object) -> None:
    if (
        isinstance(growth_factor, bool)
        or not isinstance(growth_factor, (int, float))
        or not growth_factor > 1.0
    ):
        raise ValueError(f"growth_factor must be > 1 (e.g. 2.0), got {growth_factor!r}.")
    if (
        isinstance(backoff_factor, bool)
        or not isinstance(backoff_factor, (int, float))
        or not 0.0 < backoff_factor < 1.0
    ):
        raise ValueError(f"backoff_factor must be in (0, 1) (e.g. 0.5), got {backoff_factor!r}.")


def _check_interval(growth_interval: object) -> None:
    if type(growth_interval) is not int or growth_interval < 1:  # bool is not accepted
        raise ValueError(f"growth_interval must be a positive int, got {growth_interval!r}.")


def _params(params: Iterable[nn.Parameter] | torch.optim.Optimizer) -> list[torch.Tensor]:
    if isinstance(params, torch.optim.Optimizer):
        return [p for g in params.param_groups for p in g["params"]]
    return list(params)


def _short(dtypes: tuple[torch.dtype, ...]) -> str:
    """(torch.float32, torch.int64) -> 'float32, int64'."""
    return ", ".join(str(d).removeprefix("torch.") for d in dtypes)
