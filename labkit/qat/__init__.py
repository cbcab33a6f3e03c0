"""Post-training quantisation (PTQ) and quantisation-aware training (QAT) of the course models.

Every Conv2d / Linear of a model is wrapped in a ``QuantLayer`` that fake-quantises

- its weights W (C_out, ...): symmetric, per output channel (or per tensor), MinMax of the
  current weights:  S_c = max|W_c| / (2^(b-1) - 1),  W_hat = S_c * clamp(round(W / S_c), -2^(b-1), 2^(b-1) - 1);
- its input activation x (N, ...): asymmetric per tensor, q in [0, 2^b - 1], with (S, Z) from
  a calibration observer (static PTQ), from x's own min/max on every call (dynamic PTQ), or
  from an exponential moving average of min/max while training (QAT).

Fake quantisation computes x_hat = S (clamp(round(x/S) + Z, qmin, qmax) - Z) in float: the
model behaves numerically like an integer model, but runs float kernels (a simulator; the
speed comes from int8 kernels, e.g. ONNX Runtime's, compared in ``runtime_table`` with ``bench.compare``).
QAT trains through round() with the straight-through estimator (``quant.STEFakeQuant``, from
notebook 05): d x_hat / d x = 1 where round(x/S) + Z lies in [qmin, qmax], 0 where it was clamped.
Conv -> BatchNorm pairs are folded first (labkit.models.fold_batchnorm: PyTorch's fold; notebook 07 teaches how it works), as a deployer would.

Size accounting (``size_bytes``): a quantised layer stores numel(W) * b / 8 bytes of weights,
one float32 scale per output channel, float32 biases, and one (S, Z) pair (8 bytes) for its
input activation; everything else stays float32.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labkit import bench, models, quant
from labkit.core.errors import check_bits, check_positive, check_tensor, require
from labkit.core.train import cross_entropy_loss

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

    Taught in notebooks/06_ptq_and_qat.ipynb, "3. Post-training quantisation: static vs dynamic".
    """
    qmin, qmax = quant.qrange(check_bits(bits), symmetric=True)
    scale = quant.symmetric_scale(w, bits, axis=0 if per_channel else None)  # (C_out,) or ()
    return scale.expand(w.shape[0]).reshape(-1, *([1] * (w.ndim - 1))), qmin, qmax


class QuantLayer(nn.Module):
    """A Conv2d or Linear whose weights (w_bits) and input activation (a_bits) are fake-quantised.

    mode "static": activation (S, Z) fixed by ``calibrate_activations``; "dynamic": from each
    input's own min/max; "qat": EMA of min/max while training (momentum 0.1), frozen in eval;
    "float": no activation quantisation. w_bits/a_bits None = keep float.

    Taught in notebooks/06_ptq_and_qat.ipynb, "3. Post-training quantisation: static vs dynamic".
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
        super().__init__()
        if not isinstance(layer, nn.Conv2d | nn.Linear):
            raise ValueError(
                f"QuantLayer wraps nn.Conv2d or nn.Linear, got {type(layer).__name__}."
            )
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        self.layer = layer
        self.w_bits = None if w_bits is None else check_bits(w_bits)
        self.a_bits = None if a_bits is None else check_bits(a_bits)
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
        assert self.a_bits is not None
        key = (float(self.act_min), float(self.act_max), self.a_bits)
        if self._act_cache is not None and self._act_cache[0] == key:
            return self._act_cache[1]
        if not (math.isfinite(key[0]) and math.isfinite(key[1])):
            raise ValueError(
                "no activation range yet: run calibrate_activations() (static PTQ) first."
            )
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

    Taught in notebooks/06_ptq_and_qat.ipynb, "3. Post-training quantisation: static vs dynamic".
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}.")
    folded = models.fold_batchnorm(model)
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
    return {n: m for n, m in model.named_modules() if isinstance(m, QuantLayer)}


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

    Taught in notebooks/06_ptq_and_qat.ipynb, "3. Post-training quantisation: static vs dynamic".
    """
    if observer not in quant.OBSERVERS:
        raise ValueError(f"observer must be one of {sorted(quant.OBSERVERS)}, got {observer!r}.")
    layers = [m for m in qmodel.modules() if isinstance(m, QuantLayer) and m.a_bits is not None]
    for m in layers:
        m.observer = quant.OBSERVERS[observer](**observer_kwargs)
    qmodel.eval()
    seen = 0
    try:
        for x in batches:
            qmodel(check_tensor(x, "calibration batch"))
            seen += 1
    finally:
        obs = [(m, m.observer) for m in layers]
        for m in layers:
            m.observer = None
    if seen == 0:
        raise ValueError("calibrate_activations needs at least one batch of inputs.")
    for m, o in obs:
        lo, hi = o.range(m.a_bits, False)
        m.act_min.fill_(lo)
        m.act_max.fill_(hi)
    return qmodel


