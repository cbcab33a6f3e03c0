"""Notebook 11, part 3: the KV cache, one decode step of attention and the memory it holds.

Each layer keeps the keys and values of every earlier position, (B, H, S, head_dim) each, so a
new token computes only its own q, k, v and attends to the cache. KV-cache memory (bytes):

    layers x 2 (k and v) x heads x head_dim x tokens x bytes_per_element  (x batch)

An endless stream cannot keep every token. StreamingLLM (Xiao et al. 2023) keeps the first few
tokens (attention sinks: softmax must put its weight somewhere, and trained models park it on
the first tokens) plus a sliding window of the most recent ones, so the cache never holds more
than n_sink + window positions: a memory bound that does not grow with the stream.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from labkit.core.errors import check_int
from labkit.generate.gpt import CharGPT, KVCache, _check_gpt


def kv_attention_step(
    q: torch.Tensor,
    k_new: torch.Tensor,
    v_new: torch.Tensor,
    cache_k: torch.Tensor | None,
    cache_v: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One decode step of attention with a KV cache.

    q, k_new, v_new: (B, H, 1, hd) for the new token; cache_k, cache_v: (B, H, S, hd) or None.
    k = cat(cache_k, k_new), v = cat(cache_v, v_new) along the sequence axis (dim 2);
    out = softmax(q k^T / sqrt(hd)) v, shape (B, H, 1, hd) - no mask: the newest token may
    see every earlier one. Returns (out, k, v); k and v are the updated cache.
    The deliberate twin of the model's cache path (labkit/core/models.py: TransformerBlock
    concatenates the cache and calls attention(q, k, v, causal=True, offset=M - N), whose mask
    is empty for N = 1 new query), written out for the lesson; they agree (tests/generate/
    test_generate.py::test_kv_attention_step_is_the_models_cache_path).
    Taught in notebooks/11_streaming_generation.ipynb, "Exercise 2: a KV-cache attention step".
    """
    _check_kv_step(q, k_new, v_new, cache_k, cache_v)
    k = k_new if cache_k is None else torch.cat([cache_k, k_new], dim=2)  # (B, H, S + 1, hd)
    v = v_new if cache_v is None else torch.cat([cache_v, v_new], dim=2)  # (B, H, S + 1, hd)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, 1, S + 1)
    return scores.softmax(dim=-1) @ v, k, v  # (B, H, 1, hd)


def kv_cache_bytes(
    n_layer: int, n_head: int, head_dim: int, tokens: int, bytes_per_element: int, batch: int = 1
) -> int:
    """layers x 2 x heads x head_dim x tokens x bytes_per_element x batch.

    Taught in notebooks/11_streaming_generation.ipynb, "How much memory the cache takes".
    """
    _check_counts(n_layer, n_head, head_dim, tokens, bytes_per_element, batch)
    return n_layer * 2 * n_head * head_dim * tokens * bytes_per_element * batch


def cache_tensor_bytes(cache: KVCache) -> int:
    """Bytes held by the real cache tensors: sum of numel * element_size over every k and v.

    Taught in notebooks/11_streaming_generation.ipynb, "How much memory the cache takes".
    """
    _check_cache(cache)
    return sum(t.numel() * t.element_size() for kv in cache for t in kv)


@torch.no_grad()
def prefill_cache(model: CharGPT, ids: torch.Tensor) -> KVCache:
    """The KV cache after running ``ids`` (B, T) through the model once.

    Taught in notebooks/11_streaming_generation.ipynb, "How much memory the cache takes".
    """
    _check_gpt(model)  # the forward pass checks ids
    return model(ids)[1]


def sink_window_cache(cache: KVCache, n_sink: int, window: int) -> KVCache:
    """Evict the middle: keep the first n_sink and the last ``window`` positions of every layer.

    cache: per layer (k, v) of shape (B, H, S, hd) -> (B, H, min(S, n_sink + window), hd).
    Used by streaming_nll (labkit/generate/kv_cache.py).
    """
    _check_sink_cache(cache, n_sink, window)
    S = cache[0][0].shape[2]
    if S <= n_sink + window:
        return cache
    keep = torch.cat([torch.arange(n_sink), torch.arange(S - window, S)])  # (n_sink + window,)
    return [(k[:, :, keep], v[:, :, keep]) for k, v in cache]


