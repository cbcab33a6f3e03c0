"""Measuring honestly: latency, throughput, size, peak memory, parameters and MACs;
the Pareto front of measured variants and the best one under a budget.

Timing rule: warm up (first calls pay for allocation, lazy init, caches), then time each
call separately with time.perf_counter, synchronising CUDA before reading the clock, and
report the median (robust to OS noise) and the 90th percentile (the tail users feel).
"""

from __future__ import annotations

import io
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from labkit.core.env import threads as threads_ctx
from labkit.core.errors import check_int, check_model, check_number, check_positive, check_tensor


@dataclass(frozen=True)
class Timing:
    """Seconds per call over ``repeats`` timed calls (after warm-up)."""

    median: float
    p90: float
    mean: float
    min: float
    repeats: int

    @property
    def median_ms(self) -> float:
        return self.median * 1e3

    @property
    def p90_ms(self) -> float:
        return self.p90 * 1e3


def _uses_cuda(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    values = list(args) + list(kwargs.values())
    return torch.cuda.is_available() and any(
        isinstance(v, torch.Tensor) and v.is_cuda for v in values
    )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, like numpy.percentile."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def latency(
    fn: Callable[..., Any],
    *args: Any,
    warmup: int = 3,
    repeats: int = 20,
    threads: int | None = None,
    cuda_sync: bool | None = None,
    **kwargs: Any,
) -> Timing:
    """Time ``fn(*args, **kwargs)``: ``warmup`` untimed calls, then ``repeats`` timed calls.

    cuda_sync=None synchronises when a tensor argument lives on a CUDA device (GPU work is
    asynchronous: without a sync the clock stops before the kernel finishes).
    threads=n runs the measurement with n torch threads.
    """
    _check_timing(fn, warmup, repeats, threads)
    sync = _uses_cuda(args, kwargs) if cuda_sync is None else cuda_sync
    n_threads = threads or torch.get_num_threads()
    times: list[float] = []
    with threads_ctx(n_threads):
        for _ in range(warmup):
            fn(*args, **kwargs)
        for _ in range(repeats):
            if sync:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn(*args, **kwargs)
            if sync:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return Timing(
        median=statistics.median(times),
        p90=percentile(times, 90),
        mean=statistics.fmean(times),
        min=min(times),
        repeats=repeats,
    )


def throughput(fn: Callable[..., Any], *args: Any, batch_size: int, **kwargs: Any) -> float:
    """Items per second = batch_size / median latency of one call on a batch."""
    return batch_size / latency(fn, *args, **kwargs).median


