"""Speculative decoding (labkit/generate/speculative.py): exact in distribution, exact when greedy."""

from collections.abc import Iterator

import pytest
import torch
from scipy import stats

from labkit import data, env, generate
from labkit.generate import gpt, speculative

TINY = gpt.GPTConfig(vocab_size=20, block_size=48, n_layer=2, n_head=2, n_embd=16)
TINY_DRAFT = gpt.GPTConfig(vocab_size=20, block_size=48, n_layer=1, n_head=1, n_embd=8)


def model(cfg: gpt.GPTConfig, seed: int) -> gpt.CharGPT:
    torch.manual_seed(seed)
    return gpt.CharGPT(cfg).eval()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with env.threads(1):
        yield


@pytest.fixture(scope="module")
def trained() -> tuple[gpt.CharGPT, gpt.CharGPT]:
    return gpt.load_char_gpt()[0], speculative.load_draft_gpt()[0]


def probs(rows: int, vocab: int, seed: int, zeros: bool = True) -> torch.Tensor:
    """Random distributions, some entries exactly 0 (tokens one model never proposes)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, vocab, generator=g, dtype=torch.float64) * 1.5
    if zeros:
        logits[torch.rand(rows, vocab, generator=g) < 0.25] = float("-inf")
        logits[:, 0] = 0.0  # every row keeps one token
    return logits.softmax(-1)


# ---------------------------------------------------------------- the acceptance rule, exactly


def emitted(p: torch.Tensor, q: torch.Tensor, position: int) -> torch.Tensor:
    """The exact distribution of the token emitted at ``position`` (0 or 1), enumerated from the
    code's own decisions: for every draft token x (probability q(x)) the probability that the
    code accepts it is the u-threshold where accept_draft switches from accept to reject (found
    by bisection: its decision is u < p/q, monotone in u); a rejection emits from the returned
    residual. For position 1 the draft token at position 0 is accepted (u_0 = 0)."""
    V = p.shape[1]
    out = torch.zeros(V, dtype=torch.float64)
    first = int(torch.nonzero(q[0])[0])  # a token the draft can propose at position 0

    def run(x: int, u: float) -> tuple[int, torch.Tensor]:
        tokens = torch.tensor([first, x] if position else [x, first])
        u_all = torch.tensor([0.0, u] if position else [u, 0.0], dtype=torch.float64)
        n, dist = generate.accept_draft(p, q, tokens, u_all)
        assert n >= position  # position 1: the first draft token was accepted
        return n, dist

    for x in range(V):
        if q[position, x] == 0:
            continue  # the draft never proposes x here
        lo, hi = 0.0, 1.0  # P(accept) = sup{u : accepted}
        for _ in range(50):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if run(x, mid)[0] > position else (lo, mid)
        out[x] += q[position, x] * lo  # accepted: the draft token itself is emitted
        if lo < 1 - 1e-12:
            out += q[position, x] * (1 - lo) * run(x, (1 + lo) / 2)[1]  # rejected: the residual
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("position", [0, 1])
def test_emitted_token_has_the_target_distribution_exactly(seed: int, position: int) -> None:
    p, q = probs(3, 5, seed), probs(2, 5, seed + 100)
    got = emitted(p, q, position)
    torch.testing.assert_close(got, p[position], atol=1e-9, rtol=0)
    assert abs(got.sum().item() - 1) < 1e-9


def test_the_enumeration_catches_a_wrong_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact test can fail: a rule that resamples from p itself after a rejection (no
    max(0, p - q)) over-weights the tokens the draft likes."""
    right = generate.accept_draft

    def residual_p(p, q, x, u):
        n, _ = right(p, q, x, u)
        return n, (p[n] if n < len(x) else p[-1])

    p = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.25] * 4, [0.25] * 4], dtype=torch.float64)
    q = torch.tensor([[0.1, 0.1, 0.1, 0.7], [0.25] * 4], dtype=torch.float64)
    monkeypatch.setattr(generate, "accept_draft", residual_p)
    assert (emitted(p, q, 0) - p[0]).abs().max() > 0.01


def test_residual_is_max_p_minus_q_normalised() -> None:
    p = torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.25, 0.25, 0.25, 0.25]], dtype=torch.float64)
    q = torch.tensor([[0.1, 0.1, 0.3, 0.5]], dtype=torch.float64)
    n, dist = generate.accept_draft(
        p, q, torch.tensor([3]), torch.tensor([0.5], dtype=torch.float64)
    )
    assert n == 0  # p(3) = 0: never accepted
    torch.testing.assert_close(dist, torch.tensor([0.4, 0.2, 0.0, 0.0], dtype=torch.float64) / 0.6)
    n, dist = generate.accept_draft(
        p, q, torch.tensor([0]), torch.tensor([0.99], dtype=torch.float64)
    )
    assert n == 1 and torch.equal(dist, p[1])  # p/q = 5 >= 1: always accepted, bonus from p_1


def test_acceptance_is_min_one_p_over_q() -> None:
    p = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    q = torch.tensor([[0.8, 0.2]])
    x = torch.tensor([0])  # p/q = 0.25
    assert generate.accept_draft(p, q, x, torch.tensor([0.24]))[0] == 1
    assert generate.accept_draft(p, q, x, torch.tensor([0.26]))[0] == 0


