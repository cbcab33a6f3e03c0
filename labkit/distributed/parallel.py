"""The other two axes: pipeline and tensor parallelism, and what collectives cost.

Pipeline parallelism cuts the model into p stages (one per device) and the batch into m
micro-batches. A stage can work on micro-batch j only after the stage before it has, so the
first and the last stage wait while the pipeline fills and drains. With one time step per
forward (F) and one per backward (B), a whole step takes 2 (m + p - 1) time steps, of which each
stage is busy for 2m, so the idle share (the "bubble") is

    bubble = (p - 1) / (m + p - 1)                    (GPipe and 1F1B alike).

GPipe (Huang et al., 2019) runs every forward, then every backward: a stage keeps the
activations of all m micro-batches. 1F1B (PipeDream-Flush, Narayanan et al., 2021) starts
backwards as soon as it can and then alternates one F and one B: the same bubble, but stage 0
never holds more than p micro-batches in flight.

Tensor parallelism (Megatron-LM, Shoeybi et al., 2019) splits one layer's matrices over t
devices. In the MLP Y = relu(X W1^T + b1) W2^T + b2 (nn.Linear weights, (out, in)):
W1 is split by its output rows ("column-parallel": each rank computes its own slice of the
hidden features, no communication), W2 by its input columns ("row-parallel": each rank gets a
partial sum of Y). One all-reduce sums the partials in forward; in backward one all-reduce
sums the partial gradients of X. b2 is added once, after the all-reduce.

Collective costs in the alpha-beta model (alpha: latency per message, B: bandwidth in bytes/s,
M: bytes of the full tensor, N ranks; ring / pairwise algorithms, Thakur et al., 2005):

    all-reduce       2(N-1) alpha + 2(N-1)/N M / B
    reduce-scatter    (N-1) alpha +  (N-1)/N M / B
    all-gather        (N-1) alpha +  (N-1)/N M / B
    all-to-all        (N-1) alpha +  (N-1)/N M / B
    broadcast         (N-1) alpha +        M / B      (pipelined chain, many chunks)
"""

from __future__ import annotations

import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from plotly.subplots import make_subplots

from labkit.core.errors import (
    check_choice,
    check_int,
    check_number,
    check_positive,
    check_tensor,
)

MAX_SLOTS = 10**7  # stages x time steps of a simulated schedule (a list of lists in memory)
KINDS = ("gpipe", "1f1b")
COLLECTIVES = ("all-reduce", "reduce-scatter", "all-gather", "all-to-all", "broadcast")

Op = tuple[str, int]  # ("F" | "B", micro-batch)


# ----------------------------------------------------------------------------- pipeline


def bubble_fraction(stages: int, microbatches: int) -> float:
    """Idle share of a pipeline step: (p - 1) / (m + p - 1) for p stages, m micro-batches.

    Each stage is busy for 2m of the 2(m + p - 1) time steps (one per F, one per B).
    Taught in notebooks/12_distributed_training.ipynb, "8. Pipeline parallelism".
    """
    _check_pipeline(stages, microbatches)
    return (stages - 1) / (microbatches + stages - 1)


def pipeline_schedule(kind: str, stages: int, microbatches: int) -> list[list[Op | None]]:
    """Who computes what at each time step: ``steps[t][s]`` is None (idle) or ("F"|"B", j).

    Every stage runs its own program in order (GPipe: F0..F(m-1), then B(m-1)..B0;
    1F1B: min(p-1-s, m) warm-up forwards, then one F and one B alternately, then the
    remaining backwards), each op as soon as its inputs exist: F(s, j) after F(s-1, j),
    B(s, j) after B(s+1, j) and after F(s, j), each strictly earlier. 2(m + p - 1) steps.
    Taught in notebooks/12_distributed_training.ipynb, "8. Pipeline parallelism".
    """
    _check_schedule(kind, stages, microbatches)
    programs = [_program(kind, s, stages, microbatches) for s in range(stages)]
    done: dict[tuple[str, int, int], int] = {}  # (op, stage, micro-batch) -> time step
    steps: list[list[Op | None]] = []
    while any(programs):
        t = len(steps)
        row: list[Op | None] = [None] * stages
        for s, program in enumerate(programs):
            if program and _ready(program[0], s, stages, done, t):
                row[s] = program.pop(0)
        for s, op in enumerate(row):
            if op:
                done[(op[0], s, op[1])] = t
        steps.append(row)
    return steps


def schedule_bubble(steps: list[list[Op | None]]) -> float:
    """Measured bubble of a schedule: idle slots / (stages x time steps).

    Used by tests/distributed/test_parallel.py and benchmarks/bench_distributed.py.
    """
    _check_steps(steps)
    slots = [op for row in steps for op in row]  # stages x time steps
    return sum(op is None for op in slots) / len(slots)