def calibration_batches(loader: Iterable[Any], num_batches: int = 4) -> list[torch.Tensor]:
    """The inputs x of the first ``num_batches`` (x, y) batches of a loader.

    Taught in notebooks/06_ptq_and_qat.ipynb, "2. The model to quantise".
    """
    if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
        raise ValueError(f"num_batches must be a positive int, got {num_batches!r}.")
    out = []
    for i, (x, _) in enumerate(loader):
        if i >= num_batches:
            break
        out.append(x)
    if not out:
        raise ValueError("the loader yielded no batches; calibration needs at least one.")
    return out


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


def qat_model(
    model: nn.Module, batches: Iterable[torch.Tensor], bits: Bits = 4, *, per_channel: bool = True
) -> nn.Module:
    """Start of QAT: the static-PTQ model (calibrated ranges) switched to mode "qat".

    Taught in notebooks/06_ptq_and_qat.ipynb, "4. Quantisation-aware training".
    """
    q = static_ptq(model, batches, bits, per_channel=per_channel)
    for m in q.modules():
        if isinstance(m, QuantLayer):
            m.mode = "qat"
    return q


def qat_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer
) -> float:
    """One QAT step: train mode (observers update), forward through the fake quantisers,
    cross-entropy, zero the old gradients, backward (STE), optimizer step. Returns the loss.

    Taught in notebooks/06_ptq_and_qat.ipynb, "Exercise 2: one QAT training step".
    """
    model.train()
    loss = F.cross_entropy(model(x), y)
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
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    check_positive(lr, "lr")
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
        check_bits(b)
        scales = w.shape[0] if per_channel else 1
        total += math.ceil(w.numel() * b / 8) + 4 * scales + 4 * n_bias + 8
    rest = [t for t in list(folded.parameters()) + list(folded.buffers()) if id(t) not in counted]
    rest = [t for t in rest if t.ndim > 0]  # QuantLayer's scalar act_min/act_max are counted above
    return total + sum(4 * t.numel() for t in rest)


def _is_folded(model: nn.Module) -> bool:
    return not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


# --------------------------------------------------------------------------- sensitivity -> mixed


@torch.no_grad()
def _val_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(cross_entropy_loss(model.eval(), x, y))


def sensitivity(
    model: nn.Module,
    calib: list[torch.Tensor],
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    bits_list: Iterable[int] = (2, 3, 4, 8),
) -> dict[str, dict[int, float]]:
    """Per-layer sensitivity: validation loss increase when ONLY that layer is quantised
    (weights and input activation at b bits, static PTQ), every other layer float.

    Returns {layer: {bits: loss(quantised) - loss(float)}}.

    Taught in notebooks/06_ptq_and_qat.ipynb, "5. Per-layer sensitivity → mixed precision".
    """
    check_tensor(x_val, "x_val")
    if not isinstance(y_val, torch.Tensor) or y_val.shape[:1] != x_val.shape[:1]:
        raise ValueError(
            f"y_val must be a tensor of {x_val.shape[0]} labels (one per x_val row), "
            f"got {getattr(y_val, 'shape', type(y_val).__name__)}."
        )
    bits_list = [check_bits(b) for b in bits_list]
    base = _val_loss(models.fold_batchnorm(model), x_val, y_val)
    names = quantizable_layers(models.fold_batchnorm(model))
    out: dict[str, dict[int, float]] = {}
    for name in names:
        out[name] = {}
        for b in bits_list:
            only = {n: (b if n == name else None) for n in names}
            q = static_ptq(model, calib, only)
            out[name][b] = _val_loss(q, x_val, y_val) - base
    return out


