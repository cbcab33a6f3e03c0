"""A real Pareto sweep: width x prune ratio x bits, and the choice under a size budget.

Every grid point runs the capstone's own steps on a cheap model:

    models.cnn(width) trained (CE) --prune_and_finetune(ratio)--> float m --static PTQ(bits)-->
    point {"width", "ratio", "bits", "accuracy" (test fraction), "bytes" = qat.size_bytes(m, bits)}

(ratio 0 skips the cut; bits 32 is the float model itself). A point is on the front when no
other point is at most as large and at least as accurate, and strictly better in one:

    j dominates i  <=>  bytes_j <= bytes_i, acc_j >= acc_i, (bytes_j < bytes_i or acc_j > acc_i)

Identical points dominate neither each other, so both stay. Under a size budget B, the choice
is the front's most accurate point with bytes <= B, or, with a tolerance of t points (accuracy
measured on a few hundred images moves by noise), the smallest front point within t of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from labkit import qat
from labkit.core import bench, models, train
from labkit.core.errors import check_int, check_loader, check_nonempty, check_number, check_tensor
from labkit.pipeline.lesson import prune_and_finetune


def sweep(
    loader: DataLoader,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    widths: Sequence[int] = (8, 16, 24),
    ratios: Sequence[float] = (0.0, 0.25, 0.5),
    bits: Sequence[int] = (8, 4, 3),
    epochs: int = 3,
    finetune_epochs: int = 1,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per (width, ratio, bits), in that nesting order: a seeded models.cnn(width) is
    trained with cross-entropy once per width (short: the sweep is about the shape of the
    front, not the last point of accuracy), cut once per (width, ratio), then quantised with static PTQ (4 calibration
    batches of ``loader``) per bits. x (N, 1, 8, 8), y (N,): the test split.
    Taught in notebooks/13_capstone_pipeline.ipynb, "11. A real Pareto sweep: width × prune ratio × bits".
    """
    _check_sweep(loader, x, y, widths, ratios, bits, epochs, finetune_epochs)
    calib = qat.calibration_batches(loader, 4)
    rows = []
    for w in widths:
        torch.manual_seed(seed)
        base = models.cnn(width=w, depth=3)
        train.fit(base, loader, epochs=epochs, lr=3e-3)
        for r in ratios:
            m = base if r == 0 else prune_and_finetune(base, loader, ratio=r, epochs=finetune_epochs, seed=seed)  # fmt: skip
            for b in bits:
                q = m if b == 32 else qat.static_ptq(m, calib, b)
                with torch.inference_mode():
                    acc = train.accuracy(q.eval(), x, y)
                rows.append({
                    "width": w, "ratio": r, "bits": b, "accuracy": acc,
                    "bytes": qat.size_bytes(m, b),
                })  # fmt: skip
    return rows


