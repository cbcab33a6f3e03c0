"""labkit.generate.gpt and labkit.generate: cache equivalence, cache memory, sampling, batching, INT8."""

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import data, env, generate, models, quant
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


def test_kv_attention_step_matches_last_row_of_causal_attention() -> None:
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 6, 4, generator=g) for _ in range(3))
    out, k2, v2 = generate.kv_attention_step(
        q[:, :, -1:], k[:, :, -1:], v[:, :, -1:], k[:, :, :-1], v[:, :, :-1]
    )
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)[:, :, -1:]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    assert torch.equal(k2, k) and torch.equal(v2, v)


def test_kv_attention_step_is_the_models_cache_path() -> None:
    """kv_attention_step is the deliberate twin of TransformerBlock's cache path
    (labkit/core/models.py: cat the cache, attention(q, k, v, causal=True, offset=M - N))."""
    torch.manual_seed(0)
    d, nh, hs = 16, 2, 8
    block = models.TransformerBlock(d, nh, causal=True).eval()
    x = torch.randn(2, 6, d)
    with torch.no_grad():
        _, past = block(x[:, :5])  # the cache of 5 positions
        y, (k, v) = block(x[:, 5:], past)  # the model's step for position 6
        q, k_new, v_new = block.qkv(block.ln1(x[:, 5:])).split(d, dim=2)  # each (B, 1, d)
        q, k_new, v_new = (t.view(2, 1, nh, hs).transpose(1, 2) for t in (q, k_new, v_new))
        out, k2, v2 = generate.kv_attention_step(q, k_new, v_new, *past)  # (B, nh, 1, hs)
        twin = x[:, 5:] + block.proj(out.transpose(1, 2).reshape(2, 1, d))
        twin = twin + block.out(F.gelu(block.fc(block.ln2(twin))))
    torch.testing.assert_close(twin, y, atol=1e-6, rtol=1e-5)
    assert torch.equal(k2, k) and torch.equal(v2, v)
    offset = k.shape[2] - q.shape[2]  # M - N: the new query sees every cached key
    torch.testing.assert_close(out, models.attention(q, k, v, causal=True, offset=offset))


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


NAN, INF = float("nan"), float("inf")
R = torch.zeros(1, 2, 1, 4)  # one new token: (B, H, 1, hd)


