"""labkit.pipeline's order ablation and Pareto sweep: tiny runs, and the front against brute force."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from labkit import data, models, pipeline


def _loader():
    return data.digits_loaders(batch_size=32, train_subset=64).train


@pytest.fixture(scope="module")
def digits_test():
    x, y = data.digits()["test"]
    return x[:60], y[:60]


def _convs(model: nn.Module) -> list[int]:
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


# ---- the front and the choice: brute force on random points, ties included


def _brute_front(points):
    def dominated(i):
        ci, vi = points[i]
        return any(
            cj <= ci and vj >= vi and (cj < ci or vj > vi)
            for j, (cj, vj) in enumerate(points)
            if j != i
        )

    return {i for i in range(len(points)) if not dominated(i)}


@pytest.mark.parametrize("seed", range(40))
def test_sweep_front_matches_brute_force_with_ties(seed) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 25)
    # few distinct values: many equal sizes, equal accuracies and identical points
    rows = [
        {"id": i, "bytes": rng.choice([100, 200, 300, 400]), "accuracy": rng.randint(0, 5) / 5}
        for i in range(n)
    ]
    front = pipeline.sweep_front(rows)
    want = _brute_front([(r["bytes"], r["accuracy"]) for r in rows])
    assert {r["id"] for r in front} == want
    keys = [(r["bytes"], -r["accuracy"], r["id"]) for r in front]
    assert keys == sorted(keys)  # smallest first; equal bytes: most accurate, then earlier
    # along the front, more bytes always buys more accuracy (identical points aside)
    for a, b in zip(front, front[1:], strict=False):
        assert (a["bytes"], a["accuracy"]) == (b["bytes"], b["accuracy"]) or (
            a["bytes"] < b["bytes"] and a["accuracy"] < b["accuracy"]
        )


@pytest.mark.parametrize("seed", range(40))
def test_choose_under_budget_matches_brute_force(seed) -> None:
    rng = random.Random(100 + seed)
    rows = [
        {
            "id": i,
            "bytes": rng.choice([100, 200, 300, 400]),
            "accuracy": rng.randint(300, 360) / 360,
        }
        for i in range(rng.randint(1, 20))
    ]
    budget, tol = rng.choice([50, 150, 250, 1000]), rng.choice([0.0, 1.0, 5.0])
    got = pipeline.choose_under_budget(rows, budget, tol)
    fits = [r for r in rows if r["bytes"] <= budget]
    if not fits:
        assert got is None
        return
    best = max(r["accuracy"] for r in fits)
    near = [r for r in fits if 100 * (best - r["accuracy"]) <= tol + 1e-9]
    want = min(near, key=lambda r: (r["bytes"], -r["accuracy"], r["id"]))
    assert got is want
    assert got["id"] in _brute_front([(r["bytes"], r["accuracy"]) for r in rows])


def test_choose_under_budget_budget_and_tolerance() -> None:
    rows = [
        {"bytes": 1000, "accuracy": 0.99},
        {"bytes": 500, "accuracy": 0.985},
        {"bytes": 500, "accuracy": 0.95},  # same size, less accurate: off the front
        {"bytes": 100, "accuracy": 0.90},
    ]
    assert pipeline.choose_under_budget(rows, 1000) is rows[0]
    assert pipeline.choose_under_budget(rows, 999) is rows[1]
    assert pipeline.choose_under_budget(rows, 1000, tolerance_points=1.0) is rows[1]
    assert pipeline.choose_under_budget(rows, 1000, tolerance_points=10.0) is rows[3]
    assert pipeline.choose_under_budget(rows, 99) is None


# ---- the sweep and its figure


def test_sweep_grid_sizes_and_determinism(digits_test) -> None:
    x, y = digits_test
    kw = {"widths": (4, 6), "ratios": (0.0, 0.5), "bits": (8, 4), "epochs": 1}
    rows = pipeline.sweep(_loader(), x, y, **kw)
    assert [(r["width"], r["ratio"], r["bits"]) for r in rows] == [
        (w, r, b) for w in (4, 6) for r in (0.0, 0.5) for b in (8, 4)
    ]
    by = {(r["width"], r["ratio"], r["bits"]): r for r in rows}
    for w in (4, 6):
        for r in (0.0, 0.5):
            assert by[w, r, 4]["bytes"] < by[w, r, 8]["bytes"]  # fewer bits, fewer bytes
        assert by[w, 0.5, 8]["bytes"] < by[w, 0.0, 8]["bytes"]  # the cut shrinks the model
    assert by[4, 0.0, 8]["bytes"] < by[6, 0.0, 8]["bytes"]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    again = pipeline.sweep(_loader(), x, y, **kw)
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in rows]


def test_sweep_figure_axes_front_and_choice() -> None:
    rows = [
        {"width": 8, "ratio": 0.0, "bits": 8, "accuracy": 0.9, "bytes": 1000},
        {"width": 8, "ratio": 0.0, "bits": 4, "accuracy": 0.95, "bytes": 500},
        {"width": 8, "ratio": 0.5, "bits": 4, "accuracy": 0.8, "bytes": 300},
    ]
    fig = pipeline.sweep_figure(rows, chosen=rows[1])
    assert "bytes" in fig.layout.xaxis.title.text and "%" in fig.layout.yaxis.title.text
    assert fig.layout.xaxis.type == "log"
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert list(front.x) == [300, 500]
    assert [t.name for t in fig.data][-1] == "chosen under the budget"


# ---- the order ablation


def test_both_quantisation_orders_give_the_same_architecture_and_bits() -> None:
    torch.manual_seed(0)
    base = models.cnn(width=8, depth=3)
    kw = {"ratio": 0.5, "bits": 4}
    a = pipeline.prune_then_quantise(base, _loader(), **kw)
    b = pipeline.quantise_then_prune(base, _loader(), **kw)
    fa, fb = pipeline.export_float(a), pipeline.export_float(b)
    assert _convs(fa) == _convs(fb) == [4, 8, 8]
    for m in (fa, fb):  # 4-bit per-channel grid: at most 15 levels per output channel
        w = m[0].weight.detach().flatten(1)
        assert all(len(torch.unique(row)) <= 15 for row in w)


def test_order_ablation_rows_table_and_verdict(digits_test) -> None:
    x, y = digits_test
    torch.manual_seed(1)
    teacher = models.cnn(width=4, depth=3).eval()
    rows = pipeline.order_ablation(
        teacher, _loader(), x, y, seeds=(0, 1), width=8, epochs=1, finetune_epochs=1
    )
    assert [(r["order"], r["seed"]) for r in rows] == [
        (o, s) for s in (0, 1) for o in pipeline.QUANT_ORDERS + pipeline.DISTIL_ORDERS
    ]
    table = {t["order"]: t for t in pipeline.order_table(rows)}
    q0, q1 = (table[o]["bytes"] for o in pipeline.QUANT_ORDERS)
    d0, d1 = (table[o]["bytes"] for o in pipeline.DISTIL_ORDERS)
    assert q0 == q1 and d0 == d1 and q0 < d0  # same cut and bits both ways; 4-bit < float32
    assert all(t["seeds"] == 2 and t["min"] <= t["mean"] <= t["max"] for t in table.values())
    assert "points" in pipeline.order_verdict(rows, *pipeline.QUANT_ORDERS)


def _rows(a, b):
    return [
        {"order": o, "seed": s, "accuracy": acc, "bytes": 10}
        for o, accs in (("A", a), ("B", b))
        for s, acc in enumerate(accs)
    ]


def test_order_verdict_says_no_difference_within_the_spread() -> None:
    text = pipeline.order_verdict(_rows([0.90, 0.95, 0.92], [0.93, 0.91, 0.94]), "A", "B")
    assert "no difference beyond the spread" in text
    clear = pipeline.order_verdict(_rows([0.95, 0.96, 0.97], [0.90, 0.91, 0.915]), "A", "B")
    assert clear.startswith("A is ") and "above B, beyond the spread" in clear
    below = pipeline.order_verdict(_rows([0.90, 0.91, 0.915], [0.95, 0.96, 0.97]), "A", "B")
    assert "below B" in below


def test_order_table_mean_and_sample_std() -> None:
    (a,) = pipeline.order_table(_rows([0.9, 0.95, 1.0], [])[:3])
    assert a["mean"] == pytest.approx(0.95) and a["std"] == pytest.approx(0.05)
    assert (a["min"], a["max"], a["bytes"]) == (0.9, 1.0, 10)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: pipeline.sweep_front([]), "rows"),
        (lambda: pipeline.sweep_front([{"bytes": 1}]), "accuracy"),
        (lambda: pipeline.sweep_front([{"bytes": float("nan"), "accuracy": 0.5}]), "bytes"),
        (lambda: pipeline.sweep_front([{"bytes": 1, "accuracy": 97.0}]), "fraction"),
        (lambda: pipeline.choose_under_budget([{"bytes": 1, "accuracy": 0.5}], -1), "max_bytes"),
        (
            lambda: pipeline.choose_under_budget([{"bytes": 1, "accuracy": 0.5}], 10, -1),
            "tolerance_points",
        ),
        (lambda: pipeline.sweep(_loader(), torch.zeros(4, 1, 8, 8), torch.zeros(3)), "y must"),
        (
            lambda: pipeline.sweep(_loader(), torch.zeros(4, 1, 8, 8), torch.zeros(4), bits=(1,)),
            "bits",
        ),
        (
            lambda: pipeline.sweep(
                _loader(), torch.zeros(4, 1, 8, 8), torch.zeros(4), ratios=(1.0,)
            ),
            "ratios",
        ),
        (
            lambda: pipeline.sweep(_loader(), torch.zeros(4, 1, 8, 8), torch.zeros(4), widths=()),
            "widths",
        ),
        (
            lambda: pipeline.order_ablation(
                "t.pt", _loader(), torch.zeros(4, 1, 8, 8), torch.zeros(4)
            ),
            "teacher",
        ),
        (
            lambda: pipeline.order_ablation(
                models.cnn(4), _loader(), torch.zeros(4, 1, 8, 8), torch.zeros(4), seeds=()
            ),
            "seeds",
        ),
        (lambda: pipeline.order_table([]), "rows"),
        (lambda: pipeline.order_table([{"order": "A"}]), "order_ablation"),
        (lambda: pipeline.order_verdict(_rows([0.9], [0.8]), "A", "C"), "'C'"),
        (
            lambda: pipeline.order_table([*_rows([0.9], []), {**_rows([0.8], [])[0], "bytes": 11}]),
            "sizes",
        ),
    ],
)
def test_sweep_and_ablation_bad_input(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ---- the transformer variant


def test_transformer_stages_sizes_sparsity_and_untouched_model(digits_test) -> None:
    x, y = digits_test
    from labkit import deploy

    torch.manual_seed(0)
    model = deploy.digit_transformer(d_model=16, heads=2, depth=1).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = pipeline.transformer_stages(model, _loader(), x, y, bits=(8, 4), sparsity=0.5)
    assert [r["stage"] for r in rows] == [
        "FP32", "PTQ 8-bit", "PTQ 4-bit", "50 % pruned + fine-tuned",
        "50 % pruned + fine-tuned + PTQ 8-bit",
    ]  # fmt: skip
    b = {r["stage"]: r["bytes"] for r in rows}
    assert b["PTQ 4-bit"] < b["PTQ 8-bit"] < b["FP32"] == b["50 % pruned + fine-tuned"]
    nz = [r["nonzero weights"] for r in rows]
    assert nz[0] == nz[1] == nz[2] and nz[3] == nz[4] and abs(nz[3] - nz[0] / 2) <= 10
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="bits"):
        pipeline.transformer_stages(model, _loader(), x, y, bits=(16,))
    with pytest.raises(ValueError, match="sparsity"):
        pipeline.transformer_stages(model, _loader(), x, y, sparsity=1.0)