@torch.no_grad()
def streaming_nll(
    model: CharGPT, ids: torch.Tensor, n_sink: int, window: int, recompute: bool = False
) -> float:
    """Mean -log p(ids[t+1] | what is kept) over a stream longer than the model's context, nats.

    Cached (recompute=False): tokens go in one at a time; after each step the cache is cut to
    n_sink + window positions (``sink_window_cache``) and the next token's position is the
    cache length (StreamingLLM numbers positions inside the cache), so no position reaches
    block_size. recompute=True is the slow reference: every token re-runs the model on the
    last ``window`` tokens from scratch (positions 0..window-1, nothing cached).
    Taught in notebooks/11_streaming_generation.ipynb, "10. Endless streams: attention sinks and a sliding window".
    """
    _check_stream_nll(model, ids, n_sink, window)
    cache, total = None, 0.0
    for t in range(len(ids) - 1):
        if recompute:
            logits, _ = model(ids[max(0, t + 1 - window) : t + 1].view(1, -1))  # (1, <= W, V)
        else:
            logits, cache = model(ids[t : t + 1].view(1, 1), cache)  # (1, 1, V)
            cache = sink_window_cache(cache, n_sink, window)
        total += F.cross_entropy(logits[0, -1:], ids[t + 1 : t + 2]).item()
    return total / (len(ids) - 1)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_kv_step(q: Any, k_new: Any, v_new: Any, cache_k: Any, cache_v: Any) -> None:
    """Shapes of one decode step: size comparisons only (it runs once per token)."""
    k, v = (k_new, v_new) if cache_k is None else (cache_k, cache_v)
    try:
        sq, sk, sv, sn = q.shape, k.shape, v.shape, v_new.shape
        ok = (cache_k is None) == (cache_v is None) and len(sq) == 4 and k_new.shape == sq
        ok = ok and sn[:3] == sq[:3] and (sk[:2], sk[3]) == (sq[:2], sq[3])
        ok = ok and (sv[:3], sv[3]) == (sk[:3], sn[3])
        ok = ok and q.is_floating_point() and k.is_floating_point() and v.is_floating_point()
    except (AttributeError, IndexError):  # not tensors, or too few dimensions
        ok = False
    if not ok:
        named = {"q": q, "k_new": k_new, "v_new": v_new, "cache_k": cache_k, "cache_v": cache_v}
        got = ", ".join(f"{n} {tuple(getattr(t, 'shape', [t]))}" for n, t in named.items())
        raise ValueError(
            "kv_attention_step needs tensors q, k_new, v_new of shape (B, H, 1, hd) and cache_k, "
            "cache_v of shape (B, H, S, hd) (both None for the first token) with the same B, H "
            f"and hd, all floating point; got {got}."
        )


def _check_counts(*sizes: object) -> None:
    names = ("n_layer", "n_head", "head_dim", "tokens", "bytes_per_element", "batch")
    for name, value in zip(names, sizes, strict=True):
        check_int(value, name, low=1)
    if sizes[4] > 8:  # type: ignore[operator]
        raise ValueError(
            f"bytes_per_element must be 1 to 8 (int8/fp8: 1, fp16/bf16: 2, fp32: 4, fp64: 8), "
            f"got {sizes[4]}."
        )


def _check_cache(cache: Any) -> None:
    """A KV cache: a non-empty list of (k, v) tensor pairs, (B, H, S, hd) each."""
    ok = isinstance(cache, list | tuple) and len(cache) > 0
    ok = ok and all(
        isinstance(kv, list | tuple)
        and len(kv) == 2
        and all(isinstance(t, torch.Tensor) and t.ndim == 4 for t in kv)
        for kv in cache
    )
    if not ok:
        raise ValueError(
            "cache must be a KV cache: a list with one (k, v) pair of (B, H, S, hd) tensors per "
            f"layer, got {type(cache).__name__}; e.g. generate.prefill_cache(model, ids)."
        )


def _check_sink_cache(cache: Any, n_sink: Any, window: Any) -> None:
    _check_sinks(n_sink, window)
    _check_cache(cache)


def _check_sinks(n_sink: Any, window: Any) -> None:
    check_int(n_sink, "n_sink", low=0)
    check_int(window, "window", low=1)


def _check_stream_nll(model: Any, ids: Any, n_sink: Any, window: Any) -> None:
    cfg = _check_gpt(model)
    _check_sinks(n_sink, window)
    if n_sink + window >= cfg.block_size:
        raise ValueError(
            f"n_sink + window = {n_sink + window} must be < block_size={cfg.block_size}: the next "
            "token's position is the cache length."
        )
    if (
        not isinstance(ids, torch.Tensor)
        or ids.ndim != 1
        or len(ids) < 2
        or ids.is_floating_point()
    ):
        raise ValueError("ids must be a 1-D integer tensor of at least 2 token ids (the stream).")
    if ids.min() < 0 or ids.max() >= cfg.vocab_size:
        raise ValueError(
            f"ids must be token ids in 0..{cfg.vocab_size - 1} (the model's vocabulary), got "
            f"{int(ids.min())}..{int(ids.max())}; encode text with data.encode(text, stoi)."
        )