@pytest.mark.parametrize(
    ("call", "match"),
    [  # NaN / inf reaching sampling
        (lambda: generate.sample_next(torch.tensor([[0.0, NAN, 1.0]])), "logits contain NaN"),
        (lambda: generate.sample_next(torch.tensor([[0.0, INF]]), 1.0), "logits contain NaN"),
        (lambda: generate.sample_next(torch.tensor([[-INF, -INF], [0.0, 1.0]])), "all -inf"),
        (lambda: generate.next_token_probs(torch.tensor([NAN, 1.0]), 1.0), "logits contain NaN"),
        (lambda: generate.top_k_logits(torch.zeros(2, 0), 1), "logits must be a non-empty"),
        (lambda: generate.sample_next([0.1, 0.9]), "logits must be a torch.Tensor"),
        (lambda: generate.top_k_logits(torch.zeros(5), True), "top_k must be an integer"),
        # mismatched shapes in the KV-cache step
        (
            lambda: generate.kv_attention_step(
                R, R, R, torch.zeros(1, 3, 5, 4), torch.zeros(1, 3, 5, 4)
            ),
            "same B, H and hd",
        ),
        (
            lambda: generate.kv_attention_step(R, torch.zeros(1, 2, 1, 8), R, None, None),
            "same B, H and hd",
        ),
        (
            lambda: generate.kv_attention_step(
                R, R, R, torch.zeros(1, 2, 5, 4), torch.zeros(1, 2, 4, 4)
            ),
            "same B, H and hd",
        ),
        (
            lambda: generate.kv_attention_step(R, R, R, torch.zeros(1, 2, 5, 4), None),
            "both None for the first token",
        ),
        (
            lambda: generate.kv_attention_step(R[0], R, R, None, None),
            "needs tensors q, k_new, v_new",
        ),
        # counts: zero, negative, fractional, bool, huge
        (lambda: generate.kv_cache_bytes(4, 4, 24, 0, 4), "tokens must be an integer >= 1"),
        (lambda: generate.kv_cache_bytes(4, 4, 24, 320, 4, batch=True), "batch must be an integer"),
        (lambda: generate.latency_summary([]), "arrivals is empty"),
        (lambda: generate.poisson_requests(10**7, rate=1.0), "n must be an integer from 1"),
        (lambda: generate.poisson_requests(10, rate=NAN), "rate"),
        (lambda: generate.simulate_batching([], "static", 4), "requests is empty"),
        (lambda: generate.simulate_batching([(0.0, 4)], "static", 4), "Request"),
        (lambda: generate.simulate_batching([generate.Request(0.0, 4)], "static", 0), "max_batch"),
        (
            lambda: generate.simulate_batching([generate.Request(0.0, 4)], "static", 2.5),
            "max_batch",
        ),
        # a non-model where a model is expected
        (lambda: generate.quantize_linear_int8("char_gpt"), "model must be a torch.nn.Module"),
        (
            lambda: generate.prefill_cache({"tok.weight": 0}, torch.zeros(1, 3, dtype=torch.long)),
            "model must be a torch.nn.Module",
        ),
        (lambda: list(generate.generate(torch.nn.Linear(2, 2), [1], 3)), "model must be a CharGPT"),
        (lambda: gpt.val_loss("data/char_gpt.safetensors"), "model must be a torch.nn.Module"),
        (lambda: gpt.train_char_gpt(steps=0), "steps must be an integer >= 1"),
        (lambda: gpt.train_char_gpt(lr=-1.0), "lr"),
        (lambda: gpt.train_char_gpt(cfg={"n_embd": 8}), "cfg must be a GPTConfig"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_input_names_the_parameter(call, match) -> None:
    """Issue 18: each class of bad input is a ValueError naming the parameter and the fix."""
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens must be an integer >= 1"),
        ({"max_new_tokens": -3}, "max_new_tokens must be an integer >= 1"),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be an integer >= 1"),
        ({"max_new_tokens": 10**9}, "block_size"),
        ({"prompt": [1.5, 2.0]}, "prompt must be a non-empty 1-D sequence of token ids"),
        ({"prompt": [[1, 2]]}, "prompt must be a non-empty 1-D sequence of token ids"),
        ({"prompt": "The"}, "generate_text"),
        ({"prompt": [1, [2]]}, "prompt must be a non-empty 1-D sequence of token ids"),
        ({"prompt": [20]}, "vocabulary"),
        ({"temperature": NAN}, "temperature"),
        ({"top_k": 0}, "top_k must be an integer >= 1"),
    ],
)
def test_generate_refuses_bad_arguments(kwargs, match) -> None:
    args = {"model": tiny_model(), "prompt": [1, 2], "max_new_tokens": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        list(generate.generate(**args))


def test_generate_text_refuses_unknown_characters_and_a_wrong_vocabulary(trained) -> None:
    stoi, itos = gpt.vocab()
    with pytest.raises(ValueError, match="prompt has characters not in the vocabulary"):
        list(generate.generate_text(trained, "naïve €", 3, stoi, itos))
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        list(generate.generate_text(trained, "", 3, stoi, itos))
    with pytest.raises(ValueError, match="the model's vocabulary"):
        list(generate.generate_text(trained, "The", 3, stoi, itos[:-1]))
    assert len("".join(generate.generate_text(trained, "The", 3, stoi, itos))) == 3


def test_the_model_refuses_unknown_ids_and_bad_sizes() -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match=r"must be token ids in 0\.\.19"):
        model(torch.tensor([[3, 20]]))
    with pytest.raises(ValueError, match="ids must be an integer tensor"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="ids is empty"):
        model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="batch must be an integer"):
        generate.decode_step_seconds(model, batch=0, context=8)
    with pytest.raises(ValueError, match="model must be a torch.nn.Module"):
        generate.decode_step_seconds("model", batch=1, context=8)
    with pytest.raises(ValueError, match="batch_size=10,000,000 windows"):
        gpt.val_loss(model, batch_size=10**7)
    with pytest.raises(ValueError, match="candidate must be a torch.nn.Module"):
        generate.agreement_on_val(model, "int8 model")
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate.stream_latency(model, [1, 2], "32")
