"""Exercises of notebook 11 (streaming generation): a KV-cache attention step, top-k sampling."""

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
}
