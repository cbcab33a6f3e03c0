"""Exercises of notebook 10 (edge deployment): low-rank factors, k-means sharing, the budget check."""

from __future__ import annotations

from typing import Any

import torch

from labkit import edge
from labkit.core.checks import Case, Exercise


def low_rank_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: left (out, r), right (r, in) with left @ right the best rank-r approximation."""
    return edge.low_rank_factors(weight, rank)


def _low_rank_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    rank2 = torch.randn(6, 2, generator=gen) @ torch.randn(2, 5, generator=gen)
    return [
        Case((torch.randn(6, 4, generator=gen), 2), label="a random 6x4 matrix, rank 2"),
        Case((torch.randn(5, 8, generator=gen), 5), label="rank = min(out, in): exact"),
        Case((torch.randn(7, 3, generator=gen), 1), label="rank 1"),
        Case((rank2, 2), label="a matrix of true rank 2: exact at rank 2"),
        Case((torch.randn(10, 16, generator=gen), 3), label="a wide 10x16 matrix, rank 3"),
        Case((torch.randn(9, 6, generator=gen) * 4, 4), label="a tall 9x6 matrix, rank 4"),
    ]


def _compare_factors(got: Any, expected: Any) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 2:
        return "return a pair (left, right)"
    left, right = got
    (el, er) = expected
    if not all(isinstance(t, torch.Tensor) for t in (left, right)):
        return "left and right must be torch tensors"
    if left.shape != el.shape or right.shape != er.shape:
        return (
            f"shapes {tuple(left.shape)} and {tuple(right.shape)}, expected left "
            f"{tuple(el.shape)} (out, r) and right {tuple(er.shape)} (r, in)"
        )
    prod, want = (left @ right).double(), (el @ er).double()
    if not torch.allclose(prod, want, atol=1e-4, rtol=1e-4):
        return f"left @ right is not the rank-r SVD approximation (largest difference {(prod - want).abs().max():.3g})"
    # split evenly: each column of left and each row of right has norm sqrt(s_i) (sign-free)
    root = el.double().norm(dim=0)
    if not (
        torch.allclose(left.double().norm(dim=0), root, atol=1e-4, rtol=1e-4)
        and torch.allclose(right.double().norm(dim=1), root, atol=1e-4, rtol=1e-4)
    ):
        return (
            "left @ right is right, but S is not split evenly: left = U_r * sqrt(S_r) and "
            "right = sqrt(S_r) * Vh_r (each factor's column/row norms are sqrt(s_i))"
        )
    return None


def kmeans_share(
    weight: torch.Tensor, bits: int, iters: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: (centroids (2^bits,), indices (weight.shape) int64) by 1-D k-means."""
    book = edge.kmeans_share(weight, bits, iters)
    return book.centroids, book.indices


def _kmeans_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    return [
        Case((torch.randn(64, generator=gen), 2), label="64 normal weights, 2 bits (4 centroids)"),
        Case(
            (torch.randn(4, 8, generator=gen), 3),
            label="a 4x8 weight, 3 bits: indices keep the shape",
        ),
        Case((torch.randn(50, generator=gen), 1), label="1 bit (2 centroids)"),
        Case(
            (torch.tensor([0.0, 0.0, 1.0, 1.0]), 2),
            label="only 2 distinct values, 4 centroids: empty clusters",
        ),
        Case(
            (torch.randn(3, 3, 3, generator=gen) * 0.1, 4, 5),
            label="a conv-shaped weight, 4 bits, 5 iterations",
        ),
        Case(
            (torch.randn(200, generator=gen) ** 3, 3, 1),
            label="one iteration on skewed weights: assign to the UPDATED centroids",
        ),
        Case(
            (torch.tensor([0.0, 1.0, 2.0]), 1, 1),
            label="a weight exactly between two centroids goes to the LOWER index",
        ),
    ]


