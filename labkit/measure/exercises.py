"""Exercises of notebook 00 (setup and measurement); keys "bench.<name>": the library is labkit.bench."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import torch
from torch import nn

from labkit.core import bench
from labkit.core.checks import Case, Exercise, close


def measure_latency(fn: Callable[[], object], warmup: int = 3, repeats: int = 20) -> float:
    """Reference: median seconds of ``repeats`` timed calls after ``warmup`` untimed calls."""
    return bench.latency(fn, warmup=warmup, repeats=repeats).median


def _slow_start_workload(slow_calls: int, slow_s: float, fast_s: float, outlier_at: int | None):
    """A function whose first ``slow_calls`` calls are slow (cold caches), one call an outlier."""
    calls = {"n": 0}

    def fn() -> None:
        calls["n"] += 1
        n = calls["n"]
        if n <= slow_calls:
            time.sleep(slow_s)
        elif outlier_at is not None and n == outlier_at:
            time.sleep(20 * fast_s)
        else:
            time.sleep(fast_s)

    return fn, calls


def _check_measure_latency(learner: Callable[..., float]) -> str | None:
    fast = 0.002
    fn, calls = _slow_start_workload(slow_calls=5, slow_s=0.02, fast_s=fast, outlier_at=None)
    got = learner(fn, warmup=5, repeats=5)
    if calls["n"] != 10:
        return f"with warmup=5, repeats=5 your function called fn {calls['n']} times (expected 10)"
    if isinstance(got, bool) or not isinstance(got, float | int):
        return f"return the median latency in seconds as a float, got {type(got).__name__}"
    if not 0.5 * fast <= got <= 3 * fast:
        return (
            f"got {got * 1e3:.2f} ms for calls that take {fast * 1e3:.1f} ms after the first 5 "
            "slow (warm-up) calls: time only the calls after warm-up, and return seconds"
        )
    fn, calls = _slow_start_workload(slow_calls=0, slow_s=0, fast_s=fast, outlier_at=4)
    got = learner(fn, warmup=0, repeats=9)
    if not 0.5 * fast <= got <= 3 * fast:
        return (
            f"one call out of 9 took {20 * fast * 1e3:.0f} ms and your result became "
            f"{got * 1e3:.2f} ms: report the median, which one outlier cannot move"
        )
    # 5 slow calls (8 ms) and 4 fast ones (2 ms): the median is a slow one, the minimum is not
    pattern = itertools.cycle([0.008, 0.002])
    got = learner(lambda: time.sleep(next(pattern)), warmup=0, repeats=9)
    if not 0.006 <= got <= 0.02:
        return (
            f"calls of 8, 2, 8, 2, 8, 2, 8, 2, 8 ms gave {got * 1e3:.2f} ms; their median is 8 ms "
            "(the minimum or the mean is not the median)"
        )
    return None


def model_size_bytes(model: nn.Module) -> int:
    """Reference: bytes of parameters and buffers, sum(numel * element_size)."""
    return bench.model_size_bytes(model)


class _Tied(nn.Module):
    """Two layers sharing one weight (like tied embeddings): it counts once in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 6, bias=False)
        self.b = self.a


def _size_cases() -> list[Case]:
    torch.manual_seed(0)
    half = nn.Linear(16, 4).half()
    return [
        Case((nn.Linear(10, 5),), label="nn.Linear(10, 5) (50 weights + 5 biases, fp32)"),
        Case((half,), label="an fp16 nn.Linear(16, 4): 2 bytes per element"),
        Case((nn.BatchNorm2d(8),), label="nn.BatchNorm2d(8): buffers (running stats) count too"),
        Case(
            (nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)),),
            label="a Sequential (nested modules: count each tensor once)",
        ),
        Case((_Tied(),), label="a shared (tied) weight: it occupies memory once"),
    ]


def conv2d_macs(conv: nn.Conv2d, height: int, width: int, batch: int = 1) -> int:
    """Reference: N * C_out * H_out * W_out * (C_in / groups) * kH * kW."""
    return bench.count_macs(conv, torch.zeros(batch, conv.in_channels, height, width))


def _macs_cases() -> list[Case]:
    return [
        Case((nn.Conv2d(3, 8, 3), 8, 8), label="Conv2d(3, 8, 3) on 8x8, no padding"),
        Case((nn.Conv2d(3, 8, 3, padding=1), 8, 8), label="padding=1 keeps 8x8"),
        Case((nn.Conv2d(4, 8, 3, stride=2, padding=1), 9, 9), label="stride=2 on 9x9"),
        Case((nn.Conv2d(4, 8, 3, stride=2), 9, 9), label="stride=2 on 9x9 without padding"),
        Case(
            (nn.Conv2d(3, 4, 3, stride=2), 8, 8), label="stride=2 on 8x8: (8 - 3) / 2 is not whole"
        ),
        Case(
            (nn.Conv2d(2, 4, 2, stride=3), 10, 7), label="stride=3 on 10x7: the last window drops"
        ),
        Case((nn.Conv2d(8, 8, 3, padding=1, groups=8), 6, 6), label="depthwise: groups=8"),
        Case((nn.Conv2d(4, 8, 3, padding=1, groups=2), 6, 6), label="groups=2 with C_in != C_out"),
        Case((nn.Conv2d(2, 4, (1, 3)), 5, 7), {"batch": 3}, label="1x3 kernel, batch 3"),
    ]


EXERCISES = {
    # Learner-only: the median of bench.latency as a float (bench.latency returns a Timing);
    # allow-listed in tests/test_exercise_keys.py.
    "bench.measure_latency": Exercise(
        reference=measure_latency,
        custom=_check_measure_latency,
        hint="Which calls should the clock see, and which single number is not moved by one "
        "slow call?",
        formula="call fn `warmup` times untimed; then for each of `repeats` calls: "
        "t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0); "
        "return statistics.median(times) (seconds).",
    ),
    "bench.model_size_bytes": Exercise(
        reference=model_size_bytes,
        cases=_size_cases,
        compare=close(atol=0, rtol=0),
        hint="Memory holds more than the learned weights, and not every element is 4 bytes; "
        "a tensor shared by two layers is stored once.",
        formula="sum(t.numel() * t.element_size() for t in [*model.parameters(), "
        "*model.buffers()]) - parameters() and buffers() each list a shared tensor once.",
    ),
    # Learner-only: the formula for one Conv2d from its sizes; bench.count_macs counts a whole
    # model with forward hooks (allow-listed in tests/test_exercise_keys.py).
    "bench.conv2d_macs": Exercise(
        reference=conv2d_macs,
        cases=_macs_cases,
        compare=close(atol=0, rtol=0),
        hint="First find the output's height and width from padding, kernel and stride; then "
        "ask how many multiply-adds one output element needs when channels are split in groups.",
        formula="H_out = (H + 2*pad_h - kH) // stride_h + 1 (same for W); "
        "MACs = batch * C_out * H_out * W_out * (C_in // groups) * kH * kW.",
    ),
}