def in_flight(steps: list[list[Op | None]]) -> list[int]:
    """Per stage: the most micro-batches forwarded but not yet backwarded at any time,
    i.e. how many micro-batches' activations that stage must keep.

    Taught in notebooks/12_distributed_training.ipynb, "8. Pipeline parallelism".
    """
    _check_steps(steps)
    peaks = []
    for s in range(len(steps[0])):
        held = peak = 0
        for row in steps:
            if row[s]:
                held += 1 if row[s][0] == "F" else -1
                peak = max(peak, held)
        peaks.append(peak)
    return peaks


def schedule_figure(stages: int, microbatches: int) -> go.Figure:
    """GPipe above 1F1B as heat maps: stage x time step, each cell labelled F<j> or B<j>
    (forwards blue, backwards orange, darker for later micro-batches), idle cells blank.

    Taught in notebooks/12_distributed_training.ipynb, "8. Pipeline parallelism".
    """
    fig = make_subplots(rows=2, cols=1, subplot_titles=("GPipe", "1F1B"), vertical_spacing=0.3)
    for row, kind in enumerate(KINDS, start=1):
        steps = pipeline_schedule(kind, stages, microbatches)
        grid = [[steps[t][s] for t in range(len(steps))] for s in range(stages)]  # (stage, time)
        z = [
            [None if op is None else (op[1] + 1) * (1 if op[0] == "F" else -1) for op in r]
            for r in grid
        ]
        text = [["" if op is None else f"{op[0]}{op[1]}" for op in r] for r in grid]
        fig.add_trace(
            go.Heatmap(
                z=z, text=text, texttemplate="%{text}", zmin=-microbatches, zmax=microbatches,
                colorscale=[[0, "#c2410c"], [0.5, "#fde7d3"], [0.5, "#dbeafe"], [1, "#1d4ed8"]],
                showscale=False, xgap=2, ygap=2, hoverinfo="text",
            ),
            row=row, col=1,
        )  # fmt: skip
        fig.update_xaxes(title_text="time step (one forward F or backward B each)", row=row, col=1)
        fig.update_yaxes(title_text="stage", autorange="reversed", dtick=1, row=row, col=1)
    bubble = bubble_fraction(stages, microbatches)
    fig.update_layout(
        title=f"p={stages} stages, m={microbatches} micro-batches: bubble {bubble:.0%} in both",
        template="plotly_white", height=300 + 70 * stages,
    )  # fmt: skip
    return fig


def _program(kind: str, s: int, p: int, m: int) -> list[Op]:
    """Stage s's ops in the order it runs them."""
    if kind == "gpipe":
        return [("F", j) for j in range(m)] + [("B", j) for j in reversed(range(m))]
    warm = min(p - 1 - s, m)
    ops = [("F", j) for j in range(warm)]
    for j in range(m - warm):  # steady state: one forward, one backward
        ops += [("F", warm + j), ("B", j)]
    return ops + [("B", j) for j in range(m - warm, m)]


def _ready(op: Op, s: int, p: int, done: dict[tuple[str, int, int], int], t: int) -> bool:
    """Are op's inputs on stage s finished before time step t?"""
    kind, j = op
    if kind == "F":
        return s == 0 or done.get(("F", s - 1, j), t) < t
    after_forward = done.get(("F", s, j), t) < t
    return after_forward and (s == p - 1 or done.get(("B", s + 1, j), t) < t)


# ----------------------------------------------------------------------------- tensor parallelism


def megatron_mlp_partials(
    x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, world: int
) -> list[torch.Tensor]:
    """What each of ``world`` tensor-parallel ranks holds just before the all-reduce of the
    Megatron MLP y = relu(x W1^T + b1) W2^T + b2: rank r's partial sum of y.

    Rank r keeps rows r of W1 and b1 (column-parallel: its slice of the hidden features,
    relu applied locally) and the matching columns of W2 (row-parallel). The all-reduce
    sums the partials; b2 is added once after it: y = sum(partials) + b2.
    x (batch, d), w1 (h, d), b1 (h,), w2 (out, h); h divisible by world.
    Taught in notebooks/12_distributed_training.ipynb, "9. Tensor parallelism".
    """
    _check_megatron(x, w1, b1, w2, world)
    partials = []
    for w1_r, b1_r, w2_r in zip(
        w1.chunk(world, 0), b1.chunk(world), w2.chunk(world, 1), strict=True
    ):
        hidden = F.relu(x @ w1_r.T + b1_r)  # (batch, h / world): no communication
        partials.append(hidden @ w2_r.T)  # (batch, out): a partial sum
    return partials


# ----------------------------------------------------------------------------- collectives


