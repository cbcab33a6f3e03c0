"""Notebook 11, part 7: speculative decoding, a small draft model guesses, the target checks.

Each round the draft proposes k tokens x_1..x_k, one cheap step each (x_i ~ q_i). The target
scores all of them in ONE forward pass over k + 1 positions, giving p_0..p_k (p_i: the target's
distribution where x_{i+1} would go). Token i is accepted with probability

    min(1, p_i(x_i) / q_i(x_i));   at the first rejection emit y ~ norm(max(0, p_i - q_i)), stop;
    if all k are accepted emit a bonus y ~ p_k.

Every emitted token is then distributed exactly as the target alone would sample it
(Leviathan et al. 2023, Chen et al. 2023): P(accept x) + P(reject) * residual(x) = p(x).
Greedy (T = 0): keep draft tokens while they equal the target's argmax, then emit that argmax,
so the output is the target's own greedy output, token for token. One target call yields
1..k+1 tokens; with a per-token acceptance rate alpha the expected number is
(1 - alpha^(k+1)) / (1 - alpha).

The draft, data/char_gpt_draft.safetensors, is a 1-layer CharGPT trained by the same
``train_char_gpt`` (``python -m labkit.course.train_assets char_gpt_draft``). Any module with
CharGPT's call interface and a GPTConfig ``.cfg`` works as a draft, e.g. the weightless n-gram
draft of labkit/generate/ngram.py (``load_ngram_draft``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from labkit.core import assets
from labkit.core.errors import check_fraction, check_generator, check_int, check_number
from labkit.generate.gpt import (
    CharGPT,
    GPTConfig,
    KVCache,
    _check_gpt,
    _check_retrain,
    _from_metadata,
    train_char_gpt,
    vocab,
)

DRAFT_ASSET = "char_gpt_draft"
DRAFT_SIZES = {"n_layer": 1, "n_head": 2, "n_embd": 48}  # ~12x fewer weights than the target
DRAFT_STEPS = 1500


def accept_draft(
    target_probs: torch.Tensor,
    draft_probs: torch.Tensor,
    draft_tokens: torch.Tensor,
    u: torch.Tensor,
) -> tuple[int, torch.Tensor]:
    """The acceptance rule with given uniforms: (n accepted, distribution of the next token).

    target_probs (k+1, V) rows p_0..p_k; draft_probs (k, V) rows q_i; draft_tokens (k,) with
    x_i ~ q_i; u (k,) uniforms in [0, 1). x_i is accepted when u_i < p_i(x_i) / q_i(x_i), which
    happens with probability min(1, p_i(x_i) / q_i(x_i)); n is the index of the first rejection
    (k if none). The next token comes from norm(max(0, p_n - q_n)) after a rejection, from
    p_k (the bonus) when all k were accepted.
    Taught in notebooks/11_streaming_generation.ipynb, "Exercise 3: the acceptance rule".
    """
    _check_accept(target_probs, draft_probs, draft_tokens, u)
    k = draft_tokens.shape[0]
    rows = torch.arange(k)
    p_x = target_probs[rows, draft_tokens]  # (k,) p_i(x_i)
    q_x = draft_probs[rows, draft_tokens]  # (k,) q_i(x_i) > 0: x_i was drawn from q_i
    rejected = (u * q_x >= p_x).nonzero()  # u < p/q without dividing by q
    n = int(rejected[0]) if len(rejected) else k  # first rejection, or all k accepted
    if n == k:
        return k, target_probs[k]  # (V,) the bonus token's distribution
    residual = (target_probs[n] - draft_probs[n]).clamp(min=0)  # (V,) max(0, p - q)
    total = residual.sum()  # > 0 whenever a rejection is possible (p != q)
    return n, residual / total if total > 0 else target_probs[n]


def speculative_step(
    target_probs: torch.Tensor,
    draft_probs: torch.Tensor,
    draft_tokens: torch.Tensor,
    generator: torch.Generator | None = None,
) -> list[int]:
    """One round of speculative sampling: the accepted draft tokens, then one target token.

    target_probs (k+1, V), draft_probs (k, V), draft_tokens (k,) long with x_i ~ q_i. Draws
    u ~ U[0, 1)^k, applies ``accept_draft`` and samples the last token from the distribution it
    returns. Returns 1..k+1 ints: all but the last are accepted draft tokens. All randomness
    comes from ``generator``. The first emitted token is distributed exactly as p_0.
    Used by speculative_generate (labkit/generate/speculative.py).
    """
    _check_step(target_probs, draft_probs, draft_tokens, generator)
    u = torch.rand(draft_tokens.shape[0], generator=generator, dtype=target_probs.dtype)  # (k,)
    n, dist = accept_draft(target_probs, draft_probs, draft_tokens, u)
    last = int(torch.multinomial(dist, 1, generator=generator))
    return [int(t) for t in draft_tokens[:n]] + [last]


def expected_tokens_per_call(alpha: float, k: int) -> float:
    """(1 - alpha^(k+1)) / (1 - alpha): expected tokens one target call yields (k + 1 at alpha = 1).

    Each of the k draft tokens is accepted with probability alpha, independently; the round
    stops at the first rejection and always adds one target token.
    Taught in notebooks/11_streaming_generation.ipynb, "7. Speculative decoding".
    """
    _check_alpha(alpha, k)
    return float(k + 1) if alpha == 1 else (1 - alpha ** (k + 1)) / (1 - alpha)


@torch.no_grad()
def speculative_generate(
    target: CharGPT,
    draft: CharGPT,
    prompt: torch.Tensor | Sequence[int],
    max_new_tokens: int,
    k: int = 4,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    stats: dict[str, int] | None = None,
) -> Iterator[int]:
    """Yield ``max_new_tokens`` ids like ``generate``, k draft tokens checked per target call.

    Both models keep a KV cache; each round the draft proposes kk = min(k, tokens left - 1)
    tokens one at a time, and the target scores [last token, x_1..x_kk] in one forward pass
    (kk + 1 positions: logits rows p_0..p_kk). temperature=0: accept x_i while it equals the
    target's argmax, then emit the target's argmax (= the target's greedy output, whatever the
    draft). temperature>0: ``speculative_step`` on softmax(logits / T). Both caches are then
    cut back to the accepted prefix. ``stats`` (a dict, optional) counts target_calls,
    draft_calls, accepted and tested draft tokens (alpha = accepted / tested).
    Taught in notebooks/11_streaming_generation.ipynb, "7. Speculative decoding".
    """
    _check_speculative(target, draft, prompt, max_new_tokens, k, temperature, generator, stats)
    target.eval(), draft.eval()
    seq = [int(t) for t in torch.as_tensor(prompt).view(-1)]  # every token so far
    t_cache: KVCache | None = None  # the target's cache holds seq[:t_len]
    d_cache: KVCache | None = None  # the draft's cache holds seq[:d_len]
    t_len = d_len = 0
    count = stats if stats is not None else {}  # updated as the rounds go
    count.update(target_calls=0, draft_calls=0, accepted=0, tested=0)
    produced = 0
    while (left := max_new_tokens - produced) > 0:
        kk = min(k, left - 1)  # never past max_new_tokens (nor the block size)
        drafts, q_rows, feed = [], [], seq[d_len:]
        for _ in range(kk):  # the draft: kk cheap steps
            logits, d_cache = draft(torch.tensor([feed]), d_cache)  # (1, len(feed), V)
            d_len += len(feed)
            x, q = _pick(logits[0, -1], temperature, generator)
            drafts.append(x), q_rows.append(q)
            feed = [x]
        logits, t_cache = target(torch.tensor([seq[t_len:] + drafts]), t_cache)  # one call
        rows = logits[0, -(kk + 1) :]  # (kk + 1, V): p_0..p_kk
        if temperature == 0:
            best = rows.argmax(-1).tolist()  # the target's greedy choice at each position
            n = next((i for i in range(kk) if drafts[i] != best[i]), kk)
            new = drafts[:n] + [best[n]]
        else:
            p = torch.softmax(rows / temperature, dim=-1)  # (kk + 1, V)
            q = torch.stack(q_rows) if q_rows else p[:0]  # (kk, V)
            new = speculative_step(p, q, torch.tensor(drafts, dtype=torch.long), generator)
        seq += new
        produced += len(new)
        t_len, d_len = len(seq) - 1, min(d_len, len(seq) - 1)  # keep the accepted prefix
        t_cache, d_cache = _truncate(t_cache, t_len), _truncate(d_cache, d_len)
        count["target_calls"] += 1
        count["draft_calls"] += kk
        count["accepted"] += len(new) - 1
        count["tested"] += min(len(new), kk)  # the accepted ones and the rejected one
        yield from new


def _pick(logits: torch.Tensor, temperature: float, generator: Any) -> tuple[int, torch.Tensor]:
    """The draft's token for logits (V,): argmax at T = 0, else a sample; and q (V,)."""
    if temperature == 0:
        return int(logits.argmax()), logits  # q is not needed when greedy
    q = torch.softmax(logits / temperature, dim=-1)  # (V,)
    return int(torch.multinomial(q, 1, generator=generator)), q