def speedup(baseline: Timing, candidate: Timing) -> float:
    """How many times faster ``candidate`` is: median(baseline) / median(candidate)."""
    return baseline.median / candidate.median


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (elements), optionally only those with requires_grad."""
    check_model(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def model_size_bytes(model: nn.Module) -> int:
    """Bytes the parameters and buffers occupy in memory: sum of numel * element_size."""
    check_model(model)
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def serialized_size_bytes(model: nn.Module) -> int:
    """Bytes of the state_dict written with torch.save (what a checkpoint file costs)."""
    check_model(model)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def _rss_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def peak_memory(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Peak extra memory (bytes) while ``fn(*args, **kwargs)`` runs.

    CUDA tensors: torch.cuda.max_memory_allocated() - memory_allocated() before the call.
    CPU: the process's peak resident set size (Linux VmHWM, reset by writing 5 to
    /proc/self/clear_refs) minus the resident size before the call. This is real memory
    the OS gave the process: torch's CPU tensors plus allocator overhead; blocks under
    ~128 KiB may reuse already-resident memory and not show.
    """
    _check_callable(fn)
    if _uses_cuda(args, kwargs):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn(*args, **kwargs)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _rss_bytes("VmRSS")
    except OSError as exc:
        raise ValueError(
            "CPU peak memory needs Linux's /proc/self/clear_refs; "
            f"it is not available here ({exc}). Run on Linux or measure on a CUDA device."
        ) from None
    fn(*args, **kwargs)
    return max(0, _rss_bytes("VmHWM") - before)


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass on ``example`` (whole batch).

    Conv:   MACs = N * C_out * H_out * W_out * (C_in / groups) * kH * kW
    Linear: MACs = (numel(out) / out_features) * in_features * out_features
    Other layers (BN, ReLU, pooling) are counted as 0: they are memory-bound, not MACs.
    """
    _check_count_macs(model, example)
    total = 0

    def conv_hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(m, nn.modules.conv._ConvNd)
        kernel = m.weight.shape[1] * int(torch.tensor(m.weight.shape[2:]).prod())
        total += out.numel() * kernel

    def linear_hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(m, nn.Linear)
        total += out.numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return total


def roofline_point(
    fn: Callable[[], Any], flops: float, bytes_moved: float, **kw: Any
) -> dict[str, float]:
    """Measure ``fn`` and place it on a roofline.

    arithmetic intensity I = flops / bytes_moved  (FLOP per byte of memory traffic)
    achieved GFLOP/s = flops / t / 1e9, achieved GB/s = bytes_moved / t / 1e9, t = median.
    """
    _check_roofline_point(flops, bytes_moved)
    t = latency(fn, **kw).median
    return {
        "seconds": t,
        "intensity": flops / bytes_moved,
        "gflops": flops / t / 1e9,
        "gbytes_per_s": bytes_moved / t / 1e9,
    }


# ------------------------------------------------------------ the one A-vs-B comparison
@dataclass(frozen=True)
class Comparison:
    """Interleaved timing of several variants against a baseline (see :func:`compare`).

    ``median_ms[name]``: median over rounds of each round's median milliseconds per call.
    ``speedup[name]``: median over rounds of t(baseline) / t(name) measured in the SAME round;
    ``spread[name]``: the interquartile range (25th, 75th percentile) of those per-round ratios.
    """

    baseline: str
    median_ms: dict[str, float]
    speedup: dict[str, float]
    spread: dict[str, tuple[float, float]]
    rounds: int
    threads: int

    def clear(self, name: str) -> bool:
        """True when the spread of ``name``'s ratio does not cover 1.0 (a real difference)."""
        lo, hi = self.spread[name]
        return not (lo <= 1.0 <= hi)

    def verdict(self, name: str) -> str:
        """One sentence from this run's numbers, e.g. 'int8 is 1.30x faster than fp32 ...'."""
        r, (lo, hi) = self.speedup[name], self.spread[name]
        band = f"(ratio {r:.2f}, IQR {lo:.2f}-{hi:.2f} over {self.rounds} rounds)"
        if not self.clear(name):
            return f"{name} vs {self.baseline}: no clear difference {band}"
        if r >= 1:
            return f"{name} is {r:.2f}x faster than {self.baseline} {band}"
        return f"{name} is {1 / r:.2f}x slower than {self.baseline} {band}"

    def rows(self) -> list[dict[str, Any]]:
        """A table: one row per variant with its median ms, speed-up, IQR and verdict."""
        return [
            {
                "variant": n,
                "median_ms": self.median_ms[n],
                "speedup": self.speedup[n],
                "iqr_low": self.spread[n][0],
                "iqr_high": self.spread[n][1],
                "clear": n == self.baseline or self.clear(n),
            }
            for n in self.median_ms
        ]

    def report(self) -> str:
        """Every variant's verdict, one line each (the baseline first, with its time)."""
        lines = [f"{self.baseline}: {self.median_ms[self.baseline]:.3f} ms per call (baseline)"]
        for n in self.median_ms:
            if n != self.baseline:
                lines.append(f"{n}: {self.median_ms[n]:.3f} ms - " + self.verdict(n))
        return "\n".join(lines)


