"""Notebook 11, part 7b: a character n-gram draft for speculative decoding (no weights, no training).

Counts of the training split give, for every context h of up to n - 1 characters seen there,
an interpolated distribution (additive smoothing towards the next shorter context h', the
context without its oldest token):

    q(x | h) = (c(h, x) + beta * q(x | h')) / (c(h) + beta),   q(x) = (c(x) + 1) / (N + V),

so q(x | h) > 0 for every x and sums to 1: a real distribution, as speculative sampling needs.
A step is one dict look-up of the longest seen context and one row of a precomputed table.
``NgramDraft`` has CharGPT's call interface, forward(ids (1, T), cache) -> (logits (1, T, V),
cache), where the logits are log q and the "cache" is the context so far in KV-cache layout
[(ids, ids)], each (1, 1, S, 1), so ``speculative_generate`` cuts it back like a KV cache.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from labkit.core.errors import check_int, check_positive
from labkit.generate.gpt import GPTConfig, split_ids, vocab

ORDER = 5  # contexts of up to 4 characters
BETA = 2.0  # weight of the shorter context's distribution (pseudo-counts)


def ngram_tables(
    ids: torch.Tensor, vocab_size: int, order: int = ORDER, beta: float = BETA
) -> tuple[list[dict[tuple[int, ...], int]], torch.Tensor]:
    """(index, log_q): index[m] maps each context of m tokens seen in ``ids`` to its row of
    log_q (R, V), the interpolated log q(x | context) above; index[0] = {(): 0} is the unigram.
    Used by NgramDraft (labkit/generate/ngram.py).
    """
    _check_tables(ids, vocab_size, order, beta)
    V, ids = vocab_size, ids.long()
    counts = torch.bincount(ids, minlength=V).double()  # (V,) c(x)
    blocks = [((counts + 1) / (counts.sum() + V)).view(1, V)]  # per order m: (R_m, V) q rows
    index: list[dict[tuple[int, ...], int]] = [{(): 0}]
    keys = torch.zeros(1, dtype=torch.long)  # sorted context hashes of the previous order
    for m in range(1, order):
        ctx = ids.unfold(0, m, 1)[:-1]  # (N - m, m) every context followed by a token
        hashes = (ctx * V ** torch.arange(m - 1, -1, -1)).sum(1)  # (N - m,) oldest digit first
        new_keys, inv = torch.unique(hashes, return_inverse=True)  # (R_m,) sorted, (N - m,)
        c = torch.zeros(len(new_keys) * V, dtype=torch.float64)
        c.index_add_(0, inv * V + ids[m:], torch.ones(len(inv), dtype=torch.float64))
        c = c.view(len(new_keys), V)  # (R_m, V) c(h, x)
        parent = torch.searchsorted(keys, new_keys % V ** (m - 1))  # (R_m,) row of h' (drop oldest)
        q = (c + beta * blocks[-1][parent]) / (c.sum(1, keepdim=True) + beta)  # (R_m, V)
        start = sum(len(b) for b in blocks)
        seen = ctx[_first(inv, len(new_keys))].tolist()  # (R_m, m) the contexts, in row order
        index.append({tuple(h): start + i for i, h in enumerate(seen)})
        blocks.append(q)
        keys = new_keys
    table = torch.cat(blocks)  # (R, V)
    return index, table.log().float()


def _first(inv: torch.Tensor, n: int) -> torch.Tensor:
    """For each of n groups, the position of one occurrence in ``inv``."""
    pos = torch.empty(n, dtype=torch.long)
    pos[inv] = torch.arange(len(inv))
    return pos


class NgramDraft(nn.Module):
    """A character n-gram model with CharGPT's call interface, for ``speculative_generate``.

    forward(ids (1, T), cache) -> (log q (1, T, V), cache [(ctx, ctx)], ctx (1, 1, S, 1)):
    row t is q(. | the last order - 1 tokens up to position t), backed off to the longest
    context seen in training. ``cfg`` is a GPTConfig for the vocabulary and block size only.
    Used by load_ngram_draft (labkit/generate/ngram.py).
    """

    def __init__(self, ids: torch.Tensor, cfg: GPTConfig, order: int = ORDER, beta: float = BETA):
        super().__init__()
        self.cfg, self.order = cfg, order
        self.index, self.log_q = ngram_tables(ids, cfg.vocab_size, order, beta)  # (R, V)

    def row(self, context: list[int]) -> int:
        """The table row of the longest suffix of ``context`` (< order tokens) seen in training."""
        for m in range(min(len(context), self.order - 1), 0, -1):
            hit = self.index[m].get(tuple(context[-m:]))
            if hit is not None:
                return hit
        return 0

    def forward(self, ids: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
        new = ids.view(1, 1, -1, 1)  # (1, 1, T, 1)
        ctx = new if cache is None else torch.cat([cache[0][0], new], dim=2)  # (1, 1, S, 1)
        seq = ctx[0, 0, -(ids.shape[1] + self.order - 2) :, 0].tolist()  # what the rows need
        first = len(seq) - ids.shape[1]  # position of the first new token in seq
        rows = [self.row(seq[max(0, t - self.order + 2) : t + 1]) for t in range(first, len(seq))]
        logits = self.log_q[rows[0]].view(1, 1, -1) if len(rows) == 1 else self.log_q[rows][None]
        return logits, [(ctx, ctx)]  # (1, T, V) log q, the context so far


def load_ngram_draft(order: int = ORDER, beta: float = BETA) -> NgramDraft:
    """An NgramDraft counted on the training split of the bundled text (never the val split),
    with the target CharGPT's vocabulary and block size; builds in about a second (0.3-1.5 s
    measured on a 2-core CPU).
    Taught in notebooks/11_streaming_generation.ipynb, "7. Speculative decoding".
    """
    train_ids, _ = split_ids()
    stoi, _ = vocab()
    cfg = GPTConfig(vocab_size=len(stoi), n_layer=1, n_head=1, n_embd=1)  # sizes unused
    return NgramDraft(train_ids, cfg, order, beta)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_tables(ids: Any, vocab_size: Any, order: Any, beta: Any) -> None:
    check_int(vocab_size, "vocab_size", low=1)
    check_int(order, "order (n of the n-gram)", low=2, high=8)
    check_positive(beta, "beta (pseudo-counts of the shorter context)")
    ok = isinstance(ids, torch.Tensor) and ids.ndim == 1 and not ids.is_floating_point()
    if not ok or len(ids) <= order or ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(
            f"ids must be a 1-D integer tensor of more than order={order} token ids in "
            f"0..{vocab_size - 1}; encode the text with data.encode(text, stoi)."
        )