def _truncate(cache: KVCache | None, length: int) -> KVCache | None:
    """The first ``length`` positions of every layer's (k, v), (B, nh, S, hs); None if empty."""
    if cache is None or length == 0:
        return None
    return [(k[:, :, :length], v[:, :, :length]) for k, v in cache]


def train_draft_gpt(steps: int = DRAFT_STEPS, seed: int = 0) -> tuple[CharGPT, dict[str, str]]:
    """The draft model: ``train_char_gpt`` with DRAFT_SIZES (1 layer, width 48), same vocabulary
    and block size as the target. Used by load_draft_gpt (labkit/generate/speculative.py).
    """
    stoi, _ = vocab()
    cfg = GPTConfig(vocab_size=len(stoi), **DRAFT_SIZES)
    return train_char_gpt(steps=steps, seed=seed, cfg=cfg)


assets.register(DRAFT_ASSET, build=_from_metadata, train=train_draft_gpt)


def load_draft_gpt(retrain: bool = False) -> tuple[CharGPT, dict[str, str]]:
    """The draft model of data/char_gpt_draft.safetensors (eval mode) and its metadata.

    retrain=True (or a missing file) trains it again first (labkit.assets.load).
    Taught in notebooks/11_streaming_generation.ipynb, "7. Speculative decoding".
    """
    _check_retrain(retrain)
    model, meta = assets.load(DRAFT_ASSET, retrain=retrain)
    return model, meta  # type: ignore[return-value]


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_accept(p: Any, q: Any, tokens: Any, u: Any) -> None:
    """Shapes (k+1, V), (k, V), (k,) long, (k,); probabilities of a token drawn from q;
    uniforms u in [0, 1)."""
    ok = all(isinstance(t, torch.Tensor) for t in (p, q, tokens, u))
    ok = ok and p.ndim == 2 and q.ndim == 2 and tokens.ndim == 1 and u.ndim == 1
    ok = ok and p.is_floating_point() and q.is_floating_point() and not tokens.is_floating_point()
    ok = ok and q.shape == (p.shape[0] - 1, p.shape[1]) and tokens.shape == u.shape == (len(q),)
    if not ok:
        shapes = [tuple(getattr(t, "shape", ())) for t in (p, q, tokens, u)]
        got = ", ".join(f"{n} {s}" for n, s in zip("pqxu", shapes, strict=True))
        raise ValueError(
            "speculative decoding needs target_probs (k+1, V), draft_probs (k, V), float, "
            f"draft_tokens (k,) integer ids and u (k,); got {got} (p, q, x, u)."
        )
    if len(tokens) and (tokens.min() < 0 or tokens.max() >= p.shape[1]):
        raise ValueError(f"draft_tokens must be ids in 0..{p.shape[1] - 1}, got {tokens.tolist()}.")
    if len(tokens) and not bool((q[torch.arange(len(tokens)), tokens] > 0).all()):
        raise ValueError(
            "each draft token must have q_i(x_i) > 0 (it was drawn from draft_probs[i]); "
            "pass the draft's probabilities, not its logits."
        )
    if not all(bool((torch.isfinite(t) & (t >= 0)).all()) for t in (p, q)):
        raise ValueError("target_probs and draft_probs must be finite and >= 0 (softmax outputs).")
    if not bool(((u >= 0) & (u < 1)).all()):  # False for NaN too
        raise ValueError(
            f"u must hold uniforms in [0, 1), got {u.tolist()}; draw them with torch.rand(k)."
        )


