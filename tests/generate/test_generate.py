"""labkit.generate.gpt and labkit.generate: cache equivalence, cache memory, sampling, batching, INT8."""

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import data, env, generate, quant
from labkit.generate import gpt

TINY = gpt.GPTConfig(vocab_size=20, block_size=64, n_layer=2, n_head=2, n_embd=16)


def tiny_model(seed: int = 0) -> gpt.CharGPT:
    torch.manual_seed(seed)
    return gpt.CharGPT(TINY).eval()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Batch-1 decoding of tiny models: 1 thread is fast; 2 can crawl on a shared CPU."""
    with env.threads(1):
        yield


@pytest.fixture(scope="module")
def trained() -> gpt.CharGPT:
    return gpt.load_char_gpt()[0]


def test_greedy_identical_with_and_without_cache_trained(trained: gpt.CharGPT) -> None:
    stoi, _ = gpt.vocab()
    prompt = data.encode("The return value ", stoi)
    cached = list(generate.generate(trained, prompt, 256, use_cache=True))
    full = list(generate.generate(trained, prompt, 256, use_cache=False))
    assert len(cached) == 256
    assert cached == full


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_identical_with_and_without_cache_random_models(seed: int) -> None:
    model = tiny_model(seed)
    prompt = torch.tensor([1, 2, 3])
    assert list(generate.generate(model, prompt, 40, use_cache=True)) == list(
        generate.generate(model, prompt, 40, use_cache=False)
    )


def test_cached_logits_match_full_forward() -> None:
    model = tiny_model()
    ids = torch.randint(0, 20, (2, 12), generator=torch.Generator().manual_seed(0))
    full, _ = model(ids)
    _, cache = model(ids[:, :7])
    step_logits = []
    for t in range(7, 12):
        logits, cache = model(ids[:, t : t + 1], cache)
        step_logits.append(logits)
    torch.testing.assert_close(torch.cat(step_logits, 1), full[:, 7:], atol=1e-5, rtol=1e-4)


def test_causal_attention_matches_sdpa() -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 9, 8, generator=g) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(gpt.causal_attention(q, k, v), ref, atol=1e-5, rtol=1e-4)
    # the last 4 queries against all 9 keys = the last 4 rows of the full result
    torch.testing.assert_close(
        gpt.causal_attention(q[:, :, 5:], k, v), ref[:, :, 5:], atol=1e-5, rtol=1e-4
    )


def test_kv_attention_step_matches_last_row_of_causal_attention() -> None:
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 6, 4, generator=g) for _ in range(3))
    out, k2, v2 = generate.kv_attention_step(
        q[:, :, -1:], k[:, :, -1:], v[:, :, -1:], k[:, :, :-1], v[:, :, :-1]
    )
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)[:, :, -1:]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    assert torch.equal(k2, k) and torch.equal(v2, v)


@pytest.mark.parametrize(
    "dtype,tokens,batch", [(torch.float32, 5, 1), (torch.float32, 33, 3), (torch.bfloat16, 17, 2)]
)
def test_cache_memory_formula_matches_real_tensors(
    dtype: torch.dtype, tokens: int, batch: int
) -> None:
    model = tiny_model().to(dtype)
    ids = torch.randint(0, 20, (batch, tokens), generator=torch.Generator().manual_seed(0))
    cache = generate.prefill_cache(model, ids)
    cfg = model.cfg
    expected = generate.kv_cache_bytes(
        cfg.n_layer,
        cfg.n_head,
        cfg.n_embd // cfg.n_head,
        tokens,
        torch.finfo(dtype).bits // 8,
        batch,
    )
    assert generate.cache_tensor_bytes(cache) == expected
    assert expected == cfg.n_layer * 2 * cfg.n_embd * tokens * batch * (
        torch.finfo(dtype).bits // 8
    )


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 12), temperature=st.floats(0.1, 5.0), seed=st.integers(0, 1000))
def test_top_k_probs_against_torch_topk(k: int, temperature: float, seed: int) -> None:
    logits = torch.randn(3, 12, generator=torch.Generator().manual_seed(seed))
    probs = generate.next_token_probs(logits, temperature, k)
    top = torch.topk(logits, k, dim=-1)
    expected = torch.zeros_like(logits).scatter(
        -1, top.indices, torch.softmax(top.values / temperature, -1)
    )
    torch.testing.assert_close(probs, expected, atol=1e-6, rtol=1e-5)


def test_sampling_greedy_and_top1() -> None:
    logits = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(generate.sample_next(logits, 0.0), logits.argmax(-1))
    g = torch.Generator().manual_seed(0)
    assert torch.equal(generate.sample_next(logits, 3.0, top_k=1, generator=g), logits.argmax(-1))


def test_sampling_frequencies_follow_temperature() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0]]).repeat(20000, 1)
    g = torch.Generator().manual_seed(0)
    counts = (
        torch.bincount(generate.sample_next(logits, 2.0, generator=g), minlength=3).float() / 20000
    )
    torch.testing.assert_close(counts, torch.softmax(logits[0] / 2.0, -1), atol=0.015, rtol=0)


def test_bad_input_is_a_clear_error() -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match="block_size"):
        list(generate.generate(model, [1, 2], 63))
    with pytest.raises(ValueError, match="non-empty"):
        list(generate.generate(model, [], 3))
    with pytest.raises(ValueError, match="temperature"):
        list(generate.generate(model, [1], 3, temperature=-1.0))
    with pytest.raises(ValueError, match="temperature"):
        generate.next_token_probs(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="top_k"):
        generate.top_k_logits(torch.zeros(3, 5), 0)
    with pytest.raises(ValueError, match="top_k"):
        generate.top_k_logits(torch.zeros(3, 5), 2.5)  # used to pass through when >= V
    with pytest.raises(ValueError, match="vocabulary"):
        list(generate.generate(model, [1, model.cfg.vocab_size], 3))
    with pytest.raises(ValueError, match="vocabulary"):
        list(generate.generate(model, [-1, 2], 3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_embd": 10**6}, "GiB"),  # a model of width 10^6: ~48 trillion parameters, refused
        ({"n_layer": 10**4, "n_embd": 1024}, "GiB"),
        ({"n_embd": 0}, "n_embd"),
        ({"n_head": -4}, "n_head"),
        ({"n_embd": 100, "n_head": 3}, "divisible"),
        ({"vocab_size": 2.5}, "vocab_size"),
    ],
)
def test_gpt_config_refuses_bad_or_huge_sizes_before_allocating(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        gpt.GPTConfig(**kwargs)


def test_gpt_config_parameter_estimate_matches_the_model() -> None:
    cfg = gpt.GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=16)
    real = sum(p.numel() for p in gpt.CharGPT(cfg).parameters())
    assert abs(real - cfg.approx_parameters()) / real < 0.1  # biases and LayerNorms not counted


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((4, -4, 24, 320, 4), "n_head"),  # gave a negative byte count
        ((-4, 4, 24, 320, 4), "n_layer"),
        ((4, 4, 24, -320, 4), "tokens"),
        ((4, 4, 24, 320, 2.5), "bytes_per_element"),
    ],
)
def test_kv_cache_bytes_refuses_negative_sizes(args, match) -> None:
    with pytest.raises(ValueError, match=match):
        generate.kv_cache_bytes(*args)


def test_serving_inputs_are_checked() -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match="GiB"):  # would prefill a ~20 GiB cache
        generate.decode_step_seconds(model, batch=10**7, context=8)
    with pytest.raises(ValueError, match="n must"):
        generate.poisson_requests(-5, rate=2.0)
    with pytest.raises(ValueError, match="min_tokens"):
        generate.poisson_requests(10, rate=2.0, min_tokens=64, max_tokens=8)
    with pytest.raises(ValueError, match="rate"):
        generate.poisson_requests(10, rate=-1.0)


def test_streaming_yields_one_token_at_a_time() -> None:
    gen = generate.generate(tiny_model(), [1, 2], 5)
    first = next(gen)
    assert isinstance(first, int)
    assert len([first, *gen]) == 5
    arrivals = generate.stream_timings(tiny_model(), [1, 2], 6)
    assert len(arrivals) == 6 and arrivals == sorted(arrivals)
    summary = generate.latency_summary(arrivals)
    assert summary["ttft_ms"] == pytest.approx(arrivals[0] * 1e3)


def test_timed_stream_returns_tokens_in_order_with_rising_clock() -> None:
    tokens, arrivals = generate.timed(iter([5, 3, 9]))
    assert tokens == [5, 3, 9] and len(arrivals) == 3 and arrivals == sorted(arrivals)
    model = tiny_model()
    tokens, arrivals = generate.timed(generate.generate(model, [1, 2], 7))
    assert tokens == list(generate.generate(model, [1, 2], 7)) and len(arrivals) == 7


def test_stream_latency_is_a_median_of_runs() -> None:
    s = generate.stream_latency(tiny_model(), [1, 2], 5, repeats=3)
    assert set(s) == {"ttft_ms", "inter_token_ms", "tokens_per_s"}
    assert all(v > 0 for v in s.values())
    with pytest.raises(ValueError, match="repeats"):
        generate.stream_latency(tiny_model(), [1, 2], 5, repeats=0)


def test_decode_step_seconds_runs_and_checks_its_input() -> None:
    assert generate.decode_step_seconds(tiny_model(), batch=3, context=10, repeats=2) > 0
    with pytest.raises(ValueError, match="block_size"):
        generate.decode_step_seconds(tiny_model(), batch=1, context=64)


def test_agreement_on_val(trained: gpt.CharGPT) -> None:
    same = generate.agreement_on_val(trained, trained, batches=1, batch_size=2)
    assert same["top1_agreement"] == 1.0
    assert same["loss_reference"] == same["loss_candidate"]
    torch.manual_seed(0)
    untrained = gpt.CharGPT(trained.cfg).eval()
    other = generate.agreement_on_val(trained, untrained, batches=1, batch_size=2)
    assert other["top1_agreement"] < 0.5
    assert other["loss_candidate"] > other["loss_reference"] + 1.0


def test_batching_simulation_by_hand() -> None:
    # three requests at t=0 needing 4, 1, 1 tokens; batch of 2; every step takes 1 s
    reqs = [generate.Request(0.0, 4), generate.Request(0.0, 1), generate.Request(0.0, 1)]
    step = generate.linear_step_time(1.0, 0.0)
    static = generate.simulate_batching(reqs, "static", 2, step)
    cont = generate.simulate_batching(reqs, "continuous", 2, step)
    # static: {0,1} runs 4 steps (1 finishes at 1), then {2} finishes at 5 -> latencies 4, 1, 5
    assert static["makespan_s"] == 5 and static["p50_s"] == 4
    assert static["throughput_tok_s"] == pytest.approx(6 / 5)
    # continuous: step 1 {0,1}; 1 leaves, 2 joins; step 2 {0,2}; 0 ends at 4 -> latencies 4, 1, 2
    assert cont["makespan_s"] == 4 and cont["p50_s"] == 2
    assert cont["throughput_tok_s"] == pytest.approx(6 / 4)
    assert cont["p99_s"] == pytest.approx(2 + 0.98 * 2)


def test_batching_continuous_never_worse_on_poisson_load() -> None:
    reqs = generate.poisson_requests(200, rate=40.0, seed=3)
    assert reqs == generate.poisson_requests(200, rate=40.0, seed=3)
    s = generate.simulate_batching(reqs, "static", 8)
    c = generate.simulate_batching(reqs, "continuous", 8)
    assert c["throughput_tok_s"] >= s["throughput_tok_s"] and c["p90_s"] < s["p90_s"]
    with pytest.raises(ValueError, match="policy"):
        generate.simulate_batching(reqs, "greedy", 8)


def test_int8_linear_close_to_float_and_int_arithmetic_exact() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 32)
    q = generate.Int8Linear(lin)
    x = torch.randn(5, 64)
    y = q(x)
    rel = ((y - lin(x)).norm() / lin(x).norm()).item()
    assert rel < 0.02
    s_x = x.abs().amax(1, keepdim=True) / 127
    xq = torch.round(x / s_x).clamp(-127, 127)
    manual = (
        xq.double() @ q.weight_q.double().t()
    ) * s_x.double() * q.weight_scale.double() + lin.bias.double()
    torch.testing.assert_close(y.double(), manual, atol=1e-5, rtol=1e-5)
    assert q.weight_q.dtype == torch.int8 and q.weight_q.abs().max() == 127
    # the one symmetric weight scale of the course, max|W_row| / 127
    assert torch.equal(q.weight_scale, quant.symmetric_scale(lin.weight, 8, axis=0))
    assert torch.equal(q.weight_scale, lin.weight.detach().abs().amax(1) / 127)


def test_quantized_model_generates_and_is_smaller(trained: gpt.CharGPT) -> None:
    qmodel = generate.quantize_linear_int8(trained)
    n_int8 = sum(isinstance(m, generate.Int8Linear) for m in qmodel.modules())
    assert n_int8 == 4 * trained.cfg.n_layer + 1
    assert not any(isinstance(m, generate.Int8Linear) for m in trained.modules())
    out = list(generate.generate(qmodel, [10, 11, 12], 20))
    assert len(out) == 20
    assert math.isfinite(gpt.val_loss(qmodel, batches=2))


def test_int8_matmul_is_exact_on_the_worst_case_codes() -> None:
    """torch._int_mm saturates int16 pair sums on CPUs without VNNI (found under forced
    AVX2 / SSE4: errors of 57,432 on random codes); int8_matmul must be exact everywhere."""
    a = torch.full((3, 96), 127, dtype=torch.int8)
    b = torch.full((96, 5), 127, dtype=torch.int8)
    b[:, 1] = -127
    got = generate.int8_matmul(a, b)
    assert got.dtype == torch.int32
    assert torch.equal(got.long(), a.long() @ b.long())
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-127, 128, (17, 96), dtype=torch.int8, generator=g)
    w = torch.randint(-127, 128, (96, 40), dtype=torch.int8, generator=g)
    assert torch.equal(generate.int8_matmul(x, w).long(), x.long() @ w.long())
    assert isinstance(generate.int_mm_is_exact(), bool)
