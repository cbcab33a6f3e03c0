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
