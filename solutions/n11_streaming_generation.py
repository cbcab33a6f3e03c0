"""Worked solutions of notebook 11, written as a learner would."""

import math

import torch


def kv_attention_step(q, k_new, v_new, cache_k, cache_v):
    if cache_k is None:
        k, v = k_new, v_new
    else:
        k = torch.cat([cache_k, k_new], dim=2)
        v = torch.cat([cache_v, v_new], dim=2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, k, v


def top_k_probs(logits, k, temperature):
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]
    filtered = logits.masked_fill(logits < kth_largest, float("-inf"))
    return torch.softmax(filtered / temperature, dim=-1)


def accept_draft(target_probs, draft_probs, draft_tokens, u):
    k = len(draft_tokens)
    for i in range(k):
        x = draft_tokens[i]
        if u[i] >= target_probs[i, x] / draft_probs[i, x]:  # rejected
            residual = torch.clamp(target_probs[i] - draft_probs[i], min=0)
            return i, residual / residual.sum()
    return k, target_probs[k]


def gather_paged(cache, block_table, context_len):
    block_size = cache.shape[1]
    tokens = []
    for t in range(context_len):
        block = int(block_table[t // block_size])
        tokens.append(cache[block, t % block_size])
    return torch.stack(tokens)


EXERCISES = {
    "generate.kv_attention_step": kv_attention_step,
    "generate.top_k_probs": top_k_probs,
    "generate.accept_draft": accept_draft,
    "generate.gather_paged": gather_paged,
}