def collective_cost(
    name: str, n: int, size_bytes: float, alpha: float = 5e-6, bandwidth: float = 12.5e9
) -> dict[str, float]:
    """Bytes each rank sends, sequential messages, and alpha-beta seconds of one collective
    of a tensor of ``size_bytes`` over ``n`` ranks (see the module docstring for the table).

    Taught in notebooks/12_distributed_training.ipynb, "10. Collectives and their cost".
    """
    _check_collective(name, n, size_bytes, alpha, bandwidth)
    share = (n - 1) / n * size_bytes  # the tensor minus this rank's own shard
    sent, steps = {
        "all-reduce": (2 * share, 2 * (n - 1)),
        "reduce-scatter": (share, n - 1),
        "all-gather": (share, n - 1),
        "all-to-all": (share, n - 1),
        "broadcast": (size_bytes if n > 1 else 0.0, n - 1),
    }[name]
    return {"bytes_per_rank": sent, "messages": steps, "seconds": steps * alpha + sent / bandwidth}


def dp_efficiency(
    n: int, grad_bytes: float, compute_seconds: float, bandwidth: float, alpha: float = 5e-6
) -> float:
    """Scaling efficiency of data parallelism with no overlap: compute / (compute + all-reduce).

    Weak scaling: each of the n ranks keeps its own batch, so compute per step is fixed and
    the ring all-reduce of the gradient is added on top (1.0 on one rank).
    Taught in notebooks/12_distributed_training.ipynb, "10. Collectives and their cost".
    """
    _check_dp(n, grad_bytes, compute_seconds, bandwidth, alpha)
    comm = collective_cost("all-reduce", n, grad_bytes, alpha, bandwidth)["seconds"]
    return compute_seconds / (compute_seconds + comm)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_pipeline(stages: object, microbatches: object) -> None:
    check_int(stages, "stages (pipeline stages p, one per device)", low=1)
    check_int(microbatches, "microbatches (m, the batch is cut into m pieces)", low=1)


def _check_schedule(kind: object, stages: object, microbatches: object) -> None:
    check_choice(kind, "kind (the pipeline schedule)", KINDS)
    _check_pipeline(stages, microbatches)
    slots = stages * 2 * (microbatches + stages - 1)
    if slots > MAX_SLOTS:
        raise ValueError(
            f"a schedule of {stages} stages x {microbatches} micro-batches has {slots:,} slots, "
            f"more than {MAX_SLOTS:,}; use bubble_fraction(stages, microbatches) for the number."
        )


def _check_steps(steps: object) -> None:
    """A schedule: a non-empty list of time steps, each a list of one op or None per stage."""
    ok = isinstance(steps, list | tuple) and len(steps) > 0
    ok = ok and all(isinstance(row, list | tuple) and len(row) == len(steps[0]) for row in steps)
    if not ok or not steps[0]:
        raise ValueError(
            "steps must be a pipeline schedule: a non-empty list of time steps, each a list of "
            f"one op or None per stage, got {steps!r:.60}; e.g. pipeline_schedule('1f1b', 4, 8)."
        )


def _check_dp(n: object, grad_bytes: object, compute_s: object, bw: object, alpha: object) -> None:
    check_positive(compute_s, "compute_seconds (one step's compute, seconds)")
    check_number(grad_bytes, "grad_bytes (bytes of the gradient)", low=0)
    _check_collective("all-reduce", n, grad_bytes, alpha, bw)


def _check_megatron(x: object, w1: object, b1: object, w2: object, world: object) -> None:
    check_tensor(x, "x (batch, d)", ndim=2)
    check_tensor(w1, "w1 (h, d), the first nn.Linear's weight", ndim=2)
    check_tensor(b1, "b1 (h,)", ndim=1)
    check_tensor(w2, "w2 (out, h), the second nn.Linear's weight", ndim=2)
    check_int(world, "world (tensor-parallel ranks)", low=1)
    h, d = w1.shape
    if x.shape[1] != d or b1.shape[0] != h or w2.shape[1] != h:
        raise ValueError(
            f"shapes do not chain: x {tuple(x.shape)}, w1 {tuple(w1.shape)}, b1 "
            f"{tuple(b1.shape)}, w2 {tuple(w2.shape)}; need x (batch, d), w1 (h, d), b1 (h,), "
            "w2 (out, h)."
        )
    if h % world:
        raise ValueError(f"the hidden size h={h} must be divisible by world={world}.")


def _check_collective(name: object, n: object, size: object, alpha: object, bw: object) -> None:
    check_choice(name, "name (the collective)", COLLECTIVES)
    check_int(n, "n (ranks)", low=1)
    check_number(size, "size_bytes", low=0)
    check_number(alpha, "alpha (seconds of latency per message)", low=0)
    check_positive(bw, "bandwidth (bytes per second)")
