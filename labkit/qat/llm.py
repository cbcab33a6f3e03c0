"""How LLMs are quantised: group-wise weight-only INT4, GPTQ, AWQ, SmoothQuant (W8A8).

A Linear layer y = x W^T + b with W (out, in) and its calibration inputs X (in, n), n samples.

- Group-wise round-to-nearest (RTN): each row of W is cut into groups of ``group_size``
  consecutive input columns; each group gets its own asymmetric grid of 2^b levels spanning
  its own [min, max]:  step = (max - min) / (2^b - 1),  w_hat = min + step * round((w - min) / step).
  Storage: b bits a weight plus one (step, min) pair a group (two fp16: 32 / group_size bits
  a weight more, 0.25 at group 128).
- GPTQ (Frantar et al. 2022) minimises the layer's output error ||(W - W_hat) X||^2 =
  tr(dW H dW^T) with H = X X^T: it quantises the columns left to right and, after each one,
  spreads that column's rounding error over the columns not yet quantised, weighted by the
  inverse Hessian (the optimal brain surgeon update, through U = chol(H^-1) upper).
- AWQ (Lin et al. 2023): scale each input channel j by s_j = mean|x_j|^a before quantising
  (and x_j by 1/s_j), so the channels the activations use most get the finest grid; a
  is searched on the calibration data.
- SmoothQuant (Xiao et al. 2022), for W8A8: divide the activation's outlier channels by
  s_j = max|x_j|^a / max|W_j|^(1-a) and multiply the weight's columns by it: an exact rewrite
  in float that moves the quantisation difficulty from the activation to the weight.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import torch
from torch import nn

from labkit import quant
from labkit.core import models
from labkit.core.errors import check_bits, check_int, check_model, check_number, check_tensor

METHODS = ("rtn", "gptq", "awq")


# --------------------------------------------------------------------------- group-wise RTN


def fake_quantize_groupwise(w: torch.Tensor, bits: int = 4, group_size: int = 128) -> torch.Tensor:
    """Group-wise asymmetric min-max round-to-nearest of w (out, in), quantised and dequantised.

    Each (row, group of ``group_size`` consecutive columns) has its own grid of 2^bits levels
    from the group's min to its max (not widened to include 0):
        step = (max - min) / (2^bits - 1),   w_hat = min + step * round((w - min) / step),
    so |w - w_hat| <= step / 2; a constant group comes back unchanged. group_size = in is
    per-row quantisation. Returns a new tensor of w's shape and dtype.

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_groupwise(w, bits, group_size)
    out, n = w.shape
    g = w.detach().reshape(out, n // group_size, group_size)  # (out, groups, group_size)
    lo, hi = g.amin(dim=2, keepdim=True), g.amax(dim=2, keepdim=True)  # (out, groups, 1) each
    return _to_grid(g, lo, hi, bits).reshape(out, n)


def _to_grid(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: int) -> torch.Tensor:
    """w rounded to the grid lo + step * k, k = 0 .. 2^bits - 1 (clamped); step 0 gives lo."""
    return _snap(w, lo, *_grid(lo, hi, bits), 2**bits - 1)


def _grid(lo: torch.Tensor, hi: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(step, the step to divide by): a constant group (step 0) divides by 1 and keeps lo."""
    step = (hi - lo) / (2**bits - 1)
    return step, torch.where(step > 0, step, torch.ones_like(step))


def _snap(
    w: torch.Tensor, lo: torch.Tensor, step: torch.Tensor, safe: torch.Tensor, levels: int
) -> torch.Tensor:
    return lo + torch.clamp(torch.round((w - lo) / safe), 0, levels) * step


# --------------------------------------------------------------------------- GPTQ


def gptq_quantize(
    w: torch.Tensor,
    h: torch.Tensor,
    bits: int = 4,
    group_size: int = 128,
    damp: float = 0.01,
) -> torch.Tensor:
    """GPTQ: w (out, in) quantised column by column with error feedback through H = X X^T (in, in).

    H += damp * mean(diag H) * I (an input that never fires, diag 0, gets 1 there, as in the
    reference); U = upper Cholesky factor of H^-1. Columns i = 0 .. in-1, left to right: when
    a group starts, its grid (``fake_quantize_groupwise``'s rule) is taken from the columns as
    they are now (already updated); column i goes to its grid (Q_i); then every later column
    absorbs the error:   W[:, j] -= (W[:, i] - Q[:, i]) / U[i, i] * U[i, j]   for j > i.
    Updates are applied lazily a block of columns at a time, as in the reference. H = c I
    makes every U[i, j] (j != i) zero: plain group-wise RTN. Any positive multiple of H gives
    the same result. Returns a new tensor of w's shape and dtype.

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_gptq(w, h, bits, group_size, damp)
    return _gptq_columns(w, _inverse_cholesky(h, damp), bits, group_size)


def _gptq_columns(w: torch.Tensor, u: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """GPTQ's column loop, given U = chol((H + damp)^-1) upper (in, in)."""
    u = u.to(w.dtype)
    W = w.detach().clone()  # (out, in): the columns not yet quantised get updated in place
    Q = torch.empty_like(W)
    n, levels = W.shape[1], 2**bits - 1
    block = group_size * -(-128 // group_size)  # a whole number of groups, >= 128 columns
    for b0 in range(0, n, block):
        b1 = min(b0 + block, n)
        err = torch.empty_like(W[:, b0:b1])  # (out, block): scaled errors of this block
        for i in range(b0, b1):
            if (i - b0) % group_size == 0:  # a group starts: its grid from the updated columns
                grp = W[:, i : i + group_size]  # (out, group_size)
                lo = grp.amin(dim=1)  # (out,)
                step, safe = _grid(lo, grp.amax(dim=1), bits)  # (out,) each
            Q[:, i] = _snap(W[:, i], lo, step, safe, levels)
            e = err[:, i - b0]  # (out,): a view, filled in place
            torch.div(W[:, i] - Q[:, i], u[i, i], out=e)
            W[:, i:b1].addr_(e, u[i, i:b1], alpha=-1)  # W[:, j] -= e * U[i, j], j in the block
        W[:, b1:] -= err @ u[b0:b1, b1:]  # the rest of the matrix, lazily: (out, n - b1)
    return Q


def _inverse_cholesky(h: torch.Tensor, damp: float) -> torch.Tensor:
    """U (upper) with U^T U = (H + damp * mean(diag H) * I)^-1, in float64."""
    H = h.detach().to(torch.float64).clone()  # (in, in)
    diag = torch.arange(H.shape[0])
    dead = H[diag, diag] == 0
    H[diag[dead], diag[dead]] = 1.0  # an input that is always 0: any weight works there
    H[diag, diag] += damp * H[diag, diag].mean()
    L, info = torch.linalg.cholesky_ex(H)
    if info:
        raise ValueError(
            "h + damp * mean(diag h) * I is not positive definite: h must be X X^T of "
            "calibration inputs (symmetric, >= 0); raise damp or use more samples."
        )
    return torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True)


def output_error(w: torch.Tensor, w_hat: torch.Tensor, h: torch.Tensor) -> float:
    """The layer's squared output error on the calibration inputs, ||(W - W_hat) X||^2 =
    tr(dW H dW^T) with H = X X^T: what GPTQ and AWQ minimise. w, w_hat (out, in), h (in, in).

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_output_error(w, w_hat, h)
    dw = (w.detach() - w_hat.detach()).double()  # (out, in)
    return float(((dw @ h.double()) * dw).sum())


# --------------------------------------------------------------------------- AWQ


def awq_scales(
    w: torch.Tensor,
    h: torch.Tensor,
    act_mean: torch.Tensor,
    bits: int = 4,
    group_size: int = 128,
    grid: int = 20,
) -> torch.Tensor:
    """AWQ's per-input-channel scale s (in,): s = act_mean^a / sqrt(max * min of it), with
    a in {0, 1/grid, ..., (grid-1)/grid} chosen to minimise the output error
    ||(W - Q(W diag(s)) diag(s)^-1) X||^2 = tr(dW H dW^T) (``output_error``), Q =
    ``fake_quantize_groupwise``. a = 0 (s = 1) is plain RTN, so AWQ never does worse on the
    calibration data. Quantise with  w_hat = Q(w * s) / s.
    (AWQ also searches a clipping range per group; not done here.)

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_awq(w, h, act_mean, bits, group_size, grid)
    x = act_mean.detach().to(w.dtype).clamp(min=1e-8)  # (in,): mean |x_j| over the samples
    a = torch.arange(grid, dtype=w.dtype) / grid  # (grid,): the exponents tried, all at once
    s = x.pow(a[:, None])  # (grid, in)
    s = s / (s.amax(1, keepdim=True) * s.amin(1, keepdim=True)).sqrt()  # centred around 1
    out, n = w.shape
    ws = (w.detach() * s[:, None, :]).reshape(grid * out, n)  # (grid * out, in)
    dw = w.detach() - fake_quantize_groupwise(ws, bits, group_size).view(grid, out, n) / s[:, None]
    hw = h.detach().to(w.dtype)  # (in, in); the search compares errors, w's precision will do
    err = ((dw.reshape(grid * out, n) @ hw).view(grid, out, n) * dw).sum((1, 2))  # (grid,)
    return s[int(torch.argmin(err))]  # tr(dW H dW^T) as output_error, smallest: the first


# --------------------------------------------------------------------------- SmoothQuant


def smoothquant_scales(
    act_absmax: torch.Tensor, weight_absmax: torch.Tensor, alpha: float = 0.5
) -> torch.Tensor:
    """SmoothQuant's per-input-channel scale (in,):  s_j = act_absmax_j^alpha / weight_absmax_j^(1 - alpha),

    act_absmax_j = max |x_j| over calibration tokens, weight_absmax_j = max over output rows of
    |W[:, j]|. alpha = 1 moves the whole range into the weight (every activation channel's
    max becomes 1), alpha = 0 into the activation (every weight column's max becomes 1). A
    channel with a zero range on either side gets s = 1 (nothing to migrate).

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_smoothquant(act_absmax, weight_absmax, alpha)
    a, w = act_absmax.detach(), weight_absmax.detach().to(act_absmax.dtype)  # (in,) each
    s = a.pow(alpha) / w.pow(1 - alpha)
    return torch.where((a > 0) & (w > 0), s, torch.ones_like(s))


def smooth_linear(linear: nn.Linear, s: torch.Tensor) -> nn.Linear:
    """A new Linear with weight W diag(s) (column j times s_j) and the same bias, so that
    smooth_linear(linear, s)(x / s) == linear(x) in float (an exact rewrite; the division of
    x by s is folded into the previous LayerNorm or Linear in a real model).

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_smooth_linear(linear, s)
    out = copy.deepcopy(linear)
    with torch.no_grad():
        out.weight.copy_(linear.weight * s.to(linear.weight.dtype))  # (out, in) * (in,)
    return out


def w8a8_linear(linear: nn.Linear, x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """The layer's output with its input and weight fake-quantised (W8A8 by default): the
    activation x (..., in) per tensor, symmetric MinMax (one scale for all channels, as int8
    GEMM kernels need), the weight per output channel, symmetric MinMax (notebook 05's
    ``quant.fake_quantize_minmax``). Returns (..., out).

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_w8a8(linear, x, bits)
    xq = quant.fake_quantize_minmax(x.detach(), bits, symmetric=True)  # (..., in)
    wq = quant.fake_quantize_minmax(linear.weight.detach(), bits, symmetric=True, axis=0)
    return nn.functional.linear(xq, wq, linear.bias)  # (..., out)


# --------------------------------------------------------------------------- whole models


class LinearStats(NamedTuple):
    """Calibration statistics of one Linear's input x (n samples of ``in`` features)."""

    h: torch.Tensor  # (in, in): X X^T, float64
    act_mean: torch.Tensor  # (in,): mean |x_j|
    act_absmax: torch.Tensor  # (in,): max |x_j|
    samples: int
    u: torch.Tensor  # (in, in): GPTQ's chol((H + 0.01 mean(diag H) I)^-1), computed once


def block_linears(model: nn.Module) -> list[str]:
    """Names of the nn.Linear layers inside the model's TransformerBlocks (qkv, proj, fc, out
    of each block): the layers LLM weight quantisation targets (embeddings, norms and the
    output head stay in float).

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    check_model(model, "model")
    blocks = [n for n, m in model.named_modules() if isinstance(m, models.TransformerBlock)]
    return [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(n.startswith(b + ".") for b in blocks)
    ]


@torch.no_grad()
def layer_inputs(model: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """{name: the input of that sub-module, flattened to (tokens, in)} for one forward pass
    of x through ``model`` (eval mode), caught with forward pre-hooks.

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_layer_inputs(model, x, names)
    inputs: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Any:
        def hook(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            inputs[name] = args[0].reshape(-1, args[0].shape[-1])  # (tokens, in)

        return hook

    handles = [model.get_submodule(n).register_forward_pre_hook(keep(n)) for n in names]
    try:
        model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    return inputs


def linear_stats(model: nn.Module, x: torch.Tensor) -> dict[str, LinearStats]:
    """One forward pass of the calibration input x through the float model; for every layer of
    ``block_linears``: H = X X^T, mean |x_j| and max |x_j| of its input (all tokens).

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    inputs = layer_inputs(model, x, block_linears(model))  # checks model and x
    out = {}
    for n, X in inputs.items():
        X = X.double()  # (tokens, in): rows are samples, so X X^T is X^T X here
        h = X.T @ X  # (in, in)
        out[n] = LinearStats(
            h, X.abs().mean(0), X.abs().amax(0), X.shape[0], _inverse_cholesky(h, 0.01)
        )
    return out


def quantize_linears(
    model: nn.Module,
    method: str,
    bits: int = 4,
    group_size: int = 128,
    stats: dict[str, LinearStats] | None = None,
) -> nn.Module:
    """A copy of ``model`` whose ``block_linears`` weights are group-wise fake-quantised by
    ``method``: "rtn" (fake_quantize_groupwise), "gptq" (gptq_quantize with stats' H, damp
    0.01; its inverse Cholesky factor is computed once, in linear_stats) or
    "awq" (Q(W s) / s with awq_scales). Weight-only: activations stay float.
    Every layer's H comes from the float model's inputs (one calibration pass); the reference
    GPTQ instead feeds each block the outputs of the blocks already quantised.

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_quantize_linears(model, method, bits, group_size, stats)
    out = copy.deepcopy(model)
    with torch.no_grad():
        for n in block_linears(out):
            layer = out.get_submodule(n)
            w = layer.weight  # (out, in)
            if method == "rtn":
                w_hat = fake_quantize_groupwise(w, bits, group_size)
            elif method == "gptq":
                w_hat = _gptq_columns(w, stats[n].u, bits, group_size)  # type: ignore[index]
            else:
                st = stats[n]  # type: ignore[index]
                s = awq_scales(w, st.h, st.act_mean, bits, group_size)  # (in,)
                w_hat = fake_quantize_groupwise(w * s, bits, group_size) / s
            layer.weight.copy_(w_hat)
    return out


def groupwise_size_bytes(model: nn.Module, bits: int | None = None, group_size: int = 128) -> int:
    """Bytes of ``model`` with its ``block_linears`` weights stored at ``bits`` bits in groups
    of ``group_size`` (one fp16 step and one fp16 min a group: 4 bytes), everything else
    (biases, embeddings, norms, the head) float32. bits=None: all float32.

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_size(model, bits, group_size)
    total = 4 * sum(p.numel() for p in model.parameters())
    for n in block_linears(model) if bits is not None else []:
        numel = model.get_submodule(n).weight.numel()
        total += -4 * numel + -(-numel * bits // 8) + 4 * (numel // group_size)
    return total


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_weight(w: Any, name: str = "w") -> None:
    check_tensor(w, name)
    if w.ndim != 2 or not w.dtype.is_floating_point or not w.numel():
        raise ValueError(f"{name} must be a non-empty float (out, in) weight matrix, got "
                         f"shape {tuple(w.shape)}, dtype {w.dtype}.")  # fmt: skip
    if not torch.isfinite(w).all():
        raise ValueError(f"{name} contains inf or NaN.")


def _check_groupwise(w: Any, bits: Any, group_size: Any) -> None:
    _check_weight(w)
    check_bits(bits)
    check_int(group_size, "group_size", low=1)
    if w.shape[1] % group_size:
        raise ValueError(
            f"group_size={group_size} must divide the {w.shape[1]} input columns of w "
            "(use a divisor, or group_size = in for one group a row)."
        )


def _check_square_h(h: Any, n: int) -> None:
    check_tensor(h, "h")
    if h.ndim != 2 or tuple(h.shape) != (n, n):
        raise ValueError(f"h must be the square (in, in) = ({n}, {n}) matrix X X^T, "
                         f"got shape {tuple(h.shape)}.")  # fmt: skip
    if not torch.isfinite(h).all():
        raise ValueError("h contains inf or NaN.")


def _check_gptq(w: Any, h: Any, bits: Any, group_size: Any, damp: Any) -> None:
    _check_groupwise(w, bits, group_size)
    _check_square_h(h, w.shape[1])
    check_number(damp, "damp", low=0, high=10)


def _check_output_error(w: Any, w_hat: Any, h: Any) -> None:
    _check_weight(w)
    _check_weight(w_hat, "w_hat")
    if w.shape != w_hat.shape:
        raise ValueError(f"w_hat has shape {tuple(w_hat.shape)}, w {tuple(w.shape)}.")
    _check_square_h(h, w.shape[1])


def _check_awq(w: Any, h: Any, act_mean: Any, bits: Any, group_size: Any, grid: Any) -> None:
    _check_groupwise(w, bits, group_size)
    _check_square_h(h, w.shape[1])
    check_tensor(act_mean, "act_mean")
    if act_mean.shape != (w.shape[1],) or not bool((act_mean >= 0).all()):
        raise ValueError(f"act_mean must be (in,) = ({w.shape[1]},) mean |x_j| values >= 0.")
    check_int(grid, "grid", low=1, high=1000)


def _check_smoothquant(act_absmax: Any, weight_absmax: Any, alpha: Any) -> None:
    check_number(alpha, "alpha", low=0, high=1)
    for name, t in (("act_absmax", act_absmax), ("weight_absmax", weight_absmax)):
        check_tensor(t, name)
        if t.ndim != 1 or not t.dtype.is_floating_point or not t.numel():
            raise ValueError(
                f"{name} must be a non-empty 1-D float tensor (one value an input channel)."
            )
        if not bool(torch.isfinite(t).all() and (t >= 0).all()):
            raise ValueError(f"{name} must hold finite values >= 0 (maxima of |x|).")
    if act_absmax.shape != weight_absmax.shape:
        raise ValueError(f"act_absmax {tuple(act_absmax.shape)} and weight_absmax "
                         f"{tuple(weight_absmax.shape)} must have one value per input channel.")  # fmt: skip


def _check_smooth_linear(linear: Any, s: Any) -> None:
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"linear must be an nn.Linear, got {type(linear).__name__}.")
    check_tensor(s, "s")
    if s.shape != (linear.in_features,) or not bool(torch.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"s must hold {linear.in_features} finite scales > 0 (one per input).")


def _check_w8a8(linear: Any, x: Any, bits: Any) -> None:
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"linear must be an nn.Linear, got {type(linear).__name__}.")
    check_tensor(x, "x")
    if x.shape[-1:] != (linear.in_features,):
        raise ValueError(f"x must end in {linear.in_features} features, got {tuple(x.shape)}.")
    check_bits(bits)


def _check_layer_inputs(model: Any, x: Any, names: Any) -> None:
    check_model(model, "model")
    check_tensor(x, "x", floating=False)  # token ids, or features for a model without embeddings
    known = {n for n, _ in model.named_modules()}
    if isinstance(names, str) or not all(n in known for n in names):
        raise ValueError(f"names must be a list of sub-module names of model, got {names!r}.")


def _check_size(model: Any, bits: Any, group_size: Any) -> None:
    check_model(model, "model")
    for n in block_linears(model) if bits is not None else []:
        _check_groupwise(model.get_submodule(n).weight, bits, group_size)


def _check_quantize_linears(
    model: Any, method: Any, bits: Any, group_size: Any, stats: Any
) -> None:
    _check_size(model, bits, group_size)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if method != "rtn" and (not isinstance(stats, dict) or set(stats) != set(block_linears(model))):
        raise ValueError(f"method {method!r} needs stats = linear_stats(model, x_calib).")