def sweep_front(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows on the size-accuracy Pareto front (bytes minimised, accuracy maximised),
    smallest first (equal bytes: most accurate first, then the earlier row); identical rows
    all stay. labkit.bench.pareto_front on the (bytes, accuracy) pairs.
    Taught in notebooks/13_capstone_pipeline.ipynb, "11. A real Pareto sweep: width × prune ratio × bits".
    """
    _check_rows(rows)
    return [rows[i] for i in bench.pareto_front([(r["bytes"], r["accuracy"]) for r in rows])]


def choose_under_budget(
    rows: Sequence[Mapping[str, Any]], max_bytes: float, tolerance_points: float = 0.0
) -> Mapping[str, Any] | None:
    """The point to ship under a size budget, or None when no point fits:

    fits = front rows with bytes <= max_bytes;  best = max accuracy in fits;
    choice = the smallest row of fits with 100 * (best - accuracy) <= tolerance_points
    (equal bytes: the earlier row). With tolerance 0 that is the most accurate row that fits.
    Taught in notebooks/13_capstone_pipeline.ipynb, "11. A real Pareto sweep: width × prune ratio × bits".
    """
    _check_budget(max_bytes, tolerance_points)
    fits = [r for r in sweep_front(rows) if r["bytes"] <= max_bytes]  # smallest first
    if not fits:
        return None
    best = max(r["accuracy"] for r in fits)
    return next(r for r in fits if 100 * (best - r["accuracy"]) <= tolerance_points + 1e-9)


def sweep_figure(rows: Sequence[Mapping[str, Any]], chosen: Mapping[str, Any] | None = None) -> Any:
    """Plotly scatter of the sweep: x = model size (bytes, log axis), y = test accuracy (%),
    one colour per bit width, the front joined by a line, ``chosen`` circled.
    Taught in notebooks/13_capstone_pipeline.ipynb, "11. A real Pareto sweep: width × prune ratio × bits".
    """
    _check_figure(rows, chosen)
    front = sweep_front(rows)
    import plotly.graph_objects as go

    fig = go.Figure()
    for b in sorted({r["bits"] for r in rows}, reverse=True):
        rs = [r for r in rows if r["bits"] == b]
        fig.add_scatter(
            x=[r["bytes"] for r in rs],
            y=[100 * r["accuracy"] for r in rs],
            mode="markers",
            name=f"{b}-bit weights",
            text=[f"width {r['width']}, ratio {r['ratio']}, {b} bits" for r in rs],
            hovertemplate="%{text}<br>%{x:,} bytes, %{y:.2f} %<extra></extra>",
        )
    fig.add_scatter(
        x=[r["bytes"] for r in front],
        y=[100 * r["accuracy"] for r in front],
        mode="lines+markers",
        line={"dash": "dot", "color": "black"},
        marker={"symbol": "diamond-open", "size": 12, "color": "black"},
        name="Pareto front",
    )
    if chosen is not None:
        fig.add_scatter(
            x=[chosen["bytes"]],
            y=[100 * chosen["accuracy"]],
            mode="markers",
            marker={"symbol": "circle-open", "size": 22, "color": "red", "line": {"width": 3}},
            name="chosen under the budget",
        )
    fig.update_layout(
        title="Sweep: accuracy vs model size (front = nothing smaller is as accurate)",
        xaxis_title="model size: weights at their bits + scales + float biases (bytes, log scale)",
        yaxis_title="test accuracy (%)",
        template="plotly_white",
    )
    fig.update_xaxes(type="log")
    return fig


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_sweep(
    loader: object, x: object, y: object, widths: object, ratios: object, bits: object,
    epochs: object, finetune_epochs: object,
) -> None:  # fmt: skip
    check_loader(loader)
    check_nonempty(check_tensor(x, "x", ndim=4), "x")
    if not isinstance(y, torch.Tensor) or y.shape != (len(x),):  # type: ignore[arg-type]
        raise ValueError("y must be a tensor with one label per image of x.")
    for name, vals in (("widths", widths), ("ratios", ratios), ("bits", bits)):
        check_nonempty(vals, name)
    for i, w in enumerate(widths):  # type: ignore[arg-type]
        check_int(w, f"widths[{i}] (a models.cnn width)", low=1, high=1024)
    check_int(epochs, "epochs", low=1, high=1000)
    check_int(finetune_epochs, "finetune_epochs", low=1, high=100)
    for r in ratios:  # type: ignore[union-attr]
        check_number(r, "ratios[i] (the fraction of channels to remove)", low=0, high=0.9)
    for b in bits:  # type: ignore[union-attr]
        if b != 32 and not (isinstance(b, int) and 2 <= b <= 8):
            raise ValueError(f"bits must be integers in 2..8 or 32 (float), got {b!r}.")


def _check_rows(rows: object, name: str = "rows") -> None:
    """Points of the sweep: each a mapping with numeric 'bytes' and 'accuracy' (``name`` for one)."""
    many = name == "rows"
    for i, r in enumerate(check_nonempty(rows, "rows (the sweep's points)")):
        what = f"rows[{i}]" if many else name
        if not isinstance(r, Mapping) or "bytes" not in r or "accuracy" not in r:
            raise ValueError(f"{what} needs 'bytes' and 'accuracy' (a row of pipeline.sweep).")
        check_number(r["bytes"], f"{what}['bytes']", low=0)
        check_number(r["accuracy"], f"{what}['accuracy'] (a fraction)", low=0, high=1)
        if math.isnan(r["bytes"]) or math.isnan(r["accuracy"]):
            raise ValueError(f"{what} has a NaN: it would slip onto the front.")


def _check_figure(rows: object, chosen: object) -> None:
    """The sweep's rows (with width, ratio and bits for the labels) and the chosen row or None."""
    _check_rows(rows)
    for i, r in enumerate(rows):  # type: ignore[arg-type]
        if not {"width", "ratio", "bits"} <= set(r):
            raise ValueError(
                f"rows[{i}] needs 'width', 'ratio' and 'bits' (a row of pipeline.sweep)."
            )
    if chosen is not None:
        _check_rows([chosen], "chosen (a row of the sweep, e.g. choose_under_budget's)")


def _check_budget(max_bytes: object, tolerance_points: object) -> None:
    check_number(max_bytes, "max_bytes", low=0)
    check_number(tolerance_points, "tolerance_points (accuracy points, e.g. 0.5)", low=0)