def test_stops_at_the_first_rejection() -> None:
    p = torch.tensor([[0.5, 0.5], [0.1, 0.9], [0.5, 0.5], [0.3, 0.7]])
    q = torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5]])
    n, dist = generate.accept_draft(p, q, torch.tensor([0, 0, 0]), torch.tensor([0.1, 0.9, 0.1]))
    assert n == 1  # the third token would be accepted, but the round stopped at the second
    torch.testing.assert_close(dist, torch.tensor([0.0, 1.0]))


# ---------------------------------------------------------------- the sampler, statistically


def first_tokens(step, p, q, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, dtype=torch.long)
    for i in range(n):
        x = torch.multinomial(q, 1, generator=g).view(-1)  # (k,) x_i ~ q_i
        out[i] = step(p, q, x, g)[0]
    return torch.bincount(out, minlength=p.shape[1])


def chi_square_p(counts: torch.Tensor, expected: torch.Tensor) -> float:
    keep = expected > 0
    assert counts[~keep].sum() == 0, "a token of probability 0 was emitted"
    f_exp = expected[keep].double() / expected[keep].double().sum() * counts.sum().item()
    return float(stats.chisquare(counts[keep].double().numpy(), f_exp.numpy()).pvalue)


def residual_is_p(p, q, x, g):
    """Planted bug: after a rejection sample from p itself instead of max(0, p - q)."""
    u = torch.rand(len(x), generator=g, dtype=p.dtype)
    n, _ = generate.accept_draft(p, q, x, u)
    return [*x[:n].tolist(), int(torch.multinomial(p[n], 1, generator=g))]


N_SAMPLES, ALPHA = 6000, 1e-3


def test_speculative_step_samples_the_target_distribution_chi_square() -> None:
    """Chi-square goodness of fit of the first emitted token (V = 4, k = 3, 6,000 rounds) at
    significance 1e-3. Power: against the planted 'residual = p' sampler, whose first token has
    the distribution computed below, the noncentral chi-square power is asserted > 0.99, and the
    same test must reject that sampler's real draws."""
    p, q = probs(4, 4, 7, zeros=False), probs(3, 4, 8, zeros=False)
    counts = first_tokens(generate.speculative_step, p, q, N_SAMPLES, seed=0)
    assert chi_square_p(counts, p[0]) > ALPHA
    accept = torch.minimum(torch.ones(4, dtype=p.dtype), p[0] / q[0])
    wrong = q[0] * accept + (q[0] * (1 - accept)).sum() * p[0]  # the bug's first-token law
    w2 = ((wrong - p[0]) ** 2 / p[0]).sum().item()  # effect size
    crit = stats.chi2.ppf(1 - ALPHA, df=3)
    power = stats.ncx2.sf(crit, df=3, nc=N_SAMPLES * w2)
    assert power > 0.99, f"the test is too weak to see the bug (power {power:.3f})"
    bad = first_tokens(residual_is_p, p, q, N_SAMPLES, seed=0)
    assert chi_square_p(bad, p[0]) < ALPHA


def test_speculative_step_uses_only_the_generator() -> None:
    p, q = probs(5, 6, 3), probs(4, 6, 4)
    x = torch.tensor([0, 0, 0, 0])
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # a different global state must not matter
        g = torch.Generator().manual_seed(5)
        runs.append([generate.speculative_step(p, q, x, g) for _ in range(50)])
        torch.rand(7)
    assert runs[0] == runs[1]
    assert all(1 <= len(r) <= 5 for r in runs[0])


def test_k_zero_is_one_target_sample() -> None:
    p = torch.tensor([[0.0, 1.0, 0.0]])
    assert generate.speculative_step(p, p[:0], torch.zeros(0, dtype=torch.long)) == [1]


# ---------------------------------------------------------------- speculative_generate


@pytest.mark.parametrize("k", [1, 3, 8])
def test_greedy_equals_the_target_alone_for_a_trained_and_an_untrained_draft(trained, k) -> None:
    target, draft = trained
    stoi, _ = gpt.vocab()
    prompt = data.encode("The return value ", stoi)
    ref = list(generate.generate(target, prompt, 160))
    untrained = model(gpt.GPTConfig(vocab_size=target.cfg.vocab_size, n_layer=1, n_embd=32), 0)
    for d in (draft, untrained):
        st: dict[str, int] = {}
        out = list(generate.speculative_generate(target, d, prompt, 160, k=k, stats=st))
        assert out == ref
        assert st["target_calls"] <= 160 and st["accepted"] + st["target_calls"] == 160


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_equals_the_target_on_random_models(seed: int) -> None:
    target, draft = model(TINY, seed), model(TINY_DRAFT, seed + 10)
    prompt = torch.tensor([3, 1, 4])
    ref = list(generate.generate(target, prompt, 40))
    for k in (1, 2, 5):
        assert list(generate.speculative_generate(target, draft, prompt, 40, k=k)) == ref