def assign_bits(
    model: nn.Module,
    sens: Mapping[str, Mapping[int, float]],
    budget_bytes: int,
) -> dict[str, int]:
    """Greedy mixed precision under a size budget (bytes as ``size_bytes`` counts them).

    1. Start every layer at its widest bit width in ``sens``; repeatedly lower the one layer
       whose next narrower width costs the least sensitivity per byte saved, until
       size_bytes(model, bits) <= budget_bytes.
    2. Spend what is left: repeatedly raise the layer whose next wider width lowers the
       sensitivity most per extra byte, as long as the model still fits.

    Returns {layer name: bits}. ValueError when even the narrowest assignment does not fit.

    Taught in notebooks/06_ptq_and_qat.ipynb, "5. Per-layer sensitivity → mixed precision".
    """
    check_positive(budget_bytes, "budget_bytes")
    folded = models.fold_batchnorm(model)
    choice = {n: max(s) for n, s in sens.items()}
    if set(choice) != set(quantizable_layers(folded)):
        raise ValueError("sens must have one entry per Conv2d/Linear layer (use sensitivity()).")
    size = size_bytes(folded, choice)
    while size > budget_bytes:
        best: tuple[float, str, int, int] | None = None
        for n, b in choice.items():
            lower = [c for c in sens[n] if c < b]
            if not lower:
                continue
            nb = max(lower)
            trial = {**choice, n: nb}
            saved = size - size_bytes(folded, trial)
            cost = (sens[n][nb] - sens[n][b]) / max(saved, 1)
            if best is None or cost < best[0]:
                best = (cost, n, nb, size - saved)
        if best is None:
            raise ValueError(
                f"budget {budget_bytes} B is below the smallest assignment "
                f"({size} B with every layer at its narrowest width)."
            )
        _, n, nb, size = best
        choice[n] = nb
    # the last step may undershoot the budget: spend the bytes left over on the layer whose
    # next wider width buys the largest sensitivity drop per byte, while it still fits
    while True:
        up: tuple[float, str, int, int] | None = None
        for n, b in choice.items():
            wider = [c for c in sens[n] if c > b]
            if not wider:
                continue
            nb = min(wider)
            new_size = size_bytes(folded, {**choice, n: nb})
            gain = (sens[n][b] - sens[n][nb]) / max(new_size - size, 1)
            if new_size <= budget_bytes and gain > 0 and (up is None or gain > up[0]):
                up = (gain, n, nb, new_size)
        if up is None:
            return choice
        _, n, nb, size = up
        choice[n] = nb


# --------------------------------------------------------------------------- library quantizers
# Plumbing for section 6 (not the lesson): PyTorch's and ONNX Runtime's int8 quantizers and the
# bake-off that times them against the fake-quant simulator.


@contextlib.contextmanager
def _allow_nondeterministic() -> Iterator[None]:
    """Switch torch.use_deterministic_algorithms off inside the block, restore it after.

    torch.ao's int8 CPU kernels (quantized_resize_cpu_) have no deterministic mode: with
    labkit.env.setup's deterministic flag (warn_only) every call prints a C++ warning to stderr.
    Integer kernels are deterministic for a fixed thread count anyway.
    """
    on = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(on, warn_only=warn_only)


def torch_int8(model: nn.Module, calib: list[torch.Tensor] | None = None) -> nn.Module:
    """PyTorch's own eager-mode int8 (torch.ao.quantization, x86/fbgemm kernels).

    calib given: static (Conv/Linear + ReLU fused, QuantStub/DeQuantStub, HistogramObserver
    activations, per-channel weights); else dynamic (Linear only, activations quantised per
    call). torch.ao.quantization is deprecated (its successor is the separate torchao
    package); its DeprecationWarnings are silenced here.

    Taught in notebooks/06_ptq_and_qat.ipynb, "6. The quantizers you would actually use".
    """
    tq = torch.ao.quantization
    m = copy.deepcopy(models.fold_batchnorm(model)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if calib is None:
            return tq.quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8)
        names = [n for n, _ in m.named_children()]
        pairs = [
            [a, b]
            for a, b in zip(names, names[1:], strict=False)
            if isinstance(m.get_submodule(a), nn.Conv2d | nn.Linear)
            and isinstance(m.get_submodule(b), nn.ReLU)
        ]
        if pairs:
            m = tq.fuse_modules(m, pairs)
        w = tq.QuantWrapper(m)
        w.qconfig = tq.get_default_qconfig("x86")
        tq.prepare(w, inplace=True)
        with torch.no_grad(), _allow_nondeterministic():
            for x in calib:
                w(x)
        return tq.convert(w.eval())


