"""Notebook 11, part 2 and the decode loop: sampling the next token, streamed generation.

Autoregressive decoding: ids_{t+1} ~ softmax(top_k(logits_t) / T); T = 0 is greedy (argmax).
Without a cache every new token re-runs the model on the whole sequence (cost ~ S per token,
S = tokens so far); with a KV cache the model sees only the new token and attends to the
cached keys/values of the earlier ones (labkit/generate/kv_cache.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch

from labkit.core import data
from labkit.core.errors import check_int, check_number, check_positive, check_tensor
from labkit.generate.gpt import CharGPT, _check_gpt


def top_k_logits(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the k largest logits of the last dim, set the rest to -inf (ties with the k-th kept).

    logits: (..., V). k=None or k >= V keeps everything.
    Used by next_token_probs (labkit/generate/sampling.py).
    """
    _check_logits(logits, k)
    if k is None or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1) the k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


def next_token_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None
) -> torch.Tensor:
    """p = softmax(top_k(logits) / T) over the last dim, shape (..., V). T must be > 0.

    Taught in notebooks/11_streaming_generation.ipynb, "2. Sampling: temperature and top-k".
    """
    check_positive(temperature, "temperature")
    return torch.softmax(top_k_logits(logits, top_k) / temperature, dim=-1)


def sample_next(
    logits: torch.Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Next ids (B,) from logits (B, V): argmax when temperature == 0, else a sample.

    Used by generate (labkit/generate/sampling.py).
    """
    if temperature == 0:  # next_token_probs checks temperature, top_k_logits the logits
        return top_k_logits(logits, top_k).argmax(dim=-1)  # (B,) the largest kept logit
    probs = next_token_probs(logits, temperature, top_k)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)


@torch.no_grad()
def generate(
    model: CharGPT,
    prompt: torch.Tensor | Sequence[int],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """Yield ``max_new_tokens`` token ids one at a time, as soon as each is produced.

    temperature=0 is greedy decoding. use_cache=False re-runs the model on the whole
    sequence for every token; use_cache=True runs the prompt once (prefill) and then one
    token per step against the cached keys/values. prompt + new tokens <= block_size.
    Taught in notebooks/11_streaming_generation.ipynb, "Same tokens, with and without the cache".
    """
    _check_generate(model, prompt, max_new_tokens, temperature, top_k)
    model.eval()
    seq = torch.as_tensor(prompt, dtype=torch.long).view(1, -1)  # (1, S) every token so far
    step, cache = seq, None  # what the model reads next: the whole prompt first (prefill)
    for _ in range(max_new_tokens):
        if use_cache:
            logits, cache = model(step, cache)  # (1, T, V); the cache grows by T positions
        else:
            logits, _ = model(seq)  # (1, S, V): every position recomputed
        nxt = sample_next(logits[:, -1], temperature, top_k, generator)  # (1,)
        seq = torch.cat([seq, nxt.view(1, 1)], dim=1)  # (1, S + 1)
        step = nxt.view(1, 1)
        yield int(nxt)


def generate_text(
    model: CharGPT,
    prompt: str,
    max_new_tokens: int,
    stoi: dict[str, int],
    itos: list[str],
    **kwargs: object,
) -> Iterator[str]:
    """``generate`` on text: encode the prompt, yield each new character as it is produced.

    Taught in notebooks/11_streaming_generation.ipynb, "2. Sampling: temperature and top-k".
    """
    _check_text(model, prompt, stoi, itos)
    for t in generate(model, data.encode(prompt, stoi), max_new_tokens, **kwargs):  # type: ignore[arg-type]
        yield itos[t]


def greedy_agreement(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two greedy generations share before they first differ.

    Taught in notebooks/11_streaming_generation.ipynb, "Same tokens, with and without the cache".
    """
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_logits(logits: object, top_k: object = None) -> None:
    """Finite logits (-inf allowed where masked, as long as a row keeps one), a valid top_k."""
    check_tensor(logits, "logits")
    if logits.ndim == 0 or logits.numel() == 0:
        raise ValueError(f"logits must be a non-empty tensor (..., V), got {tuple(logits.shape)}.")
    finite = math.isfinite(logits.sum().item())  # one op in the usual case: no inf, no NaN
    if not finite and not math.isfinite(logits.amax(-1).sum().item()):  # NaN, +inf, -inf row
        raise ValueError(
            "logits contain NaN or +inf (or a row that is all -inf): there is no token to "
            "pick; check the model's output with torch.isfinite(logits)."
        )
    if top_k is not None:
        check_int(top_k, "top_k", low=1)


def _check_generate(
    model: object, prompt: object, max_new_tokens: object, temperature: object, top_k: object
) -> None:
    cfg = _check_gpt(model)
    try:
        ids = torch.as_tensor(prompt)
    except (TypeError, ValueError, RuntimeError):
        ids = torch.empty(0)  # text, ragged lists, ...: refused below
    if ids.ndim != 1 or ids.numel() == 0 or ids.is_floating_point() or ids.dtype == torch.bool:
        raise ValueError(
            f"prompt must be a non-empty 1-D sequence of token ids, got {prompt!r:.60}; encode "
            "text with data.encode(text, stoi) (or call generate.generate_text)."
        )
    new = check_int(max_new_tokens, "max_new_tokens", low=1)
    check_number(temperature, "temperature (0 = greedy)", low=0)  # sample_next checks top_k
    if len(ids) + new > cfg.block_size:  # ids outside the vocabulary: forward refuses them
        raise ValueError(
            f"prompt ({len(ids)}) + max_new_tokens ({new}) exceeds the model's "
            f"block_size={cfg.block_size}; shorten the prompt or generate fewer tokens."
        )


def _check_text(model: object, prompt: object, stoi: object, itos: object) -> None:
    cfg = _check_gpt(model)
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"prompt must be a non-empty string, got {prompt!r}.")
    if not isinstance(stoi, dict) or not isinstance(itos, list) or len(itos) != cfg.vocab_size:
        raise ValueError(
            f"stoi and itos must be the model's vocabulary ({cfg.vocab_size} characters), "
            "as returned by generate.vocab()."
        )
    unknown = sorted(set(prompt) - stoi.keys())
    if unknown:
        raise ValueError(
            f"prompt has characters not in the vocabulary: {unknown[:10]}; remove or replace "
            "them (the model knows only the characters of its training text)."
        )
