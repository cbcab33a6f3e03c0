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


class FakeClock:
    """A virtual clock: each call of ``fn`` takes the next scripted duration (no wall time)."""

    def __init__(self, durations: list[float]) -> None:
        self.now, self.durations = 0.0, list(durations)

    def perf_counter(self) -> float:
        return self.now

    def fn(self) -> None:
        self.now += self.durations.pop(0)


def test_latency_reports_median_not_warmup(monkeypatch) -> None:
    clock = FakeClock([5.0, 5.0] + [0.002] * 5)  # two slow warm-up calls, then fast ones
    monkeypatch.setattr(bench.time, "perf_counter", clock.perf_counter)
    t = bench.latency(clock.fn, warmup=2, repeats=5)
    assert t.median == pytest.approx(0.002)


def test_latency_median_ignores_one_slow_timed_call(monkeypatch) -> None:
    """The reason for the median: one call hit by the OS must not move the reported time."""
    clock = FakeClock([0.001, 0.001, 0.9, 0.001, 0.001])
    monkeypatch.setattr(bench.time, "perf_counter", clock.perf_counter)
    t = bench.latency(clock.fn, warmup=0, repeats=5)
    assert t.median == pytest.approx(0.001)
    assert t.mean == pytest.approx(0.1808)  # the mean would have been 180x off
    assert t.p90 > 0.3


def test_compare_ratio_spread_and_verdict(monkeypatch) -> None:
    """B takes half of A's time in every round: speed-up 2 with no spread, a clear verdict."""
    now = {"t": 0.0}
    monkeypatch.setattr(bench.time, "perf_counter", lambda: now["t"])

    def step(seconds: float):
        def fn() -> None:
            now["t"] += seconds

        return fn

    c = bench.compare({"A": step(0.004), "B": step(0.002)}, rounds=5, repeats=3)
    assert c.baseline == "A" and c.speedup["A"] == pytest.approx(1.0)
    assert c.speedup["B"] == pytest.approx(2.0) and c.spread["B"] == pytest.approx((2.0, 2.0))
    assert c.median_ms["A"] == pytest.approx(4.0) and c.clear("B")
    assert c.verdict("B").startswith("B is 2.00x faster than A")
    assert [r["variant"] for r in c.rows()] == ["A", "B"]


def test_compare_says_no_clear_difference_when_the_spread_covers_one(monkeypatch) -> None:
    now = {"t": 0.0}
    monkeypatch.setattr(bench.time, "perf_counter", lambda: now["t"])
    # B alternates between 10 % faster and 10 % slower than A: median ratio ~1, IQR covers 1.
    b_times = iter([0.0009, 0.0011] * 40)

    def a() -> None:
        now["t"] += 0.001

    def b() -> None:
        now["t"] += next(b_times)

    c = bench.compare({"A": a, "B": b}, rounds=8, repeats=1, warmup=1)
    lo, hi = c.spread["B"]
    assert lo < 1.0 < hi and not c.clear("B")
    assert "no clear difference" in c.verdict("B")


def test_compare_slower_verdict_and_bad_input(monkeypatch) -> None:
    now = {"t": 0.0}
    monkeypatch.setattr(bench.time, "perf_counter", lambda: now["t"])

    def a() -> None:
        now["t"] += 0.001

    def b() -> None:
        now["t"] += 0.003

    c = bench.compare({"A": a, "B": b}, rounds=3, repeats=1)
    assert c.verdict("B").startswith("B is 3.00x slower than A")
    with pytest.raises(ValueError, match="2\\+ variants"):
        bench.compare({"A": a})
    with pytest.raises(ValueError, match="baseline"):
        bench.compare({"A": a, "B": b}, baseline="C")


def test_expect_prints_an_invariant_line_and_can_fail(capsys) -> None:
    from labkit import expect

    assert expect("student accuracy", 0.9861, 0.95, 1.0) is None  # no stray `True` in a cell
    assert capsys.readouterr().out == "✓ student accuracy in [0.95, 1]\n"
    with pytest.raises(AssertionError, match="student accuracy = 0.9 is outside"):
        expect("student accuracy", 0.9, 0.95, 1.0)
    with pytest.raises(AssertionError):
        expect("loss", float("nan"), 0.0, 1.0)
    with pytest.raises(ValueError, match="low"):
        expect("x", 1.0, 2.0, 1.0)


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


# ------------------------------------------------------------ Pareto front and budget pick
# Hand-made (cost, value) points: cost minimised, value maximised.
POINTS = [
    (1.0, 0.80),  # 0: cheapest
    (2.0, 0.90),  # 1: on the front
    (2.0, 0.85),  # 2: dominated by 1 (same cost, worse)
    (3.0, 0.90),  # 3: dominated by 1 (costlier, same value)
    (4.0, 0.95),  # 4: most accurate
    (2.0, 0.90),  # 5: an exact tie with 1: neither dominates the other
    (0.5, 0.10),  # 6: cheapest of all, worst: still on the front
]