def compare(
    fns: dict[str, Callable[[], Any]],
    *,
    baseline: str | None = None,
    rounds: int = 15,
    repeats: int = 5,
    warmup: int = 3,
    threads: int | None = None,
    no_grad: bool = True,
    cuda_sync: bool | None = None,
) -> Comparison:
    """Time zero-argument callables in interleaved rounds; ratios with their spread.

    Each round times every variant with :func:`latency` (``repeats`` calls, median), in
    alternating order (A B C, then C B A, ...), so a busy machine's slow moments hit every
    variant alike. For each round r, speed-up_r = t_r(baseline) / t_r(variant); we report
    the median and the interquartile range of speed-up_r. When the IQR covers 1.0 the
    verdict is "no clear difference". ``no_grad=False`` times training steps (autograd on). The callables take no
    arguments, so CUDA is synchronised around each call whenever CUDA is in use here
    (``cuda_sync=None``), else GPU work would be timed before it finishes.
    Taught in notebooks/00_setup_and_measurement.ipynb, "Comparing two versions".
    """
    _check_compare(fns, baseline, rounds, repeats, warmup, threads)
    base = baseline or next(iter(fns))
    n_threads = threads or torch.get_num_threads()
    if cuda_sync is None:
        cuda_sync = torch.cuda.is_available() and torch.cuda.is_initialized()
    names = list(fns)
    per_round: dict[str, list[float]] = {n: [] for n in names}
    with torch.set_grad_enabled(not no_grad):
        for n in names:
            latency(fns[n], warmup=warmup, repeats=1, threads=n_threads, cuda_sync=cuda_sync)
        for r in range(rounds):
            for n in names if r % 2 == 0 else names[::-1]:
                t = latency(
                    fns[n], warmup=0, repeats=repeats, threads=n_threads, cuda_sync=cuda_sync
                )
                per_round[n].append(t.median)
    ratios = {n: [b / t for b, t in zip(per_round[base], per_round[n], strict=True)] for n in names}
    return Comparison(
        baseline=base,
        median_ms={n: statistics.median(v) * 1e3 for n, v in per_round.items()},
        speedup={n: statistics.median(v) for n, v in ratios.items()},
        spread={n: (percentile(v, 25), percentile(v, 75)) for n, v in ratios.items()},
        rounds=rounds,
        threads=n_threads,
    )


# ------------------------------------------------------------ Pareto front and budget pick
def _finite(value: Any, what: str) -> float:
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{what} is NaN: measure it again or drop that point.")
    return v


def pareto_front(
    points: Sequence[tuple[float, float]],
    *,
    cheaper: Callable[[int, int], bool] | None = None,
) -> list[int]:
    """Indices of the (cost, value) points that no other point dominates, cheapest first.

    cost is minimised (latency, bytes, MACs), value is maximised (accuracy). Point j
    dominates point i when j costs no more and is worth no less, and is strictly better in
    one of the two:

        not cheaper(i, j)  and  value_j >= value_i  and  (cheaper(j, i) or value_j > value_i)

    with cheaper(a, b) = cost_a < cost_b by default. Pass ``cheaper`` (two indices -> bool)
    to compare costs another way, e.g. "faster beyond the timing noise" so that two points
    within each other's noise count as equally cheap. Ties: identical points dominate
    neither each other, so both stay on the front. NaN in a cost or value raises ValueError
    (a NaN compares False both ways and would slip onto the front). The front is sorted by
    cost, then by value (highest first), then by index.
    Taught in notebooks/10_edge_deployment.ipynb, "4. Hardware-aware search".
    """
    pts = [
        (_finite(c, f"points: cost of point {i}"), _finite(v, f"points: value of point {i}"))
        for i, (c, v) in enumerate(_pairs(points))
    ]

    def lower(a: int, b: int) -> bool:
        return cheaper(a, b) if cheaper is not None else pts[a][0] < pts[b][0]

    def dominated(i: int) -> bool:
        vi = pts[i][1]
        return any(
            j != i and not lower(i, j) and pts[j][1] >= vi and (lower(j, i) or pts[j][1] > vi)
            for j in range(len(pts))
        )

    front = [i for i in range(len(pts)) if not dominated(i)]
    return sorted(front, key=lambda i: (pts[i][0], -pts[i][1], i))