def _compare_codebook(got: Any, expected: Any) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 2:
        return "return a pair (centroids, indices)"
    cents, idx = got
    ec, ei = expected
    if not isinstance(cents, torch.Tensor) or cents.shape != ec.shape:
        return f"centroids must be a tensor of shape {tuple(ec.shape)} (2**bits entries)"
    if not isinstance(idx, torch.Tensor) or idx.shape != ei.shape or idx.is_floating_point():
        return f"indices must be an integer tensor of the weight's shape {tuple(ei.shape)}"
    if torch.isnan(cents).any():
        return "a centroid is NaN: an empty cluster must keep its old centroid"
    if not torch.allclose(cents.double(), ec.double(), atol=1e-4):
        return f"centroids differ (largest difference {(cents - ec).abs().max():.3g})"
    if not torch.allclose(cents[idx.long()].double(), ec[ei].double(), atol=1e-4):
        return "centroids[indices] does not rebuild the shared weights: assign each weight to its nearest centroid"
    return None


def over_budget(measured: dict[str, float], budget: dict[str, float]) -> list[str]:
    """Reference: the names of the limits that ``measured`` exceeds, in the budget's order."""
    return edge.over_budget(measured, budget)


def _budget_cases() -> list[Case]:
    budget = {"file bytes": 30_000, "latency ms": 0.2, "energy uJ": 50.0, "peak KiB": 32}
    return [
        Case(({"file bytes": 15_000, "latency ms": 0.1, "energy uJ": 10.0, "peak KiB": 8}, budget),
             label="everything within the budget: an empty list"),
        Case(({"file bytes": 268_000, "latency ms": 0.3, "energy uJ": 60.0, "peak KiB": 32}, budget),
             label="three limits fail; peak memory exactly AT its limit passes"),
        Case(({"peak KiB": 40, "energy uJ": 50.0, "latency ms": 0.2, "file bytes": 30_001}, budget),
             label="measurements in another order: answer in the budget's order"),
        Case(({"file bytes": 1, "latency ms": 9.0, "accuracy": 0.5}, {"file bytes": 10, "latency ms": 1.0}),
             label="a measurement with no limit (accuracy) is ignored"),
        Case(({"file bytes": 1}, {}), label="an empty budget: nothing fails"),
    ]  # fmt: skip


def _compare_names(got: Any, expected: Any) -> str | None:
    if not isinstance(got, list) or not all(isinstance(n, str) for n in got):
        return "return a list of limit names (strings), e.g. ['latency ms']"
    if sorted(got) != sorted(expected):
        return f"got {got}, expected {expected}: a limit fails only when value > limit"
    if got != expected:
        return f"the right names in the wrong order: {got}; list them in the budget's order"
    return None


EXERCISES = {
    "edge.low_rank_factors": Exercise(
        reference=low_rank_factors,
        cases=_low_rank_cases,
        compare=_compare_factors,
        hint="The SVD sorts singular values from largest to smallest; keep the r that matter "
        "most, and give each factor an equal share of them. Check the shapes: (out, r), (r, in).",
        formula="U, S, Vh = torch.linalg.svd(W, full_matrices=False); "
        "left = U[:, :r] * S[:r].sqrt(); right = S[:r].sqrt()[:, None] * Vh[:r].",
    ),
    "edge.kmeans_share": Exercise(
        reference=kmeans_share,
        cases=_kmeans_cases,
        compare=_compare_codebook,
        hint="Lloyd's algorithm in 1-D: how many centroids do `bits` give, where do they start, "
        "what happens to a centroid nobody picks, and which centroids is the returned "
        "assignment made against?",
        formula="c = linspace(w.min(), w.max(), 2**bits); iters times: idx = |w[:, None] - c|"
        ".argmin(1); c_j = mean(w[idx == j]) if any else c_j; finally idx = |w - c|.argmin "
        "again, reshaped like weight.",
    ),
    "edge.over_budget": Exercise(
        reference=over_budget,
        cases=_budget_cases,
        compare=_compare_names,
        hint="Walk over the budget's limits (not over the measurements); a value equal to its "
        "limit is within budget.",
        formula="[name for name, limit in budget.items() if measured[name] > limit]",
    ),
}
