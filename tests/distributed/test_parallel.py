"""labkit.distributed.parallel: pipeline schedules (the contract of issue 21), the Megatron
MLP's partial sums, collective costs and data-parallel scaling efficiency."""

from __future__ import annotations

import itertools

import pytest
import torch

from labkit import distributed as dist_lab

SIZES = [(1, 1), (1, 4), (2, 1), (2, 4), (3, 2), (4, 1), (4, 3), (4, 4), (4, 8), (5, 16), (8, 3)]


def ops(steps):
    """{(op, stage, micro-batch): time step} of a schedule; fails on a repeated op."""
    seen = {}
    for t, row in enumerate(steps):
        for s, op in enumerate(row):
            if op is not None:
                kind, j = op
                assert (kind, s, j) not in seen, f"{kind}{j} twice on stage {s}"
                seen[(kind, s, j)] = t
    return seen


@pytest.mark.parametrize("kind", ["gpipe", "1f1b"])
@pytest.mark.parametrize(("p", "m"), SIZES)
def test_schedule_contract(kind: str, p: int, m: int) -> None:
    steps = dist_lab.pipeline_schedule(kind, p, m)
    assert len(steps) == 2 * (m + p - 1)
    assert all(isinstance(row, list) and len(row) == p for row in steps)
    for row in steps:
        for op in row:
            assert op is None or (isinstance(op, tuple) and op[0] in "FB" and 0 <= op[1] < m)
    t = ops(steps)
    # every stage runs F and B of every micro-batch exactly once
    assert set(t) == {(k, s, j) for k in "FB" for s in range(p) for j in range(m)}
    for s, j in itertools.product(range(p), range(m)):
        if s > 0:
            assert t[("F", s, j)] > t[("F", s - 1, j)]
        if s < p - 1:
            assert t[("B", s, j)] > t[("B", s + 1, j)]
        assert t[("B", s, j)] > t[("F", s, j)]


@pytest.mark.parametrize(("p", "m"), SIZES)
def test_measured_bubble_equals_the_formula(p: int, m: int) -> None:
    for kind in ("gpipe", "1f1b"):
        steps = dist_lab.pipeline_schedule(kind, p, m)
        idle = sum(op is None for row in steps for op in row)
        assert idle / (p * len(steps)) == pytest.approx((p - 1) / (m + p - 1), abs=1e-12)
        assert dist_lab.schedule_bubble(steps) == pytest.approx(dist_lab.bubble_fraction(p, m))
        assert idle == 2 * p * (p - 1)  # each stage idles 2(p - 1) steps, whatever m is


@pytest.mark.parametrize(("p", "m"), SIZES)
def test_1f1b_holds_at_most_p_microbatches_gpipe_holds_m(p: int, m: int) -> None:
    one = dist_lab.in_flight(dist_lab.pipeline_schedule("1f1b", p, m))
    gpipe = dist_lab.in_flight(dist_lab.pipeline_schedule("gpipe", p, m))
    assert one[0] <= p and one[0] == min(p, m)
    assert all(k <= p - s for s, k in enumerate(one))  # stage s holds at most p - s
    assert gpipe[0] == m


def test_in_flight_counts_by_hand() -> None:
    # p=2, m=4, 1F1B: stage 0 runs F0 F1 B0 F2 B1 F3 B2 B3 -> at most 2 held
    steps = dist_lab.pipeline_schedule("1f1b", 2, 4)
    stage0 = [row[0] for row in steps if row[0]]
    assert stage0 == [
        ("F", 0),
        ("F", 1),
        ("B", 0),
        ("F", 2),
        ("B", 1),
        ("F", 3),
        ("B", 2),
        ("B", 3),
    ]
    assert dist_lab.in_flight(steps) == [2, 1]
    # a schedule that runs every forward first holds them all
    assert dist_lab.in_flight([[("F", 0)], [("F", 1)], [("B", 1)], [("B", 0)]]) == [2]


