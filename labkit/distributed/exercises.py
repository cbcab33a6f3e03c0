"""Exercises of notebook 12 (distributed training): the ring all-reduce schedule, ZeRO memory."""

from __future__ import annotations

from collections.abc import Callable

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


def zero_memory_per_gpu(params: float, n_gpus: int, stage: int, k: float = 12) -> float:
    """Reference: GPU bytes of model states per GPU (fp16 params and grads, K bytes optimizer)."""
    return distributed.zero_memory(params, n_gpus, stage, k=k)["gpu"]


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
    # Learner-only: the "gpu" entry of distributed.zero_memory, one number; allow-listed in
    # tests/test_exercise_keys.py.
    "distributed.zero_memory_per_gpu": Exercise(
        reference=zero_memory_per_gpu,
        cases=_zero_cases,
        compare=close(atol=1e-3, rtol=1e-9),
        hint="Three terms: fp16 parameters, fp16 gradients, K bytes of optimizer state per "
        "parameter, in bytes (not GB). Each stage divides one more term by n_gpus: which one "
        "does stage 1 partition first?",
        formula="bytes = 2*Psi/(N if stage >= 3 else 1) + 2*Psi/(N if stage >= 2 else 1) "
        "+ K*Psi/(N if stage >= 1 else 1).",
    ),
}
