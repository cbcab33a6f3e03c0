"""Planted wrong answers to notebook 11's exercises must be rejected."""

import math

import torch

from labkit import checks


def test_kv_step_without_scaling_is_rejected() -> None:
    def no_scale(q, k_new, v_new, cache_k, cache_v):
        k = k_new if cache_k is None else torch.cat([cache_k, k_new], 2)
        v = v_new if cache_v is None else torch.cat([cache_v, v_new], 2)
        return torch.softmax(q @ k.transpose(-2, -1), -1) @ v, k, v

    assert not checks.check("generate.kv_attention_step", no_scale).passed


def test_kv_step_concatenating_on_the_wrong_axis_is_rejected() -> None:
    def wrong_axis(q, k_new, v_new, cache_k, cache_v):
        k = k_new if cache_k is None else torch.cat([cache_k, k_new], 1)
        v = v_new if cache_v is None else torch.cat([cache_v, v_new], 1)
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v, k, v

    res = checks.check("generate.kv_attention_step", wrong_axis)
    assert res.attempted and not res.passed


def test_kv_step_forgetting_the_cache_is_rejected() -> None:
    def ignores_cache(q, k_new, v_new, cache_k, cache_v):
        w = torch.softmax(q @ k_new.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)
        return w @ v_new, k_new, v_new

    res = checks.check("generate.kv_attention_step", ignores_cache)
    assert not res.passed and "1 cached token" in res.message


def test_kv_step_softmax_over_the_wrong_dim_is_rejected() -> None:
    def wrong_dim(q, k_new, v_new, cache_k, cache_v):
        k = k_new if cache_k is None else torch.cat([cache_k, k_new], 2)
        v = v_new if cache_v is None else torch.cat([cache_v, v_new], 2)
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -2) @ v, k, v

    assert not checks.check("generate.kv_attention_step", wrong_dim).passed


def test_top_k_temperature_after_softmax_is_rejected() -> None:
    def temp_after(logits, k, temperature):
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        p = torch.softmax(logits.masked_fill(logits < kth, float("-inf")), -1) ** (1 / temperature)
        return p  # not renormalised

    assert not checks.check("generate.top_k_probs", temp_after).passed


def test_top_k_keeping_k_plus_one_is_rejected() -> None:
    def off_by_one(logits, k, temperature):
        kth = torch.topk(logits, min(k + 1, logits.shape[-1]), dim=-1).values[..., -1:]
        return torch.softmax(logits.masked_fill(logits < kth, float("-inf")) / temperature, -1)

    assert not checks.check("generate.top_k_probs", off_by_one).passed


def test_top_k_on_the_flattened_batch_is_rejected() -> None:
    def global_topk(logits, k, temperature):
        kth = torch.topk(logits.flatten(), k).values[-1]
        return torch.softmax(logits.masked_fill(logits < kth, float("-inf")) / temperature, -1)

    res = checks.check("generate.top_k_probs", global_topk)
    assert not res.passed and "batch" in res.message


def test_kv_step_with_a_causal_mask_is_rejected() -> None:
    """A square tril mask on one new query hides every key but the first."""

    def masked(q, k_new, v_new, cache_k, cache_v):
        k = k_new if cache_k is None else torch.cat([cache_k, k_new], 2)
        v = v_new if cache_v is None else torch.cat([cache_v, v_new], 2)
        s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        keep = torch.ones(s.shape[-2], s.shape[-1], dtype=torch.bool).tril()
        return torch.softmax(s.masked_fill(~keep, float("-inf")), -1) @ v, k, v

    assert not checks.check("generate.kv_attention_step", masked).passed


def test_kv_step_scaling_by_the_sequence_length_is_rejected() -> None:
    def seq_scale(q, k_new, v_new, cache_k, cache_v):
        k = k_new if cache_k is None else torch.cat([cache_k, k_new], 2)
        v = v_new if cache_v is None else torch.cat([cache_v, v_new], 2)
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(k.shape[2]), -1) @ v, k, v

    assert not checks.check("generate.kv_attention_step", seq_scale).passed


def test_kv_step_putting_the_new_token_first_is_rejected() -> None:
    """The output is the same (attention ignores key order), but the returned cache is not."""

    def new_first(q, k_new, v_new, cache_k, cache_v):
        k = k_new if cache_k is None else torch.cat([k_new, cache_k], 2)
        v = v_new if cache_v is None else torch.cat([v_new, cache_v], 2)
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v, k, v

    res = checks.check("generate.kv_attention_step", new_first)
    assert not res.passed and "item 1" in res.message


def test_top_k_zeroing_after_the_softmax_without_renormalising_is_rejected() -> None:
    def no_renorm(logits, k, temperature):
        p = torch.softmax(logits / temperature, -1)
        kth = torch.topk(p, k, dim=-1).values[..., -1:]
        return p.masked_fill(p < kth, 0.0)

    assert not checks.check("generate.top_k_probs", no_renorm).passed


def test_top_k_dropping_ties_is_rejected() -> None:
    """Keeping exactly k indices (topk + scatter) drops logits tied with the k-th."""

    def scatter_topk(logits, k, temperature):
        top = torch.topk(logits, k, dim=-1)
        masked = torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)
        return torch.softmax(masked / temperature, -1)

    res = checks.check("generate.top_k_probs", scatter_topk)
    assert not res.passed and "ties" in res.message


def test_top_k_multiplying_by_the_temperature_is_rejected() -> None:
    def times_t(logits, k, temperature):
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        return torch.softmax(logits.masked_fill(logits < kth, float("-inf")) * temperature, -1)

    assert not checks.check("generate.top_k_probs", times_t).passed