def torchao_int8(model: nn.Module) -> nn.Module:
    """torchao (PyTorch's successor quantisation library): int8 dynamic activations + int8
    weights on every Linear. Optional package: MissingDependency when torchao is absent.

    Taught in notebooks/06_ptq_and_qat.ipynb, "6. The quantizers you would actually use".
    """
    ao = require("torchao.quantization", "torchao", why="PyTorch's new quantisation library")
    m = copy.deepcopy(models.fold_batchnorm(model)).eval()
    ao.quantize_(m, ao.Int8DynamicActivationInt8WeightConfig())
    return m


def runtime_table(
    model: nn.Module,
    calib: list[torch.Tensor],
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    labkit_int8: nn.Module,
    *,
    batch: int = 32,
    rounds: int = 15,
    repeats: int = 5,
    include_torchao: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, bench.Comparison]]:
    """FP32 vs labkit's fake-quant int8 vs PyTorch's and ONNX Runtime's int8 quantizers.

    Returns (rows, comparisons): rows hold each method's test accuracy, size in bytes and a
    note; comparisons["PyTorch"] is one ``bench.compare`` of the PyTorch-side methods against
    "FP32 (PyTorch eager)", comparisons["ONNX Runtime"] one of ORT's int8 models against
    "ORT FP32" (each method timed once, on ``batch`` test images, 1 thread).
    Sizes: torch.save(state_dict) bytes for PyTorch models, file bytes for ONNX, and
    ``size_bytes(., 8)`` for labkit's simulator (what an int8 export would store).

    Taught in notebooks/06_ptq_and_qat.ipynb, "6. The quantizers you would actually use".
    """
    from labkit import onnx as lk_onnx
    from labkit.core.train import accuracy

    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= len(x_test):
        raise ValueError(
            f"batch must be an int in [1, {len(x_test)}] (test images), got {batch!r}."
        )
    fp32 = models.fold_batchnorm(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's DeprecationWarnings
        methods: dict[str, tuple[Any, int, str]] = {
            "FP32 (PyTorch eager)": (fp32, bench.serialized_size_bytes(fp32), "BN folded"),
            "labkit static PTQ int8": (labkit_int8, size_bytes(fp32, 8), "fake-quant simulator"),
        }
        for name, m, note in (
            ("PyTorch int8 static", torch_int8(model, calib), "torch.ao (deprecated)"),
            ("PyTorch int8 dynamic", torch_int8(model), "torch.ao (deprecated)"),
        ):
            methods[name] = (m, bench.serialized_size_bytes(m), note)
        if include_torchao:
            try:
                ao = torchao_int8(model)
                methods["torchao int8 dynamic"] = (ao, bench.serialized_size_bytes(ao), "eager")
            except Exception as exc:  # optional package
                print(f"torchao skipped: {type(exc).__name__}: {str(exc)[:120]}")
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
        d, xb = Path(tmp), x_test[:batch]
        fp32_path = lk_onnx.export_onnx(fp32, xb, d / "fp32.onnx")
        for name, path, note in (
            ("ORT FP32", fp32_path, "graph opt all"),
            (
                "ORT quantize_static",
                lk_onnx.quantize_static_int8(fp32_path, d / "s.onnx", torch.cat(calib)),
                "QDQ, MinMax, per-channel",
            ),
            (
                "ORT quantize_dynamic",
                lk_onnx.quantize_dynamic_int8(fp32_path, d / "d.onnx"),
                "int8 MatMul",
            ),
        ):  # a session holds the model in memory: the files may go
            run = lk_onnx.ort_runner(lk_onnx.ort_session(path, threads=1))
            methods[name] = (run, lk_onnx.file_size(path), note)
    groups = {"PyTorch": "FP32 (PyTorch eager)", "ONNX Runtime": "ORT FP32"}
    with torch.no_grad(), _allow_nondeterministic(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = [
            {"method": n, "accuracy": accuracy(f, x_test, y_test), "bytes": b, "note": note}
            for n, (f, b, note) in methods.items()
        ]
        comparisons = {
            group: bench.compare(
                {
                    n: (lambda f=f: f(xb))
                    for n, (f, _, _) in methods.items()
                    if n.startswith("ORT") == (group == "ONNX Runtime")
                },
                baseline=base,
                rounds=rounds,
                repeats=repeats,
                threads=1,
            )
            for group, base in groups.items()
        }
    return rows, comparisons