def test_pareto_front_hand_made_points_with_ties_and_dominated() -> None:
    assert bench.pareto_front(POINTS) == [6, 0, 1, 5, 4]
    assert bench.pareto_front([]) == []
    assert bench.pareto_front([(1.0, 0.5)]) == [0]
    # same cost: only the best value survives; same value: only the cheapest
    assert bench.pareto_front([(1.0, 0.5), (1.0, 0.6)]) == [1]
    assert bench.pareto_front([(2.0, 0.5), (1.0, 0.5)]) == [1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=12))
def test_pareto_front_matches_brute_force(pts: list[tuple[int, int]]) -> None:
    def beaten(p: tuple[int, int]) -> bool:
        return any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in pts)

    front = bench.pareto_front(pts)
    assert sorted(front) == [i for i, p in enumerate(pts) if not beaten(p)]
    assert [pts[i][0] for i in front] == sorted(pts[i][0] for i in front)


def test_pareto_front_custom_cheaper_and_nan() -> None:
    # costs within 0.5 of each other count as equal: 1 (cost 2.0) no longer beats 3 (2.4)
    pts = [(1.0, 0.8), (2.0, 0.9), (2.4, 0.9), (2.45, 0.95)]
    assert bench.pareto_front(pts) == [0, 1, 3]

    def cheaper(a: int, b: int) -> bool:
        return pts[a][0] < pts[b][0] - 0.5

    # 3 is as cheap as 1 and 2 within the noise and more accurate: both fall
    assert bench.pareto_front(pts, cheaper=cheaper) == [0, 3]
    with pytest.raises(ValueError, match="NaN"):
        bench.pareto_front([(1.0, 0.5), (float("nan"), 0.9)])
    with pytest.raises(ValueError, match="NaN"):
        bench.pareto_front([(1.0, float("nan"))])


ROWS = [
    {"name": "a", "accuracy": 0.95, "ms": 5.0, "bytes": 900},
    {"name": "b", "accuracy": 0.90, "ms": 2.0, "bytes": 400},
    {"name": "c", "accuracy": 0.90, "ms": 1.0, "bytes": 400},  # ties b on accuracy, faster
    {"name": "d", "accuracy": 0.90, "ms": 1.0, "bytes": 300},  # ties c, fewer bytes
    {"name": "e", "accuracy": 0.50, "ms": 0.5, "bytes": 100},
]


def test_best_under_budget_limits_ties_and_none() -> None:
    def pick(**limits: float) -> str | None:
        row = bench.best_under_budget(ROWS, limits)
        return None if row is None else row["name"]

    assert pick(ms=10.0) == "a"
    assert pick(ms=5.0) == "a"  # the limit is inclusive
    assert pick(ms=4.9) == "c"  # b, c, d tie on accuracy: lower ms, then the earlier row
    assert pick(bytes=400) == "d"  # ... fewer bytes when bytes is the budget
    assert pick(ms=2.0, bytes=350) == "d"
    # the order of the limits is the order of the tie-breaks
    fast_big = [*ROWS, {"name": "f", "accuracy": 0.90, "ms": 0.8, "bytes": 500}]
    assert bench.best_under_budget(fast_big, {"bytes": 900, "ms": 4})["name"] == "d"
    assert bench.best_under_budget(fast_big, {"ms": 4, "bytes": 900})["name"] == "f"
    assert pick(ms=0.5) == "e"
    assert pick(ms=0.1) is None
    assert bench.best_under_budget([], {"ms": 1.0}) is None
    # an exact tie on everything: the earlier row
    twins = [dict(ROWS[3], name="first"), dict(ROWS[3], name="second")]
    assert bench.best_under_budget(twins, {"ms": 9.0})["name"] == "first"
    assert bench.best_under_budget(ROWS, {"ms": 9.0}, value="bytes")["name"] == "a"


def test_best_under_budget_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        bench.best_under_budget(
            [*ROWS, {"accuracy": 0.99, "ms": float("nan"), "bytes": 1}], {"ms": 9}
        )
    with pytest.raises(ValueError, match="NaN"):
        bench.best_under_budget(ROWS, {"ms": float("nan")})
    with pytest.raises(ValueError, match="no 'ms' column"):
        bench.best_under_budget([{"accuracy": 1.0}], {"ms": 1.0})
    with pytest.raises(ValueError, match="limits is empty"):
        bench.best_under_budget(ROWS, {})
