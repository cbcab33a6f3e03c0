import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from labkit import bench, models


def test_latency_counts_calls_and_orders_stats() -> None:
    calls = []
    t = bench.latency(lambda: calls.append(1), warmup=4, repeats=7)
    assert len(calls) == 11 and t.repeats == 7
    assert t.min <= t.median <= t.p90


def test_latency_reports_median_not_warmup() -> None:
    n = {"calls": 0}

    def fn() -> None:
        n["calls"] += 1
        time.sleep(0.03 if n["calls"] <= 2 else 0.002)

    t = bench.latency(fn, warmup=2, repeats=5)
    assert t.median < 0.015  # the two slow warm-up calls are not timed


def test_latency_bad_input() -> None:
    with pytest.raises(ValueError):
        bench.latency(lambda: None, repeats=0)


@given(st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=50), st.floats(0, 100))
@settings(max_examples=50, deadline=None)
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    import numpy as np

    assert bench.percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-9)


def test_sizes() -> None:
    m = nn.Sequential(nn.Linear(10, 5), nn.BatchNorm1d(5))
    # 55 linear + 10 BN params (fp32) + running mean/var (fp32) + num_batches_tracked (int64)
    assert bench.count_parameters(m) == 65
    assert bench.model_size_bytes(m) == 65 * 4 + 10 * 4 + 8
    assert bench.serialized_size_bytes(m) > bench.model_size_bytes(m)  # pickle framing
    m.half()
    assert bench.model_size_bytes(m) == 75 * 2 + 8


@pytest.mark.parametrize("model", [models.cnn(8), models.cnn(4, depth=4), models.mlp(32, depth=3)])
def test_count_macs_matches_torch_flop_counter(model: nn.Module) -> None:
    x = torch.randn(2, 1, 8, 8)
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert bench.count_macs(model, x) == counter.get_total_flops() // 2


def test_count_macs_grouped_strided_conv() -> None:
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4)
    x = torch.randn(1, 8, 9, 9)
    assert bench.count_macs(conv, x) == 16 * 5 * 5 * (8 // 4) * 9


def test_peak_memory_sees_a_large_temporary() -> None:
    n = 25_000_000  # 100 MB of float32
    big = bench.peak_memory(lambda: torch.ones(n).sum())
    small = bench.peak_memory(lambda: torch.ones(10).sum())
    assert 0.9 * 4 * n < big < 1.5 * 4 * n
    assert small < 0.05 * 4 * n


def test_roofline_point_arithmetic() -> None:
    a = torch.randn(64, 64)
    p = bench.roofline_point(lambda: a @ a, flops=2 * 64**3, bytes_moved=3 * 64 * 64 * 4, repeats=3)
    assert p["intensity"] == pytest.approx(2 * 64**3 / (3 * 64 * 64 * 4))
    assert p["gflops"] == pytest.approx(2 * 64**3 / p["seconds"] / 1e9)
