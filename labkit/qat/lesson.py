"""PTQ and QAT of the course models: the fake-quantised layer, static/dynamic PTQ, QAT training.

Every Conv2d / Linear of a model is wrapped in a ``QuantLayer`` that fake-quantises

- its weights W (C_out, ...): symmetric, per output channel (or per tensor), MinMax of the
  current weights:  S_c = max|W_c| / (2^(b-1) - 1),  W_hat = S_c * clamp(round(W / S_c), -2^(b-1), 2^(b-1) - 1);
- its input activation x (N, ...): asymmetric per tensor, q in [0, 2^b - 1], with (S, Z) from
  a calibration observer (static PTQ), from x's own min/max on every call (dynamic PTQ), or
  from an exponential moving average of min/max while training (QAT).

Fake quantisation computes x_hat = S (clamp(round(x/S) + Z, qmin, qmax) - Z) in float: the
model behaves numerically like an integer model, but runs float kernels (a simulator; the
speed comes from int8 kernels, compared in labkit/qat/runtimes.py).
QAT trains through round() with the straight-through estimator (``quant.STEFakeQuant``, from
notebook 05): d x_hat / d x = 1 where round(x/S) + Z lies in [qmin, qmax], 0 where it was clamped.
Conv -> BatchNorm pairs are folded first (labkit.models.fold_batchnorm: PyTorch's fold; notebook
07 teaches how it works), as a deployer would.

Size accounting (``size_bytes``): a quantised layer stores numel(W) * b / 8 bytes of weights,
one float32 scale per output channel, float32 biases, and one (S, Z) pair (8 bytes) for its
input activation; everything else stays float32.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labkit import quant
from labkit.core import models
from labkit.core.errors import (
    check_bits,
    check_finite,
    check_int,
    check_loader,
    check_model,
    check_number,
    check_positive,
    check_tensor,
)

MODES = ("float", "static", "dynamic", "qat")
Bits = int | None | Mapping[str, int | None]


# --------------------------------------------------------------------------- the wrapped layer
# Fake quantisation with the straight-through gradient is notebook 05's quant.fake_quantize
# (quant.STEFakeQuant); Exercise 1 of notebook 06 has the learner write it from scratch.


def weight_qparams(
    w: torch.Tensor, bits: int, per_channel: bool = True
) -> tuple[torch.Tensor, int, int]:
    """Symmetric MinMax weight scale: S_c = max|W_c| / (2^(b-1) - 1), shaped (C_out, 1, ...).

    Returns (scale, qmin, qmax); the zero point is 0. Per tensor: one S broadcast to C_out.
    S is ``quant.symmetric_scale`` (notebook 05), shaped to broadcast against w.

    Used by QuantLayer.quantized_weight (labkit/qat/lesson.py).
    """
    _check_weight_qparams(w, bits)
    qmin, qmax = quant.qrange(bits, symmetric=True)
    scale = quant.symmetric_scale(w, bits, axis=0 if per_channel else None)  # (C_out,) or ()
    return scale.expand(w.shape[0]).reshape(-1, *([1] * (w.ndim - 1))), qmin, qmax


class QuantLayer(nn.Module):
    """A Conv2d or Linear whose weights (w_bits) and input activation (a_bits) are fake-quantised.

    mode "static": activation (S, Z) fixed by ``calibrate_activations``; "dynamic": from each
    input's own min/max; "qat": EMA of min/max while training (momentum 0.1), frozen in eval;
    "float": no activation quantisation. w_bits/a_bits None = keep float.

    Used by prepare (labkit/qat/lesson.py), which wraps every layer of a model.
    """

    def __init__(
        self,
        layer: nn.Module,
        w_bits: int | None = 8,
        a_bits: int | None = 8,
        mode: str = "static",
        per_channel: bool = True,
        momentum: float = 0.1,
    ) -> None:
        _check_quant_layer(layer, w_bits, a_bits, mode, momentum)
        super().__init__()
        self.layer = layer
        self.w_bits, self.a_bits = w_bits, a_bits
        self.mode = mode
        self.per_channel = per_channel
        self.momentum = momentum
        self.observer: Any = None  # set by calibrate_activations()
        self._act_cache: tuple[tuple[float, float, int], Any] | None = None
        self.register_buffer("act_min", torch.tensor(math.inf))
        self.register_buffer("act_max", torch.tensor(-math.inf))

    def extra_repr(self) -> str:
        return f"w_bits={self.w_bits}, a_bits={self.a_bits}, mode={self.mode!r}"

    def act_qparams(self) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """Asymmetric (S, Z, qmin, qmax) covering [min(act_min, 0), max(act_max, 0)].

        Cached until the range or the bit width changes (a frozen range is looked up, not
        recomputed, on every call).
        """
        _check_act_range(self.a_bits, self.act_min, self.act_max)
        key = (float(self.act_min), float(self.act_max), self.a_bits)
        if self._act_cache is not None and self._act_cache[0] == key:
            return self._act_cache[1]
        qp = quant.compute_qparams(key[0], key[1], self.a_bits, False)
        out = (torch.tensor(qp.scale), torch.tensor(float(qp.zero_point)), qp.qmin, qp.qmax)
        self._act_cache = (key, out)
        return out

    def _quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.a_bits is None or self.mode == "float":
            return x
        if self.observer is not None:  # calibrating: observe, do not quantise
            self.observer.observe(x)
            return x
        if self.mode == "dynamic":
            qp = quant.compute_qparams(float(x.min()), float(x.max()), self.a_bits, False)
            s, z = torch.tensor(qp.scale), torch.tensor(float(qp.zero_point))  # float32, ()
            return quant.STEFakeQuant.apply(x, s, z, qp.qmin, qp.qmax)
        if self.mode == "qat" and self.training:
            lo, hi = x.detach().min(), x.detach().max()
            with torch.no_grad():
                if torch.isfinite(self.act_min):
                    self.act_min.lerp_(lo, self.momentum)
                    self.act_max.lerp_(hi, self.momentum)
                else:
                    self.act_min.copy_(lo)
                    self.act_max.copy_(hi)
        s, z, qmin, qmax = self.act_qparams()
        return quant.STEFakeQuant.apply(x, s, z, qmin, qmax)

    def quantized_weight(self) -> torch.Tensor:
        """The fake-quantised weight (with the STE, so QAT gradients reach the float weight)."""
        w = self.layer.weight
        if self.w_bits is None:
            return w
        s, qmin, qmax = weight_qparams(w, self.w_bits, self.per_channel)  # s: (C_out, 1, ...)
        return quant.STEFakeQuant.apply(w, s, torch.zeros_like(s), qmin, qmax)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._quantize_input(x)
        w = self.quantized_weight()
        if isinstance(self.layer, nn.Conv2d):
            c = self.layer
            return F.conv2d(x, w, c.bias, c.stride, c.padding, c.dilation, c.groups)
        return F.linear(x, w, self.layer.bias)


# --------------------------------------------------------------------------- building models


def quantizable_layers(model: nn.Module) -> list[str]:
    """Names of the Conv2d / Linear sub-modules, in forward order of registration.

    Taught in notebooks/06_ptq_and_qat.ipynb, "2. The model to quantise".
    """
    check_model(model, "model")
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _per_layer(bits: Bits, names: list[str], what: str) -> dict[str, int | None]:
    if isinstance(bits, Mapping):
        unknown = set(bits) - set(names)
        if unknown:
            raise ValueError(f"{what}: unknown layers {sorted(unknown)}; known: {names}.")
        return {n: bits.get(n) for n in names}
    return dict.fromkeys(names, bits)


def prepare(
    model: nn.Module,
    w_bits: Bits = 8,
    a_bits: Bits = 8,
    *,
    mode: str = "static",
    per_channel: bool = True,
) -> nn.Sequential:
    """A copy of ``model`` with BN folded and every Conv2d/Linear wrapped in a QuantLayer.

    w_bits/a_bits: one int for all layers, None for float, or {layer name: bits} (names from
    ``quantizable_layers`` of the *folded* model) for mixed precision.

    Used by static_ptq and dynamic_ptq (labkit/qat/lesson.py).
    """
    folded = models.fold_batchnorm(model)  # checks that model is an nn.Module
    names = quantizable_layers(folded)
    wb, ab = _per_layer(w_bits, names, "w_bits"), _per_layer(a_bits, names, "a_bits")
    for name in names:
        parent, _, child = name.rpartition(".")
        holder = folded.get_submodule(parent) if parent else folded
        layer = getattr(holder, child)
        setattr(holder, child, QuantLayer(layer, wb[name], ab[name], mode, per_channel))
    return folded.eval()


def quant_layers(model: nn.Module) -> dict[str, QuantLayer]:
    """{name of the wrapped layer: QuantLayer} (names as in ``quantizable_layers``).

    Taught in notebooks/06_ptq_and_qat.ipynb, "3. Post-training quantisation: static vs dynamic".
    """
    check_model(model, "model")
    return {n: m for n, m in model.named_modules() if isinstance(m, QuantLayer)}


# --------------------------------------------------------------------------- PTQ


@torch.no_grad()
def calibrate_activations(
    qmodel: nn.Module,
    batches: Iterable[torch.Tensor],
    observer: str = "minmax",
    **observer_kwargs: Any,
) -> nn.Module:
    """Static PTQ calibration: run ``batches`` through ``qmodel`` (float activations), let one
    ``labkit.quant`` observer per layer see each layer's input, then fix (act_min, act_max) to
    the observer's clipping range. Returns qmodel (eval mode).

    (One observer on a list of tensors: ``quant.calibrate_observer``.)

    Used by static_ptq (labkit/qat/lesson.py).
    """
    batches = _check_calibration(qmodel, batches, observer)
    layers = [m for m in qmodel.modules() if isinstance(m, QuantLayer) and m.a_bits is not None]
    for m in layers:
        m.observer = quant.OBSERVERS[observer](**observer_kwargs)
    qmodel.eval()
    try:
        for x in batches:
            qmodel(x)  # each QuantLayer's observer sees its input
    finally:
        observers = [(m, m.observer) for m in layers]
        for m in layers:
            m.observer = None
    for m, o in observers:
        lo, hi = o.range(m.a_bits, False)
        m.act_min.fill_(lo)
        m.act_max.fill_(hi)
    return qmodel


def calibration_batches(loader: Iterable[Any], num_batches: int = 4) -> list[torch.Tensor]:
    """The inputs x of the first ``num_batches`` (x, y) batches of a loader.

    Taught in notebooks/06_ptq_and_qat.ipynb, "2. The model to quantise".
    """
    _check_calibration_batches(loader, num_batches)
    return [x for x, _ in itertools.islice(loader, num_batches)]


def static_ptq(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    bits: Bits = 8,
    a_bits: Bits | str = "same",
    *,
    observer: str = "minmax",
    per_channel: bool = True,
) -> nn.Module:
    """Static PTQ: fold BN, wrap, calibrate activation ranges on ``batches`` (no training).

    Taught in notebooks/06_ptq_and_qat.ipynb, "3. Post-training quantisation: static vs dynamic".
    """
    ab = bits if a_bits == "same" else a_bits
    q = prepare(model, bits, ab, mode="static", per_channel=per_channel)  # type: ignore[arg-type]
    return calibrate_activations(q, batches, observer)


def dynamic_ptq(model: nn.Module, bits: Bits = 8, *, per_channel: bool = True) -> nn.Module:
    """Dynamic PTQ: weights quantised offline, activation (S, Z) from each input's min/max.

    Taught in notebooks/06_ptq_and_qat.ipynb, "3. Post-training quantisation: static vs dynamic".
    """
    return prepare(model, bits, bits, mode="dynamic", per_channel=per_channel)


# --------------------------------------------------------------------------- QAT


def qat_model(
    model: nn.Module, batches: Iterable[torch.Tensor], bits: Bits = 4, *, per_channel: bool = True
) -> nn.Module:
    """Start of QAT: the static-PTQ model (calibrated ranges) switched to mode "qat".

    Taught in notebooks/06_ptq_and_qat.ipynb, "4. Quantisation-aware training".
    """
    q = static_ptq(model, batches, bits, per_channel=per_channel)
    for m in quant_layers(q).values():
        m.mode = "qat"
    return q


def qat_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer
) -> float:
    """One QAT step: train mode (observers update), forward through the fake quantisers,
    cross-entropy, zero the old gradients, backward (STE), optimizer step. Returns the loss.

    Taught in notebooks/06_ptq_and_qat.ipynb, "Exercise 2: one QAT training step".
    """
    _check_qat_step(model, x, y, optimizer)
    model.train()
    loss = F.cross_entropy(model(x), y)  # x (N, ...) -> logits (N, classes); y (N,)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.item())


def qat_finetune(
    qmodel: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    epochs: int = 2,
    lr: float = 1e-3,
    step: Callable[..., float] = qat_step,
) -> list[float]:
    """Fine-tune a ``qat_model`` with Adam for ``epochs``; returns the mean loss per epoch.

    Taught in notebooks/06_ptq_and_qat.ipynb, "4. Quantisation-aware training".
    """
    _check_finetune(qmodel, loader, epochs, lr, step)
    opt = torch.optim.Adam(qmodel.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        losses = [step(qmodel, x, y, opt) for x, y in loader]
        history.append(sum(losses) / len(losses))
    qmodel.eval()
    return history


# --------------------------------------------------------------------------- size accounting


def size_bytes(model: nn.Module, bits: Bits = 32, *, per_channel: bool = True) -> int:
    """Bytes to store the float ``model`` (BN folded) with weights at ``bits`` (int, None/32 = float32,
    or {layer: bits}).

    quantised layer: ceil(numel(W) * b / 8) + 4 * (C_out if per_channel else 1)  (scales)
                     + 4 * numel(bias) + 8  (activation S, Z);
    everything else (and float layers): 4 bytes per element of parameters and buffers.

    Taught in notebooks/06_ptq_and_qat.ipynb, "2. The model to quantise".
    """
    _check_size_bytes(model, bits)
    folded = model if _is_folded(model) else models.fold_batchnorm(model)
    names = quantizable_layers(folded)
    per = _per_layer(None if bits == 32 else bits, names, "bits")
    total = 0
    counted: set[int] = set()
    for name in names:
        layer = folded.get_submodule(name)
        b = per[name]
        w, bias = layer.weight, getattr(layer, "bias", None)
        counted |= {id(w)} | ({id(bias)} if bias is not None else set())
        n_bias = bias.numel() if bias is not None else 0
        if b is None or b == 32:
            total += 4 * (w.numel() + n_bias)
            continue
        scales = w.shape[0] if per_channel else 1
        total += math.ceil(w.numel() * b / 8) + 4 * scales + 4 * n_bias + 8
    rest = [t for t in list(folded.parameters()) + list(folded.buffers()) if id(t) not in counted]
    rest = [t for t in rest if t.ndim > 0]  # QuantLayer's scalar act_min/act_max are counted above
    return total + sum(4 * t.numel() for t in rest)


def _is_folded(model: nn.Module) -> bool:
    return not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_weight_qparams(w: Any, bits: Any) -> None:
    """Runs every QAT step: one aminmax (NaN propagates, inf is an extreme), no isfinite pass."""
    check_bits(bits)
    if not check_tensor(w, "w").numel():
        raise ValueError("w is empty; pass a weight with at least one element.")
    lo, hi = torch.aminmax(w.detach())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("w contains NaN or inf; the training diverged (lower the learning rate).")


def _check_quant_layer(layer: Any, w_bits: Any, a_bits: Any, mode: Any, momentum: Any) -> None:
    if not isinstance(layer, nn.Conv2d | nn.Linear):
        raise ValueError(
            f"layer must be an nn.Conv2d or nn.Linear (what QuantLayer wraps), "
            f"got {type(layer).__name__}."
        )
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    for name, bits in (("w_bits", w_bits), ("a_bits", a_bits)):
        ok = isinstance(bits, int) and not isinstance(bits, bool) and 2 <= bits <= 16
        if bits is not None and not ok:
            raise ValueError(
                f"{name} must be an integer number of bits from 2 to 16 (or None: keep float), "
                f"got {bits!r}."
            )
    check_number(momentum, "momentum", low=0, high=1)


def _check_act_range(a_bits: int | None, act_min: torch.Tensor, act_max: torch.Tensor) -> None:
    if a_bits is None:
        raise ValueError("act_qparams needs a_bits: this layer keeps its input in float.")
    if not (math.isfinite(float(act_min)) and math.isfinite(float(act_max))):
        raise ValueError("no activation range yet: run calibrate_activations() (static PTQ) first.")


def _check_calibration(qmodel: Any, batches: Any, observer: Any) -> list[torch.Tensor]:
    check_model(qmodel, "qmodel")
    if observer not in quant.OBSERVERS:
        raise ValueError(f"observer must be one of {sorted(quant.OBSERVERS)}, got {observer!r}.")
    if isinstance(batches, torch.Tensor) or not isinstance(batches, Iterable):
        raise ValueError(f"batches must be a list of input tensors, got {type(batches).__name__}.")
    out = [
        check_finite(check_tensor(x, f"batches[{i}]"), f"batches[{i}]")
        for i, x in enumerate(batches)
    ]
    if not out:
        raise ValueError("batches is empty; calibration needs at least one batch of inputs.")
    return out


def _check_calibration_batches(loader: Any, num_batches: Any) -> None:
    check_int(num_batches, "num_batches", low=1, high=10_000)
    check_loader(loader)
    first = loader[0] if isinstance(loader, list | tuple) else None  # a DataLoader: not peeked
    if first is not None and not (isinstance(first, list | tuple) and len(first) == 2):
        raise ValueError(
            f"loader must yield (x, y) batches, got a list of {type(first).__name__}; "
            "a list of inputs x already is the calibration batches."
        )


def _check_qat_step(model: Any, x: Any, y: Any, optimizer: Any) -> None:
    check_model(model, "model")
    check_tensor(x, "x")
    if not isinstance(y, torch.Tensor) or y.shape[:1] != x.shape[:1]:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be a tensor of {len(x)} labels (one per row of x), got {got}.")
    if y.is_floating_point() and y.ndim == 1:
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}; use y.long().")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(
            f"optimizer must be a torch.optim.Optimizer (e.g. torch.optim.Adam(model.parameters())), "
            f"got {type(optimizer).__name__}."
        )


def _check_finetune(qmodel: Any, loader: Any, epochs: Any, lr: Any, step: Any) -> None:
    if not callable(step):
        raise ValueError(f"step must be a function like qat.qat_step, got {step!r}.")
    check_int(epochs, "epochs", low=1, high=1000)
    check_positive(lr, "lr")
    check_model(qmodel, "qmodel")
    check_loader(loader)
    if isinstance(loader, Iterator):  # a generator is spent after the first epoch
        raise ValueError("loader is a one-shot iterator; pass a DataLoader or a list of batches.")


def _check_size_bytes(model: Any, bits: Any) -> None:
    check_model(model, "model")
    for b in bits.values() if isinstance(bits, Mapping) else [bits]:
        if b is not None and b != 32:
            check_bits(b)
