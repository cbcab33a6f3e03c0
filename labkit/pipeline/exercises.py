"""Exercises of notebook 13 (capstone pipeline): read a stage table and a sweep like a deployer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labkit import pipeline
from labkit.core.checks import Case, Exercise, close


def compression_summary(
    base: Mapping[str, float], row: Mapping[str, float], latency_key: str = "ms_b1"
) -> dict[str, float]:
    """Reference: {"smaller", "faster", "accuracy_drop_points"} of ``row`` against ``base``."""
    return pipeline.compression_summary(base, row, latency_key)


def pick_stage(
    rows: Sequence[Mapping[str, Any]], max_bytes: float, max_ms: float, latency_key: str = "ms_b1"
) -> Mapping[str, Any] | None:
    """Reference: the most accurate row within both budgets (ties: fewer bytes), else None."""
    return pipeline.pick_stage(rows, max_bytes, max_ms, latency_key)


def choose_under_budget(
    rows: Sequence[Mapping[str, Any]], max_bytes: float, tolerance_points: float = 0.0
) -> Mapping[str, Any] | None:
    """Reference: the smallest front row that fits within tolerance of the best that fits."""
    return pipeline.choose_under_budget(rows, max_bytes, tolerance_points)


def _row(stage: str, acc: float, nbytes: int, b1: float, b32: float) -> dict[str, Any]:
    return {"stage": stage, "accuracy": acc, "bytes": nbytes, "ms_b1": b1, "ms_b32": b32}


TEACHER = _row("teacher", 0.9917, 272_103, 1.20, 16.0)
TABLE = [
    TEACHER,
    _row("student", 0.9944, 164_327, 0.80, 11.0),
    _row("pruned", 0.9861, 54_055, 0.50, 6.0),
    _row("qat (simulated)", 0.9889, 52_595, 12.0, 16.5),
    _row("onnx fp32", 0.9889, 51_300, 0.28, 0.70),
    _row("onnx int8", 0.9861, 20_926, 0.18, 0.65),
]


def _summary_cases() -> list[Case]:
    return [
        Case((TEACHER, TABLE[-1]), label="teacher vs the INT8 model (batch 1)"),
        Case((TEACHER, TABLE[2]), {"latency_key": "ms_b32"}, label="latency_key='ms_b32'"),
        Case(
            (TEACHER, _row("better", 0.9972, 20_000, 0.2, 0.6)),
            label="a row MORE accurate than the base: the drop is negative",
        ),
        Case((TEACHER, TEACHER), label="a row against itself: 1x, 1x, 0 points"),
        Case((TABLE[4], TABLE[5]), label="ONNX FP32 as the base"),
    ]


def _pick_cases() -> list[Case]:
    tie = [
        _row("a", 0.98, 30_000, 0.3, 1.0),
        _row("b", 0.98, 20_000, 0.3, 1.0),
        _row("c", 0.97, 10_000, 0.1, 0.5),
    ]
    edge = [_row("on the budget", 0.99, 50_000, 0.5, 2.0), _row("small", 0.97, 10_000, 0.1, 0.5)]
    return [
        Case((TABLE, 60_000, 1.0), label="60 kB and 1 ms at batch 1"),
        Case((TABLE, 200_000, 1.0), label="200 kB and 1 ms: the student is the most accurate"),
        Case((TABLE, 30_000, 1.0), label="30 kB: only the INT8 file is small enough"),
        Case((TABLE, 60_000, 0.2), label="0.2 ms at batch 1: only the INT8 model is fast enough"),
        Case((TABLE, 10_000, 10.0), label="nothing fits 10 kB: return None"),
        Case((edge, 50_000, 0.5), label="a row exactly on both budgets fits (<=)"),
        Case((TABLE, 60_000, 0.68), {"latency_key": "ms_b32"}, label="latency_key='ms_b32'"),
        Case((tie, 50_000, 1.0), label="equal accuracy: the smaller file wins"),
    ]


def _pt(name: str, correct: int, nbytes: int) -> dict[str, Any]:
    """A sweep point: ``correct`` of 360 test images right (accuracies on the 1/360 grid)."""
    return {"name": name, "accuracy": correct / 360, "bytes": nbytes}


SWEEP = [
    _pt("w24 r0 b8", 356, 40_072),
    _pt("w24 r0.5 b8", 355, 12_316),
    _pt("w16 r0.25 b4", 354, 6_454),
    _pt("w24 r0.5 b4", 352, 6_454),  # same bytes, less accurate: off the front
    _pt("w16 r0 b8", 350, 19_840),  # larger and less accurate than w24 r0.5 b8: off the front
    _pt("w8 r0 b4", 345, 3_476),
    _pt("w8 r0.5 b3", 310, 1_090),
]


def _choose_cases() -> list[Case]:
    ties = [_pt("a", 340, 5_000), _pt("b", 340, 5_000), _pt("c", 330, 2_000)]
    return [
        Case((SWEEP, 20_000), label="20 kB: the most accurate point that fits"),
        Case((SWEEP, 100_000), label="a budget everything fits: the most accurate point"),
        Case((SWEEP, 7_000), label="7 kB: two points of 6,454 bytes, the more accurate one"),
        Case((SWEEP, 12_316), label="a point exactly on the budget fits (<=)"),
        Case((SWEEP, 1_000), label="nothing fits 1 kB: return None"),
        Case((SWEEP, 20_000, 1.0), label="tolerance 1 point: the smallest within 1 point"),
        Case((SWEEP, 100_000, 3.0), label="tolerance 3 points (points, not a fraction)"),
        Case((SWEEP, 3_000, 5.0), label="only the smallest fits, tolerance or not"),
        Case((ties, 6_000), label="two identical points: the earlier row"),
    ]


EXERCISES = {
    "pipeline.compression_summary": Exercise(
        reference=compression_summary,
        cases=_summary_cases,
        compare=close(atol=1e-9, rtol=1e-6),
        hint="Both ratios are > 1 when the row is better than the base; the drop is in "
        "percentage points, with a sign (a more accurate row has a negative drop). Use the "
        "latency column the caller names.",
        formula="smaller = base['bytes'] / row['bytes']; faster = base[latency_key] / "
        "row[latency_key]; accuracy_drop_points = 100 * (base['accuracy'] - row['accuracy']).",
    ),
    "pipeline.pick_stage": Exercise(
        reference=pick_stage,
        cases=_pick_cases,
        hint="Filter first (both budgets, and a row exactly on a budget fits), then choose; "
        "think about equal accuracies and about a budget that nothing fits.",
        formula="fits = [r for r in rows if r['bytes'] <= max_bytes and r[latency_key] <= max_ms]; "
        "return max(fits, key=lambda r: (r['accuracy'], -r['bytes'])) if fits else None.",
    ),
    "pipeline.choose_under_budget": Exercise(
        reference=choose_under_budget,
        cases=_choose_cases,
        hint="Keep the rows with bytes <= max_bytes; find the best accuracy among them; then "
        "take the SMALLEST row whose accuracy is within tolerance_points (percentage points) "
        "of that best. Equal bytes: the more accurate row is on the front, the other is not.",
        formula="fits = [r for r in rows if r['bytes'] <= max_bytes]; best = max accuracy of "
        "fits; choice = min over fits with 100 * (best - r['accuracy']) <= tolerance_points of "
        "(r['bytes'], -r['accuracy'], row index); None when fits is empty.",
    ),
}
