"""Exercises of notebook 12 (distributed training): the ring all-reduce schedule, ZeRO memory per
component, the pipeline bubble, and the Megatron MLP's tensor-parallel partial sums."""

from __future__ import annotations

from collections.abc import Callable

import torch

from labkit import distributed
from labkit.core.checks import Case, Exercise, close


def simulate_schedule(schedule: object, n: int) -> str | None:
    """Run a ring schedule symbolically; None when every worker ends with every chunk's full sum.

    state[w][c][j] counts how often worker j's chunk c is contained in worker w's copy of
    chunk c. Steps 0..n-2 add what arrives, steps n-1..2n-3 overwrite. A correct all-reduce
    ends with state[w][c] == [1] * n for all w, c (every contribution exactly once).
    """
    if not isinstance(schedule, list | tuple) or len(schedule) != 2 * (n - 1):
        got = len(schedule) if isinstance(schedule, list | tuple) else type(schedule).__name__
        return f"for n={n} workers a ring all-reduce has 2(n-1) = {2 * (n - 1)} steps, got {got}"
    state = [[[int(j == w) for j in range(n)] for _c in range(n)] for w in range(n)]
    for s, step in enumerate(schedule):
        try:
            pairs = [(int(src), int(c)) for src, c in step]
        except (TypeError, ValueError):
            return f"step {s} must be a list of (sender, chunk) pairs, got {step!r}"
        if sorted(src for src, _ in pairs) != list(range(n)):
            return (
                f"n={n}, step {s}: every worker must send exactly one chunk per step, got {pairs}"
            )
        if any(not 0 <= c < n for _, c in pairs):
            return f"n={n}, step {s}: chunk indices must be in 0..{n - 1}, got {pairs}"
        messages = [(src, c, list(state[src][c])) for src, c in pairs]  # all send at once
        for src, c, payload in messages:
            dst = (src + 1) % n
            if s < n - 1:
                state[dst][c] = [a + b for a, b in zip(state[dst][c], payload, strict=True)]
            else:
                state[dst][c] = payload
    for w in range(n):
        for c in range(n):
            if state[w][c] != [1] * n:
                return (
                    f"n={n}: after the schedule worker {w}'s chunk {c} holds contributions "
                    f"{state[w][c]} from workers 0..{n - 1} (each should appear exactly once)"
                )
    return None


def _check_ring(learner: Callable[[int], object]) -> str | None:
    for n in (2, 3, 4, 5, 8):
        msg = simulate_schedule(learner(n), n)
        if msg:
            return msg
    return None


PARTS = ("params", "grads", "optimizer")


def zero_memory(params: float, n_gpus: int, stage: int, k: float = 12) -> dict[str, float]:
    """Reference: model-state bytes per GPU, per component (fp16 params and grads, K bytes of
    optimizer state per parameter), no offload."""
    full = distributed.zero_memory(params, n_gpus, stage, k=k)
    return {part: full[part] for part in PARTS}


def _compare_parts(got: object, expected: dict[str, float]) -> str | None:
    """The three components must be there and right (more keys, e.g. a total, are fine)."""
    if not isinstance(got, dict) or not set(PARTS) <= set(got):
        return f"return a dict with the keys {list(PARTS)} (bytes per GPU of each component)"
    return close(atol=1e-3, rtol=1e-9)({part: got[part] for part in PARTS}, expected)


def _zero_cases() -> list[Case]:
    psi = 7.5e9
    return [
        Case((psi, 64, 0), label="7.5B parameters, 64 GPUs, stage 0 (plain DDP)"),
        Case((psi, 64, 1), label="stage 1 (optimizer states partitioned)"),
        Case((psi, 64, 2), label="stage 2 (+ gradients)"),
        Case((psi, 64, 3), label="stage 3 (+ parameters)"),
        Case((1e6, 4, 2), {"k": 8}, label="1M parameters, 4 GPUs, stage 2, K=8"),
        Case((1e6, 1, 3), label="one GPU: every stage equals plain data parallel"),
    ]


def _bubble_cases() -> list[Case]:
    return [
        Case((4, 8), label="p=4 stages, m=8 micro-batches"),
        Case((4, 1), label="p=4, m=1: no pipelining at all"),
        Case((2, 4), label="p=2, m=4 (the two-process pipeline of this notebook)"),
        Case((8, 3), label="p=8, m=3: fewer micro-batches than stages"),
        Case((8, 64), label="p=8, m=64"),
        Case((1, 5), label="one stage: nothing to wait for"),
    ]


def _megatron_cases() -> list[Case]:
    g = torch.Generator().manual_seed(12)

    def layer(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    return [
        Case((layer(5, 6), layer(8, 6), layer(8), layer(3, 8), 2), label="world=2, h=8"),
        Case((layer(4, 6), layer(12, 6), layer(12), layer(5, 12), 4), label="world=4, h=12"),
        Case((layer(3, 4), layer(6, 4), layer(6), layer(2, 6), 3), label="world=3, h=6"),
        Case((layer(2, 4), layer(4, 4), layer(4), layer(3, 4), 1), label="world=1: one rank"),
    ]


EXERCISES = {
    "distributed.ring_schedule": Exercise(
        reference=distributed.ring_schedule,
        custom=_check_ring,
        hint="Two phases of n-1 steps each. In every step each worker passes on the chunk it "
        "received in the step before; at the start of the second phase, which chunk does "
        "worker i hold the complete sum of?",
        formula="reduce-scatter, s = 0..n-2: worker i sends chunk (i - s) % n; all-gather, "
        "s = 0..n-2: worker i sends chunk (i + 1 - s) % n; receiver = (sender + 1) % n.",
    ),
    "distributed.zero_memory": Exercise(
        reference=zero_memory,
        cases=_zero_cases,
        compare=_compare_parts,
        hint="Three components: fp16 parameters, fp16 gradients, K bytes of optimizer state per "
        "parameter, in bytes (not GB). Each stage divides one more component by n_gpus, in the "
        "order the ZeRO paper names them (P_os, P_os+g, P_os+g+p): which one comes first?",
        formula="params = 2*Psi/(N if stage >= 3 else 1); grads = 2*Psi/(N if stage >= 2 else "
        "1); optimizer = K*Psi/(N if stage >= 1 else 1).",
    ),
    "distributed.bubble_fraction": Exercise(
        reference=distributed.bubble_fraction,
        cases=_bubble_cases,
        compare=close(atol=1e-12, rtol=1e-9),
        hint="Draw the GPipe schedule for p=2, m=2 and count: how many time steps does the "
        "whole step take, and for how many of them is one stage busy? The bubble is the idle "
        "share of ALL stage-time slots, not idle time divided by busy time.",
        formula="a step takes 2(m + p - 1) time steps, each stage is busy 2m of them: "
        "bubble = (p - 1) / (m + p - 1).",
    ),
    "distributed.megatron_mlp_partials": Exercise(
        reference=distributed.megatron_mlp_partials,
        cases=_megatron_cases,
        compare=close(atol=1e-5, rtol=1e-4),
        hint="Each rank must be able to apply relu without talking to the others: which "
        "dimension of w1 (an nn.Linear weight, (out, in)) gives each rank whole hidden "
        "features? The second layer then needs only those features. Return what each rank "
        "holds BEFORE the all-reduce; b2 is added once, after it.",
        formula="for (w1_r, b1_r, w2_r) in zip(w1.chunk(world, 0), b1.chunk(world), "
        "w2.chunk(world, 1)): partial_r = relu(x @ w1_r.T + b1_r) @ w2_r.T.",
    ),
}
