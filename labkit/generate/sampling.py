"""Notebook 11, part 2 and the decode loop: sampling the next token, streamed generation.

Autoregressive decoding: ids_{t+1} ~ softmax(filter(top_k(logits_t) / T)); T = 0 is greedy
(argmax). The filters cut the tail: top-k keeps the k largest logits, top-p (nucleus) the
smallest set of most likely tokens whose probability reaches p, min-p the tokens with at least
p_min times the top token's probability. Beam search keeps the B most likely partial sequences.
Without a cache every new token re-runs the model on the whole sequence (cost ~ S per token,
S = tokens so far); with a KV cache the model sees only the new token and attends to the
cached keys/values of the earlier ones (labkit/generate/kv_cache.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import torch

from labkit.core import data
from labkit.core.errors import (
    check_bool,
    check_generator,
    check_int,
    check_number,
    check_positive,
    check_tensor,
)
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


def top_p_logits(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Nucleus filter: keep the most likely tokens until their probability reaches p, -inf the rest.

    logits: (..., V). Sorted by probability, a token is kept when the mass before it is < p, so
    the top token always stays. p=None or p=1 keeps everything.
    Used by next_token_probs (labkit/generate/sampling.py).
    """
    _check_filter(logits, p, "top_p (p, the nucleus mass)")
    if p is None or p >= 1:
        return logits
    probs, order = torch.softmax(logits, dim=-1).sort(dim=-1, descending=True)  # (..., V) each
    before = probs.cumsum(dim=-1) - probs  # (..., V) mass of the more likely tokens
    keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, before < p)  # (..., V)
    return logits.masked_fill(~keep, float("-inf"))


def min_p_logits(logits: torch.Tensor, p_min: float | None) -> torch.Tensor:
    """Keep tokens with probability >= p_min * (the top token's probability), -inf the rest.

    logits: (..., V). The cut follows the model's confidence: a sharp distribution keeps few
    tokens, a flat one many. p_min=None or 0 keeps everything.
    Used by next_token_probs (labkit/generate/sampling.py).
    """
    _check_filter(logits, p_min, "min_p (p_min)")
    if not p_min:
        return logits
    probs = torch.softmax(logits, dim=-1)  # (..., V)
    return logits.masked_fill(probs < p_min * probs.amax(dim=-1, keepdim=True), float("-inf"))


def next_token_probs(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
) -> torch.Tensor:
    """p = softmax(min_p(top_p(top_k(logits) / T))) over the last dim, shape (..., V). T > 0.

    Top-k does not depend on T; top-p and min-p act on the tempered distribution.
    Taught in notebooks/11_streaming_generation.ipynb, "Top-p and min-p: cutting the tail by probability".
    """
    check_positive(temperature, "temperature")
    z = top_k_logits(logits, top_k) / temperature  # (..., V)
    return torch.softmax(min_p_logits(top_p_logits(z, top_p), min_p), dim=-1)


def sample_next(
    logits: torch.Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
) -> torch.Tensor:
    """Next ids (B,) from logits (B, V): argmax when temperature == 0, else a sample.

    Used by generate (labkit/generate/sampling.py).
    """
    check_generator(generator)  # next_token_probs checks temperature, top_k_logits the logits
    if temperature == 0:
        return top_k_logits(logits, top_k).argmax(dim=-1)  # (B,) the largest kept logit
    probs = next_token_probs(logits, temperature, top_k, top_p, min_p)  # (B, V)
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
    top_p: float | None = None,
    min_p: float | None = None,
) -> Iterator[int]:
    """Yield ``max_new_tokens`` token ids one at a time, as soon as each is produced.

    temperature=0 is greedy decoding. use_cache=False re-runs the model on the whole
    sequence for every token; use_cache=True runs the prompt once (prefill) and then one
    token per step against the cached keys/values. prompt + new tokens <= block_size.
    top_p and min_p (optional) filter the tempered distribution (``next_token_probs``).
    Taught in notebooks/11_streaming_generation.ipynb, "Same tokens, with and without the cache".
    """
    _check_generate(model, prompt, max_new_tokens, temperature, top_k, use_cache, generator)
    model.eval()
    seq = torch.as_tensor(prompt, dtype=torch.long).view(1, -1)  # (1, S) every token so far
    step, cache = seq, None  # what the model reads next: the whole prompt first (prefill)
    for _ in range(max_new_tokens):
        if use_cache:
            logits, cache = model(step, cache)  # (1, T, V); the cache grows by T positions
        else:
            logits, _ = model(seq)  # (1, S, V): every position recomputed
        nxt = sample_next(logits[:, -1], temperature, top_k, generator, top_p, min_p)  # (1,)
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
    _check_greedy(a, b)
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@torch.no_grad()
def beam_search(
    model: CharGPT, prompt: torch.Tensor | Sequence[int], max_new_tokens: int, beams: int = 4
) -> tuple[list[int], float]:
    """The most likely continuation beam search finds: (tokens, their total log-probability).

    Keeps the ``beams`` partial sequences with the largest sum of log p(token | prefix); each
    step extends every beam by every token (beams x V candidates) and keeps the best ``beams``.
    The KV cache follows its beams: rows are re-indexed by each survivor's parent.
    Taught in notebooks/11_streaming_generation.ipynb, "Beam search, in brief".
    """
    _check_beam(model, prompt, max_new_tokens, beams)
    logits, cache = model(torch.as_tensor(prompt, dtype=torch.long).view(1, -1))  # (1, P, V)
    scores = torch.zeros(1)  # (B,) log-probability of each beam so far
    seqs: list[list[int]] = [[]]
    for step in range(max_new_tokens):
        total = scores[:, None] + torch.log_softmax(logits[:, -1], dim=-1)  # (B, V)
        top = total.flatten().topk(min(beams, total.numel()))  # the best beams x V candidates
        parent, token = top.indices // total.shape[1], top.indices % total.shape[1]  # (B',) each
        scores, seqs = (
            top.values,
            [seqs[p] + [t] for p, t in zip(parent.tolist(), token.tolist(), strict=True)],
        )
        if step + 1 < max_new_tokens:
            cache = [(k[parent], v[parent]) for k, v in cache]  # each beam keeps its parent's past
            logits, cache = model(token.view(-1, 1), cache)  # (B', 1, V)
    best = int(scores.argmax())
    return seqs[best], float(scores[best])


