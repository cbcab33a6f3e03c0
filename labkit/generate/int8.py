"""Notebook 11, part 6: dynamic INT8 weights for decoding, and how close the result stays.

Weights int8 per output channel, activations quantised per row at run time, int8 x int8 ->
int32 matmul (torch._int_mm where it is exact on this CPU), rescaled to float.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labkit import quant
from labkit.core import data
from labkit.core.errors import check_finite, check_model, check_tensor
from labkit.generate.gpt import CharGPT, _check_gpt, split_ids


@functools.cache
def int_mm_is_exact() -> bool:
    """Does torch._int_mm give the exact int32 product on this CPU (checked once per process)?

    Without VNNI (AVX2-only or older CPUs, or ATEN_CPU_CAPABILITY/ONEDNN_MAX_CPU_ISA forcing
    such a path) the int8 GEMM adds pairs of u8 x s8 products into a saturating int16, as
    ONNX Runtime's does (notebook 09): 2 * 255 * 127 > 32767, so large codes come out wrong.
    The worst case below (all codes +-127) exposes it. Used by int8_matmul (labkit/generate/int8.py).
    Taught in notebooks/11_streaming_generation.ipynb, "Where the INT8 time goes: the kernel, or the work around it?".
    """
    a = torch.full((2, 64), 127, dtype=torch.int8)
    b = torch.full((64, 8), -127, dtype=torch.int8)
    b[:, ::2] = 127
    try:
        got = torch._int_mm(a, b)
    except RuntimeError:  # no int8 GEMM at all on this build
        return False
    return bool(torch.equal(got.long(), a.long() @ b.long()))


def int8_matmul(x_q: torch.Tensor, w_q_t: torch.Tensor) -> torch.Tensor:
    """int8 (M, K) x int8 (K, N) -> exact int32 (M, N): torch._int_mm where it is exact on
    this CPU (int_mm_is_exact), else an int32 matmul (slower, same result).

    Used by Int8Linear (labkit/generate/int8.py).
    """
    _check_int8_matmul(x_q, w_q_t)
    if int_mm_is_exact():
        return torch._int_mm(x_q, w_q_t)
    return x_q.to(torch.int32) @ w_q_t.to(torch.int32)


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic per-row INT8 codes of activations x (rows, in): (x_q int8, s_x (rows, 1)).

    s_x = max|x_row| / 127 (notebook 05's ``quant.symmetric_scale``), x_q = clamp(round(x / s_x),
    -127, 127). Runs on every call, for every token: the price of dynamic quantisation.
    Taught in notebooks/11_streaming_generation.ipynb, "Where the INT8 time goes: the kernel, or the work around it?".
    """
    check_tensor(x, "x (rows, in)", ndim=2)  # symmetric_scale checks the values
    s_x = quant.symmetric_scale(x, 8, axis=0)[:, None]  # (rows, 1) max|x_row| / 127
    return torch.round(x / s_x).clamp_(-127, 127).to(torch.int8), s_x  # (rows, in)


class Int8Linear(nn.Module):
    """y = (round(x / s_x) @ W_q^T) * s_x * s_w + b, computed in int8 x int8 -> int32.

    W_q: int8 (out, in), symmetric per output channel, s_w = max|W_row| / 127.
    s_x = max|x_row| / 127: per input row (token), computed at run time (dynamic).
    Both scales are notebook 05's ``quant.symmetric_scale``. The int32 product comes from
    int8_matmul (torch._int_mm where it is exact on this CPU). Used by quantize_linear_int8.
    Taught in notebooks/11_streaming_generation.ipynb, "Where the INT8 time goes: the kernel, or the work around it?".
    """

    def __init__(self, linear: nn.Linear) -> None:
        _check_linear(linear)
        super().__init__()
        w = linear.weight.detach()  # (out, in)
        scale = quant.symmetric_scale(w, 8, axis=0)  # (out,) s_w = max|W_row| / 127
        self.register_buffer("weight_q", torch.round(w / scale[:, None]).to(torch.int8))
        self.register_buffer("weight_scale", scale)
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) -> y (..., out); quantize_rows checks the values of x."""
        _check_features(x, self.in_features)
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])  # (rows, in)
        x_q, s_x = quantize_rows(x2)  # int8 (rows, in), (rows, 1)
        acc = int8_matmul(x_q, self.weight_q.t())  # int32 (rows, out)
        y = acc.float() * s_x * self.weight_scale  # (rows, out)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)


def quantize_linear_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every nn.Linear replaced by an Int8Linear (dynamic INT8).

    (torch.ao.quantization.quantize_dynamic does the same but is deprecated in torch 2.x in
    favour of torchao; this is the same arithmetic, written out. Not to be confused with
    ``labkit.onnx.quantize_dynamic_int8``, which quantises an ONNX file.)
    Taught in notebooks/11_streaming_generation.ipynb, "6. Dynamic INT8 weights".
    """
    check_model(model)
    qmodel = copy.deepcopy(model)
    for module in list(qmodel.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, child_name, Int8Linear(child))
    return qmodel.eval()


