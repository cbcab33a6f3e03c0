"""Hardware-aware NAS: lookup-table keys, the MnasNet reward, evolution vs random search."""

import random

import pytest
import torch

from labkit import edge
from labkit.edge import nas


def test_build_matches_its_lut_keys_and_runs() -> None:
    arch = ((8, 3), (16, 5), (4, 3))
    model = edge.build(arch)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    keys = edge.lut_keys(arch)
    assert keys[:3] == [("block", 1, 8, 3, 8), ("block", 8, 16, 5, 8), ("pool", 16, 16, 2, 8)]
    assert keys[3] == ("block", 16, 4, 3, 4) and keys[-2] == ("linear", 64, 10, 1, 1)
    assert set(keys) <= set(nas.all_op_keys())


def test_every_architecture_in_the_space_has_its_keys_in_the_table() -> None:
    rng, table = random.Random(0), set(nas.all_op_keys())
    for _ in range(300):
        assert set(edge.lut_keys(edge.random_arch(rng))) <= table


def test_predicted_latency_is_the_sum_of_the_table() -> None:
    arch = ((4, 3), (4, 3))
    lut = {k: 1.0 for k in edge.lut_keys(arch)}
    lut[("block", 1, 4, 3, 8)] = 2.5
    assert edge.predict_latency(arch, lut) == pytest.approx(len(lut) - 1 + 2.5)


def test_latency_lut_times_each_key() -> None:
    keys = [("block", 1, 4, 3, 8), ("linear", 64, 10, 1, 1)]
    lut = edge.latency_lut(keys, repeats=2)
    assert set(lut) == set(keys) and all(v > 0 for v in lut.values())


def test_mape_known_values() -> None:
    assert edge.mean_abs_pct_error([1.1, 0.8], [1.0, 1.0]) == pytest.approx(15.0)
    with pytest.raises(ValueError, match="same length"):
        edge.mean_abs_pct_error([1.0], [1.0, 2.0])


def test_mnas_reward() -> None:
    assert edge.mnas_reward(0.9, 1.0, 1.0) == pytest.approx(0.9)
    assert edge.mnas_reward(0.9, 2.0, 1.0) == pytest.approx(0.9 * 2**-0.07)
    assert edge.mnas_reward(0.9, 0.5, 1.0) > 0.9  # faster than the target: rewarded a little
    assert edge.mnas_reward(0.9, 2.0, 1.0, alpha=0.0, beta=-1.0) == pytest.approx(0.45)  # hard-ish
    with pytest.raises(ValueError, match="target_ms"):
        edge.mnas_reward(0.9, 1.0, 0.0)


def test_mutate_changes_exactly_one_thing_and_stays_in_the_space() -> None:
    rng = random.Random(0)
    for _ in range(200):
        arch = edge.random_arch(rng)
        child = edge.mutate(arch, rng)
        assert child != arch
        nas._check_arch(child)
        if len(child) == len(arch):
            assert sum(a != b for a, b in zip(arch, child, strict=True)) == 1
        else:
            assert abs(len(child) - len(arch)) == 1


def _toy_search(search, seed):
    """A cheap landscape: accuracy grows with channels, latency with channels and kernel."""
    acc = lambda a: min(0.99, 0.5 + sum(c for c, _ in a) / 200)  # noqa: E731
    lat = lambda a: sum(c * k for c, k in a) / 100  # noqa: E731
    return search(acc, lat, 1.0, 30, seed=seed)


def test_searches_spend_exactly_the_budget_and_record_rewards() -> None:
    for search in (edge.random_search, edge.regularized_evolution):
        hist = _toy_search(search, 0)
        assert len(hist) == 30
        r = hist[0]
        assert r["reward"] == pytest.approx(edge.mnas_reward(r["accuracy"], r["latency_ms"], 1.0))
    curve = edge.best_so_far(hist)
    assert curve == sorted(curve) and curve[-1] == max(h["reward"] for h in hist)


def test_evolution_beats_random_search_on_average_on_a_smooth_landscape() -> None:
    evo = [max(h["reward"] for h in _toy_search(edge.regularized_evolution, s)) for s in range(20)]
    rnd = [max(h["reward"] for h in _toy_search(edge.random_search, s)) for s in range(20)]
    assert sum(evo) / 20 > sum(rnd) / 20


def _one_mutation(a, b) -> bool:
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    long, short = (a, b) if len(a) > len(b) else (b, a)
    return len(long) == len(short) + 1 and any(
        long[:i] + long[i + 1 :] == short for i in range(len(long))
    )


def test_evolution_ages_out_the_oldest_not_the_worst() -> None:
    # accuracy falls with every evaluation, so the oldest member is always the best: with
    # population 2 and a tournament of 2, child t must be a mutation of evaluation t - 2
    # (removing the worst instead would keep mutating the very first architecture)
    calls = []

    def acc(a):
        calls.append(a)
        return 1.0 - 0.01 * len(calls)

    hist = edge.regularized_evolution(acc, lambda a: 1.0, 1.0, budget=20, population=2, sample=2)
    assert len(hist) == 20 and len(calls) == 20
    assert all(_one_mutation(hist[t - 2]["arch"], hist[t]["arch"]) for t in range(2, 20))


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="arch"):
        edge.build(((7, 3), (8, 3)))
    with pytest.raises(ValueError, match="budget"):
        edge.regularized_evolution(lambda a: 0.5, lambda a: 1.0, 1.0, budget=3, population=8)
