"""Exercises of notebook 11 (streaming generation): top-k sampling, a KV-cache attention step,
the acceptance rule of speculative decoding, the block-table lookup of PagedAttention."""

from __future__ import annotations

import torch

from labkit import generate
from labkit.core.checks import Case, Exercise, close


def _kv_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    return [
        Case(
            (r(1, 1, 1, 4), r(1, 1, 1, 4), r(1, 1, 1, 4), None, None),
            label="empty cache (first token)",
        ),
        Case(
            (r(1, 2, 1, 4), r(1, 2, 1, 4), r(1, 2, 1, 4), r(1, 2, 1, 4), r(1, 2, 1, 4)),
            label="1 cached token, 2 heads",
        ),
        Case(
            (r(2, 3, 1, 8), r(2, 3, 1, 8), r(2, 3, 1, 8), r(2, 3, 5, 8), r(2, 3, 5, 8)),
            label="batch 2, 3 heads, 5 cached tokens, head_dim 8",
        ),
        Case(
            (3 * r(1, 1, 1, 16), r(1, 1, 1, 16), r(1, 1, 1, 16), r(1, 1, 7, 16), r(1, 1, 7, 16)),
            label="head_dim 16: scale by 1/sqrt(16)",
        ),
    ]


def _topk_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(10, generator=g)
    batch = torch.randn(3, 12, generator=g)
    return [
        Case((logits, 3, 1.0), label="k=3, T=1"),
        Case((logits, 1, 1.0), label="k=1 (greedy: one-hot)"),
        Case((logits, 10, 1.0), label="k = vocabulary size (plain softmax)"),
        Case((logits, 4, 0.5), label="k=4, T=0.5 (sharper)"),
        Case((batch, 5, 2.0), label="a batch of 3 rows, k=5, T=2"),
        Case(
            (torch.tensor([2.0, 1.0, 1.0, 1.0, 0.0, -1.0]), 2, 1.0),
            label="ties with the k-th logit are kept (k=2 keeps 2.0 and all three 1.0s)",
        ),
    ]


def _accept_cases() -> list[Case]:
    def t(*rows: list[float]) -> torch.Tensor:
        return torch.tensor(rows, dtype=torch.float64)

    p = t([0.1, 0.4, 0.3, 0.2], [0.25, 0.05, 0.5, 0.2], [0.3, 0.3, 0.2, 0.2], [0.7, 0.1, 0.1, 0.1])
    q = t([0.2, 0.2, 0.4, 0.2], [0.1, 0.5, 0.2, 0.2], [0.1, 0.2, 0.3, 0.4])
    p_zero, q_zero = t([0.5, 0.5, 0.0], [0.2, 0.3, 0.5]), t([0.2, 0.2, 0.6])

    def x(*ids: int) -> torch.Tensor:
        return torch.tensor(ids, dtype=torch.long)

    def u(*vals: float) -> torch.Tensor:
        return torch.tensor(vals, dtype=torch.float64)

    return [
        Case(
            (p, q, x(2, 2, 3), u(0.7, 0.95, 0.45)),
            label="p/q = 0.75, 2.5, 0.5 and u below each: all accepted, the bonus comes from p_3",
        ),
        Case(
            (p, q, x(0, 1, 0), u(0.3, 0.5, 0.0)),
            label="p/q = 0.5, 0.1, 3: the second token rejected, the residual of row 1",
        ),
        Case(
            (p, q, x(0, 2, 0), u(0.6, 0.0, 0.0)),
            label="the first token rejected (u = 0.6 > p/q = 0.5): the later ones are never looked at",
        ),
        Case(
            (p_zero, q_zero, x(2), u(0.0)),
            label="p(x) = 0: rejected even with u = 0; residual max(0, p - q) = [0.3, 0.3, 0] / 0.6",
        ),
        Case(
            (p_zero, q_zero, x(0), u(0.99)), label="p(x) > q(x): always accepted (min(1, p/q) = 1)"
        ),
        Case((p[:1], q[:0], x(), u()), label="k = 0: nothing to check, the token comes from p_0"),
    ]


def _paged_cases() -> list[Case]:
    cache = torch.arange(6 * 4 * 2, dtype=torch.float32).view(6, 4, 2, 1)  # slot values tell where
    nan_cache = cache.clone()
    nan_cache[5] = float("nan")  # a block no sequence below uses
    return [
        Case(
            (cache, torch.tensor([0, 1]), 8), label="blocks 0, 1 in order, 8 tokens (2 full blocks)"
        ),
        Case(
            (cache, torch.tensor([3, 0, 2]), 10),
            label="shuffled table [3, 0, 2], 10 tokens: the last block half full",
        ),
        Case((cache, torch.tensor([4]), 1), label="one token"),
        Case(
            (nan_cache, torch.tensor([2, 1, 5, 5], dtype=torch.int32), 7),
            label="a table longer than needed (int32): read only the blocks the 7 tokens use",
        ),
    ]


EXERCISES = {
    "generate.kv_attention_step": Exercise(
        reference=generate.kv_attention_step,
        cases=_kv_cases,
        compare=close(atol=1e-5, rtol=1e-4),
        hint="The new key and value join the cache along the sequence axis, and the new token "
        "attends over every cached position (no mask). Check which dimension of "
        "(B, H, S, head_dim) is the sequence, and what the scores are divided by.",
        formula="k = cat([cache_k, k_new], dim=2) (k_new alone if the cache is None), same for v; "
        "out = softmax(q @ k.transpose(-2, -1) / sqrt(head_dim), dim=-1) @ v; return (out, k, v).",
    ),
    # Learner-only: generate.next_token_probs with the arguments (logits, k, temperature);
    # allow-listed in tests/test_exercise_keys.py.
    "generate.top_k_probs": Exercise(
        reference=lambda logits, k, temperature: generate.next_token_probs(logits, temperature, k),
        cases=_topk_cases,
        compare=close(atol=1e-6, rtol=1e-5),
        hint="Mask before the softmax, not after (the kept probabilities must sum to 1), find "
        "the k-th largest value of each row separately, and remember the statement: ties with "
        "the k-th are kept. Do not change `logits` in place.",
        formula="kth = torch.topk(logits, k, dim=-1).values[..., -1:]; "
        "masked = logits.masked_fill(logits < kth, -inf); softmax(masked / temperature, dim=-1).",
    ),
    "generate.accept_draft": Exercise(
        reference=generate.accept_draft,
        cases=_accept_cases,
        compare=close(atol=1e-9, rtol=1e-7),
        hint="Walk the draft tokens in order and stop at the first one that fails its test "
        "(a token is kept when u is below the ratio of the two models' probabilities of it). "
        "After a rejection the next token must make up for what the draft over-proposed: only "
        "where the target has more probability than the draft, renormalised. With no "
        "rejection, the extra token comes from the target's last row.",
        formula="ratio_i = p[i, x_i] / q[i, x_i]; n = first i with u_i >= ratio_i (k if none); "
        "n == k: return k, p[k]; else r = (p[n] - q[n]).clamp(min=0); return n, r / r.sum().",
    ),
    "generate.gather_paged": Exercise(
        reference=generate.gather_paged,
        cases=_paged_cases,
        compare=close(atol=0, rtol=0),
        hint="Token t sits in the block the table lists at index t // block_size, at offset "
        "t % block_size inside it; block_size is cache.shape[1]. Return exactly context_len "
        "tokens, in order, and never read a block the sequence does not use.",
        formula="t = torch.arange(context_len); "
        "return cache[block_table.long()[t // cache.shape[1]], t % cache.shape[1]].",
    ),
}