def test_draft_equal_to_target_accepts_everything() -> None:
    """alpha = 1: every round yields k + 1 tokens, so n tokens take ceil(n / (k + 1)) calls."""
    target = model(TINY, 0)
    for temperature in (0.0, 0.9):
        st: dict[str, int] = {}
        g = torch.Generator().manual_seed(0)
        out = list(
            generate.speculative_generate(
                target, target, [1, 2], 23, k=4, temperature=temperature, generator=g, stats=st
            )
        )
        assert len(out) == 23
        assert st["accepted"] == st["tested"] == 23 - st["target_calls"]
        assert st["target_calls"] == 5  # 5 + 5 + 5 + 5 + 3


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("k", [1, 4, 7])
def test_fills_the_block_exactly_and_never_runs_past_it(temperature: float, k: int) -> None:
    target, draft = model(TINY, 1), model(TINY_DRAFT, 2)
    seen = []
    for m in (target, draft):  # record every position each model is run at
        m.register_forward_pre_hook(
            lambda mod, args: seen.append(
                (args[1][0][0].shape[2] if args[1] else 0) + args[0].shape[1]
            )
        )
    prompt = list(range(10))
    g = torch.Generator().manual_seed(0)
    out = list(
        generate.speculative_generate(
            target, draft, prompt, 38, k=k, temperature=temperature, generator=g
        )
    )
    assert len(out) == 38 and max(seen) <= TINY.block_size
    with pytest.raises(ValueError, match="block_size"):
        list(generate.speculative_generate(target, draft, prompt, 39, k=k))


def test_sampled_output_is_reproducible_and_the_first_token_follows_the_target() -> None:
    target, draft = model(TINY, 3), model(TINY_DRAFT, 4)
    prompt = [5, 6]

    def run(seed: int, n: int) -> list[int]:
        g = torch.Generator().manual_seed(seed)
        return list(
            generate.speculative_generate(
                target, draft, prompt, n, k=3, temperature=1.0, generator=g
            )
        )

    assert run(0, 6) == run(0, 6)
    # n = 2: one round, one draft token checked by speculative_step, then one more token
    counts = torch.bincount(torch.tensor([run(s, 2)[0] for s in range(1000)]), minlength=20)
    with torch.no_grad():
        p0 = target(torch.tensor([prompt]))[0][0, -1].softmax(-1).double()
    assert chi_square_p(counts, p0) > ALPHA


def test_expected_tokens_per_call() -> None:
    assert generate.expected_tokens_per_call(0.0, 4) == 1.0
    assert generate.expected_tokens_per_call(1.0, 4) == 5.0
    alpha, k = 0.6, 3
    assert (
        abs(generate.expected_tokens_per_call(alpha, k) - sum(alpha**i for i in range(k + 1)))
        < 1e-12
    )


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: generate.speculative_step(
                torch.ones(3, 4) / 4, torch.ones(3, 4) / 4, torch.zeros(3, dtype=torch.long)
            ),
            "k\\+1",
        ),
        (
            lambda: generate.speculative_step(
                torch.ones(3, 4) / 4, torch.ones(2, 4) / 4, torch.zeros(2)
            ),
            "integer",
        ),
        (
            lambda: generate.speculative_step(
                torch.ones(3, 4) / 4, torch.ones(2, 4) / 4, torch.tensor([0, 9])
            ),
            "0..3",
        ),
        (
            lambda: generate.speculative_step(
                torch.ones(2, 2) / 2, torch.tensor([[1.0, 0.0]]), torch.tensor([1])
            ),
            "q_i\\(x_i\\) > 0",
        ),
        (
            lambda: generate.speculative_step(
                torch.tensor([[2.0, -1.0], [0.5, 0.5]]), torch.ones(1, 2) / 2, torch.tensor([0])
            ),
            ">= 0",
        ),
        (lambda: generate.expected_tokens_per_call(1.5, 4), "alpha"),
        (lambda: generate.expected_tokens_per_call(0.5, -1), "k"),
    ],
)
def test_bad_step_input_is_a_clear_error(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_generate_input_is_a_clear_error() -> None:
    target, draft = model(TINY, 0), model(TINY_DRAFT, 0)
    other = model(gpt.GPTConfig(vocab_size=21, block_size=48, n_layer=1, n_head=1, n_embd=8), 0)
    cases = [
        (lambda: list(generate.speculative_generate(target, other, [1], 3)), "vocabulary"),
        (lambda: list(generate.speculative_generate(target, draft, [1], 3, k=0)), "k"),
        (lambda: list(generate.speculative_generate(target, draft, [], 3)), "non-empty"),
        (lambda: list(generate.speculative_generate(target, draft, [1.5], 3)), "token ids"),
        (lambda: list(generate.speculative_generate(target, draft, [1], 0)), "max_new_tokens"),
        (
            lambda: list(generate.speculative_generate(target, draft, [1], 3, temperature=-1)),
            "temperature",
        ),
        (lambda: list(generate.speculative_generate(target, "draft", [1], 3)), "draft"),
        (lambda: list(generate.speculative_generate(target, draft, [1, 99], 3)), "vocabulary"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