def test_bubble_fraction_values() -> None:
    assert dist_lab.bubble_fraction(1, 7) == 0.0
    assert dist_lab.bubble_fraction(4, 1) == 0.75
    assert dist_lab.bubble_fraction(4, 8) == pytest.approx(3 / 11)
    assert dist_lab.bubble_fraction(8, 10**9) < 1e-8  # more micro-batches: the bubble vanishes


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: dist_lab.bubble_fraction(0, 4), "stages"),
        (lambda: dist_lab.bubble_fraction(4, 0), "microbatches"),
        (lambda: dist_lab.bubble_fraction(2.0, 4), "stages"),
        (lambda: dist_lab.bubble_fraction(True, 4), "stages"),
        (lambda: dist_lab.pipeline_schedule("zb", 2, 4), "kind"),
        (lambda: dist_lab.pipeline_schedule("1F1B", 2, 4), "kind"),
        (lambda: dist_lab.pipeline_schedule("gpipe", 0, 4), "stages"),
        (lambda: dist_lab.pipeline_schedule("gpipe", 4, -1), "microbatches"),
        (lambda: dist_lab.pipeline_schedule("gpipe", 1000, 10**5), "bubble_fraction"),
        (lambda: dist_lab.collective_cost("allreduce", 4, 100), "name"),
        (lambda: dist_lab.collective_cost("all-reduce", 0, 100), "n"),
        (lambda: dist_lab.collective_cost("all-reduce", 4, -1), "size_bytes"),
        (lambda: dist_lab.collective_cost("all-reduce", 4, 100, bandwidth=0), "bandwidth"),
        (lambda: dist_lab.dp_efficiency(4, 1e6, 0.0, 1e9), "compute_seconds"),
        (
            lambda: dist_lab.megatron_mlp_partials(
                torch.ones(2, 4), torch.ones(6, 4), torch.ones(6), torch.ones(3, 6), 4
            ),
            "divisible",
        ),
        (
            lambda: dist_lab.megatron_mlp_partials(
                torch.ones(2, 5), torch.ones(6, 4), torch.ones(6), torch.ones(3, 6), 2
            ),
            "chain",
        ),
        (
            lambda: dist_lab.megatron_mlp_partials(
                torch.ones(2, 4), torch.ones(6, 4), torch.ones(6), torch.ones(3, 6), 0
            ),
            "world",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("world", [1, 2, 4, 8])
def test_megatron_partials_sum_to_the_mlp(world: int) -> None:
    g = torch.Generator().manual_seed(world)
    x, w1, b1 = (
        torch.randn(6, 16, generator=g),
        torch.randn(32, 16, generator=g),
        torch.randn(32, generator=g),
    )
    w2, b2 = torch.randn(5, 32, generator=g), torch.randn(5, generator=g)
    parts = dist_lab.megatron_mlp_partials(x, w1, b1, w2, world)
    assert len(parts) == world and all(p.shape == (6, 5) for p in parts)
    full = torch.relu(x @ w1.T + b1) @ w2.T + b2
    torch.testing.assert_close(torch.stack(parts).sum(0) + b2, full, atol=1e-4, rtol=1e-5)
    if world > 1:  # each partial is a real share, not the whole output divided
        assert not torch.allclose(parts[0], parts[1])


def test_collective_costs_match_the_ring_simulator() -> None:
    for n in (2, 4, 8):
        size = 4 * 8 * n  # float32, n equal chunks
        _, sent = dist_lab.ring_allreduce([torch.ones(size // 4) for _ in range(n)])
        cost = dist_lab.collective_cost("all-reduce", n, size)
        assert sum(step[0] for step in sent) == cost["bytes_per_rank"]
        assert len(sent) == cost["messages"]
        rs = dist_lab.collective_cost("reduce-scatter", n, size)
        ag = dist_lab.collective_cost("all-gather", n, size)
        # all-reduce = reduce-scatter + all-gather, in bytes, messages and time
        assert rs["bytes_per_rank"] + ag["bytes_per_rank"] == cost["bytes_per_rank"]
        assert rs["seconds"] + ag["seconds"] == pytest.approx(cost["seconds"])


def test_collective_cost_formulas() -> None:
    m, bw, alpha = 1e9, 1e10, 1e-5
    for name in dist_lab.COLLECTIVES:
        one = dist_lab.collective_cost(name, 1, m, alpha, bw)
        assert one["bytes_per_rank"] == 0 and one["seconds"] == 0  # nothing to talk to
    ar = dist_lab.collective_cost("all-reduce", 64, m, alpha, bw)
    assert ar["bytes_per_rank"] == pytest.approx(2 * 63 / 64 * m)
    assert ar["seconds"] == pytest.approx(2 * 63 * alpha + 2 * 63 / 64 * m / bw)
    a2a = dist_lab.collective_cost("all-to-all", 4, m, alpha, bw)
    assert a2a["bytes_per_rank"] == pytest.approx(0.75 * m) and a2a["messages"] == 3
    bc = dist_lab.collective_cost("broadcast", 4, m, alpha, bw)
    assert bc["seconds"] == pytest.approx(3 * alpha + m / bw)


def test_dp_efficiency() -> None:
    assert dist_lab.dp_efficiency(1, 1e9, 0.5, 1e10) == 1.0
    effs = [dist_lab.dp_efficiency(n, 1e9, 0.5, 1e10) for n in (2, 8, 64)]
    assert effs == sorted(effs, reverse=True) and 0 < effs[-1] < 1
    # a faster link or more compute per step gives a higher efficiency
    assert dist_lab.dp_efficiency(8, 1e9, 0.5, 1e11) > effs[1]
    assert dist_lab.dp_efficiency(8, 1e9, 5.0, 1e10) > effs[1]
    # compute 0.5 s, all-reduce 2*7/8 * 1e9 / 1e10 + 14 * 5e-6 s
    comm = 2 * 7 / 8 * 0.1 + 14 * 5e-6
    assert effs[1] == pytest.approx(0.5 / (0.5 + comm))


def test_zero3_parameter_offload() -> None:
    both = dist_lab.zero_memory(7.5e9, 64, 3, offload_params=True)
    plain = dist_lab.zero_memory(7.5e9, 64, 3)
    assert both["gpu"] == 0.0 and both["cpu"] == plain["gpu"] == 16 * 7.5e9 / 64
    optimizer_only = dist_lab.zero_memory(7.5e9, 64, 3, offload=True)
    assert optimizer_only["gpu"] == plain["params"] == 2 * 7.5e9 / 64
    with pytest.raises(ValueError, match="stage=3"):
        dist_lab.zero_memory(7.5e9, 64, 2, offload_params=True)
    with pytest.raises(ValueError, match="offload"):
        dist_lab.zero_memory(7.5e9, 64, 3, offload="cpu")


def test_schedule_figure_draws_both_schedules_labelled() -> None:
    fig = dist_lab.schedule_figure(3, 4)
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    gpipe, one = (dist_lab.pipeline_schedule(k, 3, 4) for k in ("gpipe", "1f1b"))
    for trace, steps in zip(fig.data, (gpipe, one), strict=True):
        assert len(trace.text) == 3 and len(trace.text[0]) == len(steps)  # stages x time steps
        assert (
            trace.text[0][0] == "F0" and sum(cell == "" for row in trace.text for cell in row) == 12
        )
    assert "time step" in fig.layout.xaxis.title.text and fig.layout.yaxis.title.text == "stage"