@torch.no_grad()
def agreement_on_val(
    reference: CharGPT, candidate: nn.Module, batches: int = 4, batch_size: int = 8, seed: int = 1
) -> dict[str, float]:
    """Compare two models on the same fixed windows of the val split (teacher forcing).

    Returns each model's cross-entropy (nats per character) and top1_agreement, the fraction
    of positions where both models' most likely next character is the same.
    Taught in notebooks/11_streaming_generation.ipynb, "6. Dynamic INT8 weights".
    """
    _check_agreement(reference, candidate, batches, batch_size)
    _, val = split_ids()
    gen = torch.Generator().manual_seed(seed)
    block = reference.cfg.block_size
    loss_ref = loss_cand = agree = 0.0
    for _ in range(batches):
        x, y = data.text_batch(val, block, batch_size, gen)  # (B, T) each
        a, b = reference(x)[0], candidate(x)[0]  # (B, T, V) each
        loss_ref += F.cross_entropy(a.flatten(0, 1), y.flatten()).item() / batches
        loss_cand += F.cross_entropy(b.flatten(0, 1), y.flatten()).item() / batches
        agree += (a.argmax(-1) == b.argmax(-1)).float().mean().item() / batches
    return {"loss_reference": loss_ref, "loss_candidate": loss_cand, "top1_agreement": agree}


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_agreement(reference: Any, candidate: Any, batches: Any, batch_size: Any) -> None:
    cfg = _check_gpt(reference, batch_size, name="reference", batches=batches)
    check_model(candidate, "candidate")
    other = getattr(candidate, "cfg", cfg)
    if getattr(other, "vocab_size", cfg.vocab_size) != cfg.vocab_size:
        raise ValueError(
            f"candidate must share the reference's vocabulary ({cfg.vocab_size} tokens), got "
            f"vocab_size={other.vocab_size}; compare a model with its own quantised copy."
        )


def _check_int8_matmul(x_q: Any, w_q_t: Any) -> None:
    for name, t in (("x_q", x_q), ("w_q_t", w_q_t)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.int8 or t.ndim != 2:
            raise ValueError(
                f"{name} must be a 2-D int8 tensor, got "
                f"{getattr(t, 'dtype', type(t).__name__)} {tuple(getattr(t, 'shape', ()))}; "
                "x_q from quantize_rows(x)[0], w_q_t = Int8Linear(...).weight_q.t()."
            )
    if x_q.shape[1] != w_q_t.shape[0]:
        raise ValueError(
            f"x_q (M, K) and w_q_t (K, N) must share K, got {tuple(x_q.shape)} and "
            f"{tuple(w_q_t.shape)}."
        )


def _check_linear(linear: Any) -> None:
    if not isinstance(linear, nn.Linear):
        raise ValueError(
            f"linear must be an nn.Linear, got {type(linear).__name__}; to convert a whole model "
            "use generate.quantize_linear_int8(model)."
        )
    check_finite(linear.weight.detach(), "linear.weight")


def _check_features(x: Any, in_features: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim == 0 or x.shape[-1] != in_features:
        raise ValueError(
            f"x must be a tensor (..., in_features={in_features}), got "
            f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}."
        )
