"""Planted wrong answers to notebook 10's exercises must be rejected."""

import torch

from labkit import checks


def test_low_rank_without_singular_values_is_rejected() -> None:
    def no_s(weight, rank):
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        return u[:, :rank], vh[:rank]

    res = checks.check("edge.low_rank_factors", no_s)
    assert not res.passed and "SVD approximation" in res.message


def test_low_rank_keeping_the_smallest_values_is_rejected() -> None:
    def smallest(weight, rank):
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        root = s[-rank:].sqrt()
        return u[:, -rank:] * root, root[:, None] * vh[-rank:]

    assert not checks.check("edge.low_rank_factors", smallest).passed


def test_low_rank_with_swapped_shapes_is_rejected() -> None:
    def swapped(weight, rank):
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        root = s[:rank].sqrt()
        return (root[:, None] * vh[:rank]).T, (u[:, :rank] * root).T

    res = checks.check("edge.low_rank_factors", swapped)
    assert not res.passed and "shapes" in res.message


def _kmeans(
    weight, bits, iters=10, k_of=lambda b: 2**b, init="linear", keep_empty=True, final=True
):
    w = weight.flatten()
    k = k_of(bits)
    if init == "linear":
        c = torch.linspace(w.min().item(), w.max().item(), k)
    else:
        c = w[torch.randperm(len(w), generator=torch.Generator().manual_seed(1))[:k]].clone()
    idx = (w[:, None] - c[None]).abs().argmin(1)
    for _ in range(iters):
        idx = (w[:, None] - c[None]).abs().argmin(1)
        for j in range(k):
            m = w[idx == j]
            if len(m) or not keep_empty:
                c[j] = m.mean()
    if final:
        idx = (w[:, None] - c[None]).abs().argmin(1)
    return c, idx.reshape(weight.shape)


def test_kmeans_with_one_centroid_too_few_is_rejected() -> None:
    res = checks.check(
        "edge.kmeans_share", lambda w, b, iters=10: _kmeans(w, b, iters, k_of=lambda b: 2**b - 1)
    )
    assert not res.passed and "2**bits" in res.message


def test_kmeans_with_random_init_is_rejected() -> None:
    res = checks.check(
        "edge.kmeans_share", lambda w, b, iters=10: _kmeans(w, b, iters, init="random")
    )
    assert not res.passed


def test_kmeans_with_nan_for_empty_clusters_is_rejected() -> None:
    res = checks.check(
        "edge.kmeans_share", lambda w, b, iters=10: _kmeans(w, b, iters, keep_empty=False)
    )
    assert not res.passed and "empty cluster" in res.message


def test_kmeans_without_iterations_is_rejected() -> None:
    res = checks.check("edge.kmeans_share", lambda w, b, iters=10: _kmeans(w, b, 0))
    assert not res.passed and "centroids differ" in res.message


def test_kmeans_returning_stale_assignment_is_rejected() -> None:
    res = checks.check(
        "edge.kmeans_share", lambda w, b, iters=10: _kmeans(w, b, iters, final=False)
    )
    assert not res.passed


def test_low_rank_with_all_of_s_in_left_is_rejected() -> None:
    def uneven(weight, rank):
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        return u[:, :rank] * s[:rank], vh[:rank]

    res = checks.check("edge.low_rank_factors", uneven)
    assert not res.passed and "split evenly" in res.message


def test_low_rank_with_untransposed_v_is_rejected() -> None:
    def old_svd(weight, rank):
        u, s, v = torch.svd(weight)  # returns V, not V^T
        root = s[:rank].sqrt()
        return u[:, :rank] * root, root[:, None] * v[:rank]

    res = checks.check("edge.low_rank_factors", old_svd)
    assert not res.passed


def test_low_rank_off_by_one_rank_is_rejected() -> None:
    def plus_one(weight, rank):
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        r = min(rank + 1, len(s))
        root = s[:r].sqrt()
        return u[:, :r] * root, root[:, None] * vh[:r]

    res = checks.check("edge.low_rank_factors", plus_one)
    assert not res.passed


def test_kmeans_with_ties_to_the_higher_index_is_rejected() -> None:
    def higher_ties(weight, bits, iters=10):
        w = weight.flatten()
        k = 2**bits
        c = torch.linspace(w.min().item(), w.max().item(), k)

        def assign(c):
            d = (w[:, None] - c[None]).abs().flip(1)
            return k - 1 - d.argmin(1)

        for _ in range(iters):
            idx = assign(c)
            for j in range(k):
                if (idx == j).any():
                    c[j] = w[idx == j].mean()
        return c, assign(c).reshape(weight.shape)

    res = checks.check("edge.kmeans_share", higher_ties)
    assert not res.passed and "LOWER" in res.message


def test_kmeans_with_flat_indices_is_rejected() -> None:
    res = checks.check(
        "edge.kmeans_share",
        lambda w, b, iters=10: (_kmeans(w, b, iters)[0], _kmeans(w, b, iters)[1].flatten()),
    )
    assert not res.passed and "shape" in res.message


def test_budget_check_with_greater_or_equal_is_rejected() -> None:
    def at_limit_fails(measured, budget):
        return [n for n, lim in budget.items() if measured[n] >= lim]

    res = checks.check("edge.over_budget", at_limit_fails)
    assert not res.passed and "value > limit" in res.message


def test_budget_check_in_the_measurements_order_is_rejected() -> None:
    def measured_order(measured, budget):
        return [n for n, v in measured.items() if n in budget and v > budget[n]]

    res = checks.check("edge.over_budget", measured_order)
    assert not res.passed and "order" in res.message


def test_budget_check_returning_the_passing_limits_is_rejected() -> None:
    def passing(measured, budget):
        return [n for n, lim in budget.items() if measured[n] <= lim]

    assert not checks.check("edge.over_budget", passing).passed


def test_budget_check_returning_a_bool_is_rejected() -> None:
    def verdict(measured, budget):
        return all(measured[n] <= lim for n, lim in budget.items())

    res = checks.check("edge.over_budget", verdict)
    assert not res.passed and "list of limit names" in res.message


def test_reference_solutions_pass_and_hints_are_graduated() -> None:
    from labkit.edge import exercises as ex
    from solutions import n10_edge_deployment as sol

    for key, fn in sol.EXERCISES.items():
        assert checks.check(key, fn).passed, key
        exercise = ex.EXERCISES[key]
        assert exercise.hint and exercise.formula and exercise.hint != exercise.formula
        assert "linalg.svd" not in exercise.hint and "linspace" not in exercise.hint
