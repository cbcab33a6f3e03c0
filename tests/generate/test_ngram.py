"""The n-gram draft (labkit/generate/ngram.py): counts by hand, a real distribution, exact output."""

from collections.abc import Iterator

import pytest
import torch
from scipy import stats

from labkit import data, env, generate
from labkit.generate import gpt, ngram, speculative

TINY = gpt.GPTConfig(vocab_size=3, block_size=48, n_layer=1, n_head=1, n_embd=8)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with env.threads(1):
        yield


@pytest.fixture(scope="module")
def trained() -> tuple[gpt.CharGPT, ngram.NgramDraft]:
    return gpt.load_char_gpt()[0], generate.load_ngram_draft()


def q_of(draft: ngram.NgramDraft, context: list[int]) -> torch.Tensor:
    return draft.log_q[draft.row(context)].double().exp()


def test_counts_by_hand() -> None:
    """Text 0 1 0 1 0 2, V = 3, beta = 1: unigram (c + 1) / (N + V); after 0 the counts are
    (0, 2, 1), after 1 (2, 0, 0); 2 is never followed by anything (backs off to the unigram);
    after (0, 1) the counts are (2, 0, 0) on top of q(. | 1)."""
    draft = ngram.NgramDraft(torch.tensor([0, 1, 0, 1, 0, 2]), TINY, order=3, beta=1.0)
    uni = torch.tensor([4, 3, 2], dtype=torch.float64) / 9
    after_0 = (torch.tensor([0, 2, 1]) + uni) / 4
    after_1 = (torch.tensor([2, 0, 0]) + uni) / 3
    after_01 = (torch.tensor([2, 0, 0]) + after_1) / 3
    for context, want in [
        ([], uni),
        ([0], after_0),
        ([1], after_1),
        ([2], uni),
        ([0, 1], after_01),
    ]:
        torch.testing.assert_close(q_of(draft, context), want, atol=1e-6, rtol=0)
    torch.testing.assert_close(q_of(draft, [2, 0]), after_0, atol=1e-6, rtol=0)  # (2, 0) unseen
    torch.testing.assert_close(q_of(draft, [1, 1]), after_1, atol=1e-6, rtol=0)  # back-off


def test_every_row_is_a_distribution_with_no_zero(trained) -> None:
    q = trained[1].log_q.double().exp()
    assert bool((q > 0).all())
    torch.testing.assert_close(q.sum(1), torch.ones(len(q), dtype=torch.float64), atol=1e-5, rtol=0)


def test_built_from_the_training_split_only(trained) -> None:
    train_ids, val_ids = gpt.split_ids()
    draft = trained[1]
    uni = draft.log_q[0].double().exp()
    want = (torch.bincount(train_ids, minlength=draft.cfg.vocab_size) + 1.0).double()
    torch.testing.assert_close(uni, want / want.sum(), atol=1e-6, rtol=0)
    assert len(draft.index[1]) == len(torch.unique(train_ids[:-1]))


def test_incremental_calls_and_a_cut_cache_give_the_full_rows(trained) -> None:
    draft = trained[1]
    ids = torch.tensor([[5, 17, 40, 40, 2, 9, 61, 33, 12]])
    full, cache = draft(ids)  # (1, 9, V)
    assert full.shape == (1, 9, draft.cfg.vocab_size) and cache[0][0].shape[2] == 9
    part, cache = draft(ids[:, :4])
    cache = speculative._truncate(cache, 2)  # as speculative_generate cuts a KV cache
    rows = []
    for t in range(2, 9):
        logits, cache = draft(ids[:, t : t + 1], cache)
        rows.append(logits[0, 0])
    torch.testing.assert_close(torch.stack(rows), full[0, 2:])


@pytest.mark.parametrize("k", [1, 4])
def test_greedy_equals_the_target_alone_on_several_prompts(trained, k) -> None:
    target, draft = trained
    stoi, _ = gpt.vocab()
    for text in ("The return value ", "Assignment statements are used to", "def f(x):\n    "):
        prompt = data.encode(text, stoi)
        ref = list(generate.generate(target, prompt, 120))
        st: dict[str, int] = {}
        assert list(generate.speculative_generate(target, draft, prompt, 120, k=k, stats=st)) == ref
        assert st["accepted"] + st["target_calls"] == 120


def test_sampled_first_token_follows_the_target() -> None:
    """T = 1 with the n-gram draft: the first token's law is the target's p_0 (chi-square,
    2,000 runs, significance 1e-3)."""
    torch.manual_seed(0)
    target = gpt.CharGPT(gpt.GPTConfig(vocab_size=3, block_size=48, n_layer=1, n_head=1, n_embd=8))
    target.eval()
    draft = ngram.NgramDraft(torch.tensor([0, 1, 0, 1, 0, 2] * 3), TINY, order=3)
    prompt = [0, 1]
    firsts = []
    for seed in range(2000):
        g = torch.Generator().manual_seed(seed)
        firsts.append(
            next(
                generate.speculative_generate(
                    target, draft, prompt, 2, k=1, temperature=1.0, generator=g
                )
            )
        )
    counts = torch.bincount(torch.tensor(firsts), minlength=3).double()
    with torch.no_grad():
        p0 = target(torch.tensor([prompt]))[0][0, -1].softmax(-1).double()
    assert stats.chisquare(counts.numpy(), (p0 / p0.sum() * counts.sum()).numpy()).pvalue > 1e-3


@pytest.mark.parametrize(
    ("ids", "vocab_size", "order", "match"),
    [
        (torch.tensor([0.0, 1.0, 2.0, 0.0]), 3, 2, "integer"),
        (torch.tensor([0, 1, 5, 0]), 3, 2, "0..2"),
        (torch.tensor([0, 1]), 3, 3, "more than"),
        (torch.tensor([0, 1, 2, 0]), 3, 0, "order"),
    ],
)
def test_bad_input_is_a_clear_error(ids, vocab_size, order, match) -> None:
    with pytest.raises(ValueError, match=match):
        ngram.ngram_tables(ids, vocab_size, order)