@torch.no_grad()
def sequence_logprob(
    model: CharGPT, prompt: torch.Tensor | Sequence[int], tokens: Sequence[int]
) -> float:
    """sum_t log p(tokens_t | prompt, tokens_<t): how likely the model finds a continuation.

    One forward pass over prompt + tokens.
    Taught in notebooks/11_streaming_generation.ipynb, "Beam search, in brief".
    """
    _check_logprob(model, prompt, tokens)
    ids = torch.cat([torch.as_tensor(prompt, dtype=torch.long).view(-1), torch.tensor(tokens)])
    logp = torch.log_softmax(model(ids[None, :-1])[0][0], dim=-1)  # (P + n - 1, V)
    n = len(tokens)
    return float(logp[-n:].gather(1, ids[-n:, None]).sum())


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
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(
            f"top_k must be an integer >= 1 (k: how many of the largest logits to keep) or None, "
            f"got {top_k!r}."
        )


def _check_filter(logits: object, p: object, name: str) -> None:
    _check_logits(logits)
    if p is not None:
        check_number(p, name, low=0, high=1)


def _check_beam(model: object, prompt: object, max_new_tokens: object, beams: object) -> None:
    _check_generate(model, prompt, max_new_tokens, 0.0, None)
    check_int(beams, "beams", low=1, high=256)


def _check_generate(
    model: object,
    prompt: object,
    max_new_tokens: object,
    temperature: object,
    top_k: object,
    use_cache: object = True,
    generator: object = None,
) -> None:
    cfg = _check_gpt(model)
    check_generator(generator)
    check_bool(use_cache, "use_cache")
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


def _check_greedy(a: object, b: object) -> None:
    for name, seq in (("a", a), ("b", b)):
        if not isinstance(seq, Iterable) or getattr(seq, "ndim", 1) != 1:
            raise ValueError(
                f"{name} must be a list (or 1-D tensor) of token ids, got {type(seq).__name__} "
                f"{tuple(getattr(seq, 'shape', ()))}; e.g. list(generate.generate(model, prompt, n))."
            )


def _check_logprob(model: object, prompt: object, tokens: object) -> None:
    """tokens: a non-empty list of ids in the model's vocabulary; prompt as for generate."""
    _check_generate(model, prompt, 1, 0.0, None)  # the model and the prompt
    try:
        ids = torch.as_tensor(tokens) if not isinstance(tokens, str) else None
    except (TypeError, ValueError, RuntimeError):
        ids = None  # ragged lists, objects, ...
    if (
        ids is None
        or ids.ndim != 1
        or not len(ids)
        or ids.is_floating_point()
        or ids.dtype == torch.bool
    ):
        raise ValueError(
            f"tokens must be a non-empty list of token ids, got {tokens!r:.60}; encode text "
            "with data.encode(text, stoi)."
        )
    cfg, n = model.cfg, torch.as_tensor(prompt).numel() + len(ids)  # type: ignore[attr-defined]
    if ids.min() < 0 or ids.max() >= cfg.vocab_size:
        raise ValueError(
            f"tokens must be token ids in 0..{cfg.vocab_size - 1} (the model's vocabulary), got "
            f"{int(ids.min())}..{int(ids.max())}."
        )
    if n > cfg.block_size:
        raise ValueError(
            f"prompt + tokens ({n} ids) exceed the model's block_size={cfg.block_size}; "
            "score a shorter continuation."
        )