def _check_step(p: Any, q: Any, tokens: Any, generator: Any) -> None:
    """As accept_draft's check (u drawn here), and a torch.Generator or None."""
    check_generator(generator)
    k = len(tokens) if isinstance(tokens, torch.Tensor) and tokens.ndim == 1 else 0
    _check_accept(p, q, tokens, torch.zeros(k))


def _check_alpha(alpha: Any, k: Any) -> None:
    check_fraction(alpha, "alpha", include_one=True)
    check_int(k, "k", low=0)


def _check_speculative(
    target: Any,
    draft: Any,
    prompt: Any,
    max_new_tokens: Any,
    k: Any,
    temperature: Any,
    generator: Any = None,
    stats: Any = None,
) -> None:
    check_generator(generator)
    if stats is not None and not isinstance(stats, dict):
        raise ValueError(
            f"stats must be a dict (filled in as the rounds go) or None, got {stats!r}."
        )
    t_cfg = _check_gpt(target, name="target")
    d_cfg = _check_gpt(draft, name="draft")
    if t_cfg.vocab_size != d_cfg.vocab_size:
        raise ValueError(
            f"target and draft must share one vocabulary, got vocab_size {t_cfg.vocab_size} and "
            f"{d_cfg.vocab_size}; train the draft on the same text (generate.load_draft_gpt)."
        )
    check_int(k, "k (draft tokens per round)", low=1, high=64)
    check_number(temperature, "temperature (0 = greedy)", low=0)
    new = check_int(max_new_tokens, "max_new_tokens", low=1)
    try:
        ids = torch.as_tensor(prompt) if not isinstance(prompt, str) else torch.empty(0)
    except (TypeError, ValueError, RuntimeError):
        ids = torch.empty(0)
    n = ids.numel() if ids.ndim == 1 and not ids.is_floating_point() else 0
    if n == 0:
        raise ValueError(
            f"prompt must be a non-empty 1-D sequence of token ids, got {prompt!r:.60}; "
            "encode text with data.encode(text, stoi)."
        )
    block = min(t_cfg.block_size, d_cfg.block_size)
    if n + new > block:
        raise ValueError(
            f"prompt ({n}) + max_new_tokens ({new}) exceeds block_size={block} (the smaller of "
            "target and draft); shorten the prompt or generate fewer tokens."
        )
