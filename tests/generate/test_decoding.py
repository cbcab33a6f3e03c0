"""Top-p, min-p, beam search and attention sinks (labkit/generate/sampling.py, kv_cache.py)."""

import itertools
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import env, generate
from labkit.generate import gpt

TINY = gpt.GPTConfig(vocab_size=12, block_size=40, n_layer=2, n_head=2, n_embd=16)


def tiny(seed: int = 0) -> gpt.CharGPT:
    torch.manual_seed(seed)
    return gpt.CharGPT(TINY).eval()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with env.threads(1):
        yield


def nucleus_reference(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the fewest most likely tokens whose probability reaches p (one row)."""
    probs = logits.softmax(-1)
    keep = torch.zeros_like(probs, dtype=torch.bool)
    mass = 0.0
    for i in probs.argsort(descending=True).tolist():
        keep[i] = True
        mass += probs[i].item()
        if mass >= p:
            break
    return keep


@settings(max_examples=40, deadline=None)
@given(p=st.floats(0.01, 0.99), seed=st.integers(0, 10_000))
def test_top_p_keeps_the_smallest_nucleus(p: float, seed: int) -> None:
    logits = torch.randn(3, 9, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    out = generate.top_p_logits(logits, p)
    for row in range(3):
        kept = torch.isfinite(out[row])
        mass = logits[row].softmax(-1)[kept].sum().item()
        assert mass >= p - 1e-12  # enough mass
        if abs(mass - p) > 1e-9:  # no boundary tie: the nucleus is unique
            assert torch.equal(kept, nucleus_reference(logits[row], p))
        assert torch.equal(out[row][kept], logits[row][kept])


def test_top_p_edges() -> None:
    logits = torch.tensor([3.0, 1.0, 0.0, -1.0])
    assert torch.isfinite(generate.top_p_logits(logits, 1e-6)).sum() == 1  # the top token stays
    assert torch.equal(generate.top_p_logits(logits, 1.0), logits)
    assert torch.equal(generate.top_p_logits(logits, None), logits)


@settings(max_examples=40, deadline=None)
@given(p_min=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_min_p_keeps_tokens_above_a_fraction_of_the_top(p_min: float, seed: int) -> None:
    logits = torch.randn(2, 7, generator=torch.Generator().manual_seed(seed))
    out = generate.min_p_logits(logits, p_min)
    probs = logits.softmax(-1)
    expected = probs >= p_min * probs.amax(-1, keepdim=True)
    assert torch.equal(torch.isfinite(out), expected)
    assert torch.isfinite(out).any(-1).all()  # the top token always survives


def test_next_token_probs_applies_top_p_to_the_tempered_distribution() -> None:
    logits = torch.tensor([2.0, 1.0, 0.0])
    sharp = generate.next_token_probs(logits, 0.25, top_p=0.9)  # T = 0.25: the top has > 0.9
    assert sharp.tolist() == [1.0, 0.0, 0.0]
    flat = generate.next_token_probs(logits, 4.0, top_p=0.9)
    assert (flat > 0).all()


def test_generate_accepts_top_p_and_min_p() -> None:
    model = tiny()
    g = torch.Generator().manual_seed(0)
    out = list(
        generate.generate(model, [1, 2], 10, temperature=1.0, top_p=0.5, min_p=0.1, generator=g)
    )
    assert len(out) == 10
    g = torch.Generator().manual_seed(0)
    nearly_greedy = list(
        generate.generate(model, [1, 2], 10, temperature=1.0, min_p=1.0, generator=g)
    )
    assert nearly_greedy == list(generate.generate(model, [1, 2], 10))  # min_p = 1 keeps the argmax


@pytest.mark.parametrize("seed", [0, 1])
def test_beam_search_is_exhaustive_when_the_beam_holds_every_prefix(seed: int) -> None:
    model = tiny(seed)
    prompt = [3, 4, 5]
    tokens, score = generate.beam_search(model, prompt, 2, beams=TINY.vocab_size)
    best = max(
        itertools.product(range(TINY.vocab_size), repeat=2),
        key=lambda seq: generate.sequence_logprob(model, prompt, list(seq)),
    )
    assert tokens == list(best)
    assert abs(score - generate.sequence_logprob(model, prompt, tokens)) < 1e-4


def test_one_beam_is_greedy() -> None:
    model = tiny(2)
    tokens, score = generate.beam_search(model, [1], 15, beams=1)
    assert tokens == list(generate.generate(model, [1], 15))
    assert abs(score - generate.sequence_logprob(model, [1], tokens)) < 1e-4


def test_sink_window_cache_keeps_the_first_and_the_last() -> None:
    k = torch.arange(10.0).view(1, 1, 10, 1)
    cache = [(k, -k), (k + 100, k)]
    out = generate.sink_window_cache(cache, 2, 3)
    assert out[0][0].flatten().tolist() == [0, 1, 7, 8, 9]
    assert out[1][0].flatten().tolist() == [100, 101, 107, 108, 109]
    assert generate.sink_window_cache(cache, 2, 8) is cache  # nothing to evict


def test_streaming_nll_without_eviction_is_the_teacher_forced_loss() -> None:
    model = tiny(3)
    ids = torch.randint(0, 12, (30,), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = F.cross_entropy(model(ids[None, :-1])[0][0], ids[1:]).item()
    assert abs(generate.streaming_nll(model, ids, 4, 35) - ref) < 1e-5
    assert abs(generate.streaming_nll(model, ids, 0, 35, recompute=True) - ref) < 1e-5


def test_streaming_runs_past_the_block_size_with_bounded_memory() -> None:
    model = tiny(4)
    ids = torch.randint(0, 12, (3 * TINY.block_size,), generator=torch.Generator().manual_seed(1))
    for recompute in (False, True):
        assert generate.streaming_nll(model, ids, 2, 20, recompute=recompute) > 0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: generate.top_p_logits(torch.zeros(3), 1.5), "top_p"),
        (lambda: generate.min_p_logits(torch.zeros(3), -0.1), "min_p"),
        (lambda: generate.beam_search(tiny(), [1], 3, beams=0), "beams"),
        (lambda: generate.beam_search(tiny(), [1], 40), "block_size"),
        (lambda: generate.streaming_nll(tiny(), torch.tensor([1, 2]), 10, 30), "block_size"),
        (lambda: generate.streaming_nll(tiny(), torch.tensor([1]), 1, 3), "at least 2"),
        (lambda: generate.sink_window_cache([], -1, 3), "n_sink"),
    ],
)
def test_bad_input_is_a_clear_error(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()