def test_top_k_masking_the_input_in_place_is_rejected() -> None:
    def in_place(logits, k, temperature):
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits[logits < kth] = float("-inf")  # changes the caller's logits
        return torch.softmax(logits / temperature, -1)

    assert not checks.check("generate.top_k_probs", in_place).passed


def test_hints_are_graduated() -> None:
    from labkit.generate.exercises import EXERCISES

    for ex in EXERCISES.values():
        assert ex.hint and ex.formula and ex.hint != ex.formula
        assert "softmax(" not in ex.hint and "topk(" not in ex.hint  # the nudge gives no code


# ---- the acceptance rule (speculative decoding)


def _accept(p, q, x, u, *, ratio=None, residual=None, bonus=None, stop=True):
    """A configurable acceptance rule, right by default; each planted bug changes one piece."""
    k = len(x)
    ratio = ratio or (lambda pi, qi: pi / qi)
    n, rejected = k, None
    for i in range(k):
        if not u[i] < ratio(p[i, x[i]], q[i, x[i]]):
            rejected = i if rejected is None else rejected
            if stop:
                n = i
                break
    if not stop:
        n = k - (1 if rejected is not None else 0)  # counts every accepted token
    if n == k:
        return k, (bonus or (lambda p_, k_: p_[k_]))(p, k)
    r = (residual or (lambda pi, qi: (pi - qi).clamp(min=0) / (pi - qi).clamp(min=0).sum()))(
        p[n], q[n]
    )
    return n, r


def test_accept_reference_shape_passes() -> None:
    assert checks.check("generate.accept_draft", _accept).passed  # the harness itself is right


def test_accept_without_the_max_zero_clamp_is_rejected() -> None:
    def no_clamp(p, q, x, u):
        return _accept(p, q, x, u, residual=lambda pi, qi: (pi - qi) / (pi - qi).sum())

    assert not checks.check("generate.accept_draft", no_clamp).passed


def test_accept_with_the_residual_backwards_is_rejected() -> None:
    def q_minus_p(p, q, x, u):
        return _accept(
            p,
            q,
            x,
            u,
            residual=lambda pi, qi: (qi - pi).clamp(min=0) / (qi - pi).clamp(min=0).sum(),
        )

    assert not checks.check("generate.accept_draft", q_minus_p).passed


def test_accept_resampling_from_p_after_a_rejection_is_rejected() -> None:
    def resample_p(p, q, x, u):
        return _accept(p, q, x, u, residual=lambda pi, qi: pi)

    assert not checks.check("generate.accept_draft", resample_p).passed


def test_accept_with_an_unnormalised_residual_is_rejected() -> None:
    def unnormalised(p, q, x, u):
        return _accept(p, q, x, u, residual=lambda pi, qi: (pi - qi).clamp(min=0))

    assert not checks.check("generate.accept_draft", unnormalised).passed


def test_accept_with_the_ratio_upside_down_is_rejected() -> None:
    def q_over_p(p, q, x, u):
        return _accept(p, q, x, u, ratio=lambda pi, qi: qi / pi)

    assert not checks.check("generate.accept_draft", q_over_p).passed


def test_accept_not_stopping_at_the_first_rejection_is_rejected() -> None:
    def keeps_going(p, q, x, u):
        return _accept(p, q, x, u, stop=False)

    res = checks.check("generate.accept_draft", keeps_going)
    assert not res.passed


def test_accept_taking_the_bonus_from_the_wrong_row_is_rejected() -> None:
    def bonus_from_last_draft_row(p, q, x, u):
        return _accept(p, q, x, u, bonus=lambda p_, k_: p_[max(k_ - 1, 0)])

    assert not checks.check("generate.accept_draft", bonus_from_last_draft_row).passed


def test_accept_when_u_equals_a_zero_ratio_is_rejected() -> None:
    """u <= p/q accepts a token the target gives probability 0 when u = 0."""

    def less_or_equal(p, q, x, u):
        return _accept(p, q, x, u, ratio=lambda pi, qi: pi / qi + (1e-300 if pi == 0 else 0))

    res = checks.check("generate.accept_draft", less_or_equal)
    assert not res.passed and "p(x) = 0" in res.message


def test_accept_greedy_matching_is_rejected() -> None:
    """Accepting a draft token only when it is the target's argmax (the greedy rule) is not the
    sampling rule."""

    def argmax_rule(p, q, x, u):
        for i in range(len(x)):
            if int(p[i].argmax()) != int(x[i]):
                return i, p[i]
        return len(x), p[len(x)]

    assert not checks.check("generate.accept_draft", argmax_rule).passed


# ---- the block-table lookup (PagedAttention)


def test_gather_ignoring_the_block_table_is_rejected() -> None:
    """Assuming block i holds tokens i*bs..: right only for the identity table."""

    def contiguous(cache, block_table, context_len):
        return cache.flatten(0, 1)[:context_len]

    res = checks.check("generate.gather_paged", contiguous)
    assert not res.passed and "shuffled" in res.message


def test_gather_with_div_and_mod_swapped_is_rejected() -> None:
    def swapped(cache, block_table, context_len):
        t = torch.arange(context_len)
        bs = cache.shape[1]
        return cache[block_table.long()[t % len(block_table)], t // bs % bs]

    assert not checks.check("generate.gather_paged", swapped).passed


def test_gather_returning_whole_blocks_is_rejected() -> None:
    """Reading every slot of the last block returns padding (or NaN) past context_len."""

    def whole_blocks(cache, block_table, context_len):
        n = -(-context_len // cache.shape[1])
        return cache[block_table.long()[:n]].flatten(0, 1)

    res = checks.check("generate.gather_paged", whole_blocks)
    assert not res.passed and "half full" in res.message