def best_under_budget(
    rows: Sequence[Mapping[str, Any]],
    limits: Mapping[str, float],
    value: str = "accuracy",
) -> Mapping[str, Any] | None:
    """The row of highest ``value`` among those with row[k] <= limits[k] for every k.

    value is maximised; every budgeted column is a cost (a limit is inclusive). Ties on value
    go to the cheaper row, comparing the budgeted columns in the order ``limits`` lists them,
    then to the earlier row. None when no row fits every budget. NaN in a limit, in a
    budgeted column or in ``value`` raises ValueError (NaN <= limit is False: a row with a
    NaN cost would silently vanish).
    Taught in notebooks/10_edge_deployment.ipynb, "4. Hardware-aware search".
    """
    if not limits:
        raise ValueError("limits is empty: give at least one budget, e.g. {'latency_ms': 5.0}.")
    for k, lim in limits.items():
        _finite(lim, f"limits: limit {k!r}")
    ok = []
    for n, row in enumerate(rows):
        for k in (value, *limits):
            if k not in row:
                which = f"value={k!r}" if k == value else "limits"
                raise ValueError(
                    f"{which}: row {n} has no {k!r} column (columns: {list(row)}); "
                    "use one of those names."
                )
            _finite(row[k], f"rows: row {n}[{k!r}]")
        if all(row[k] <= lim for k, lim in limits.items()):
            ok.append((n, row))
    if not ok:
        return None
    # max value; ties: smaller costs, then the earlier row
    best = min(ok, key=lambda nr: (-nr[1][value], *(nr[1][k] for k in limits), nr[0]))
    return best[1]


# ------------------------------------------------------------ checks
def _check_callable(fn: object, name: str = "fn") -> None:
    if not callable(fn):
        raise ValueError(
            f"{name} must be a function to call, got {type(fn).__name__}; "
            "pass the function itself (no parentheses) or a lambda: lambda: model(x)."
        )


def _check_timing(fn: object, warmup: object, repeats: object, threads: object) -> None:
    _check_callable(fn)
    _check_counts(warmup, repeats, threads)


def _check_counts(warmup: object, repeats: object, threads: object) -> None:
    check_int(warmup, "warmup", low=0, high=10_000)
    check_int(repeats, "repeats", low=1, high=100_000)
    if threads is not None:
        check_int(threads, "threads", low=1, high=1024)


def _check_compare(
    fns: object, baseline: object, rounds: object, repeats: object, warmup: object, threads: object
) -> None:
    if not isinstance(fns, dict) or len(fns) < 2:
        got = list(fns) if isinstance(fns, dict) else type(fns).__name__
        raise ValueError(
            f"fns must be a dict of 2+ variants to compare (name -> function), got {got}; "
            "e.g. compare({'fp32': lambda: m(x), 'int8': lambda: q(x)})."
        )
    for name, fn in fns.items():
        _check_callable(fn, f"fns[{name!r}]")
    if baseline is not None and baseline not in fns:
        raise ValueError(f"baseline={baseline!r} is not one of the variants {list(fns)}.")
    check_int(rounds, "rounds", low=3, high=10_000)
    _check_counts(warmup, repeats, threads)


def _check_count_macs(model: object, example: object) -> None:
    check_model(model)
    check_tensor(example, "example", floating=False)


def _check_roofline_point(flops: object, bytes_moved: object) -> None:
    check_number(flops, "flops", low=0)
    check_positive(bytes_moved, "bytes_moved")


def _pairs(points: Sequence[Any]) -> Sequence[Any]:
    for i, p in enumerate(points):
        if not isinstance(p, (tuple, list)) or len(p) != 2:
            raise ValueError(f"points[{i}] must be a (cost, value) pair, got {p!r}.")
    return points
