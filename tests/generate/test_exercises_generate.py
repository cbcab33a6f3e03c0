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
