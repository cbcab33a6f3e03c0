"""Exercises of notebook 09 (ONNX and TensorRT): a calibration reader and a parity check.

"deploy.calibration_reader" re-implements labkit.onnx.calibration_reader (core: notebook 06's
quantisers use it too); "deploy.parity_check" is a tuple-returning deploy.parity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from labkit.core.checks import Case, Exercise, close
from labkit.core.onnx import calibration_reader  # core (06 uses it); 09's learner writes it
from labkit.deploy.runtime import parity


def _drain(reader: Any, limit: int = 100) -> list[Any]:
    items = []
    for _ in range(limit):
        item = reader.get_next()
        if item is None:
            return items
        items.append(item)
    raise ValueError(f"get_next() never returned None after {limit} calls")


def _check_reader(learner: Callable[..., Any]) -> str | None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(70, 1, 8, 8, generator=gen)
    for xs, label in ((x, "a float32 tensor"), (x.double(), "a float64 tensor")):
        reader = learner(xs, "inp", 32)
        if not callable(getattr(reader, "get_next", None)):
            return "the reader needs a get_next() method (subclass CalibrationDataReader)"
        try:
            items = _drain(reader)
        except ValueError as exc:
            return str(exc) + ": return None when the batches run out"
        if len(items) != 3:
            return (
                f"70 examples in batches of 32 should give 3 batches (32, 32, 6), got {len(items)}"
            )
        for i, item in enumerate(items):
            if not isinstance(item, dict) or list(item) != ["inp"]:
                return f"batch {i} must be a dict {{input_name: array}}, got {type(item).__name__} {item if not isinstance(item, dict) else list(item)}"
            arr = item["inp"]
            if not isinstance(arr, np.ndarray):
                return (
                    f"batch {i} must be a NumPy array (ORT feeds NumPy), got {type(arr).__name__}"
                )
            if arr.dtype != np.float32:
                return f"with {label} the batches must be float32 (the model's input type), got {arr.dtype}"
            want = x[i * 32 : (i + 1) * 32].numpy()
            if arr.shape != want.shape or not np.allclose(arr, want, atol=1e-6):
                return f"batch {i} should be x[{i * 32}:{(i + 1) * 32}] (shape {want.shape}), got shape {arr.shape} or other values"
        if reader.get_next() is not None:
            return "after the last batch, get_next() must keep returning None"
    return None


def parity_check(
    expected: torch.Tensor | np.ndarray,
    got: torch.Tensor | np.ndarray,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> tuple[float, bool]:
    """Reference: (max |got - expected|, all |got - expected| <= atol + rtol * |expected|)."""
    r = parity(expected, got, atol, rtol)
    return r["max_abs_diff"], r["ok"]


def _parity_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    e = torch.randn(4, 10, generator=gen)
    off = e.clone()
    off[2, 3] += 0.1
    big = 1000 * torch.ones(3, 5)
    nan = e.clone()
    nan[0, 0] = float("nan")
    return [
        Case((e, e.clone()), label="identical outputs"),
        Case((e, (e + 5e-5).numpy()), label="ORT-style NumPy output within atol"),
        Case((e, off), label="one logit off by 0.1"),
        Case((e, e - 0.1), label="got smaller than expected (negative differences)"),
        Case((big, big + 0.5), label="large logits (1000) off by 0.5: inside rtol * |expected|"),
        Case((torch.zeros(2, 3), torch.full((2, 3), 2e-4)), label="zeros vs 2e-4: outside atol"),
        Case((e, nan), label="a NaN in got"),
        Case((e, e + 0.01), {"atol": 0.02, "rtol": 0.0}, label="custom atol=0.02, rtol=0"),
        Case(
            (torch.ones(2, 2), torch.full((2, 2), 1.8)),
            {"atol": 0.0, "rtol": 0.5},
            label="rtol scales |expected| (1.0), not |got| (1.8): 0.8 > 0.5 is outside",
        ),
        Case(
            (torch.zeros(3), torch.full((3,), 0.25)),
            {"atol": 0.25, "rtol": 0.0},
            label="a difference exactly equal to atol is inside (<=, not <)",
        ),
        Case(
            (torch.tensor([1000.0, 0.0]), torch.tensor([1000.0, 0.5])),
            label="a large logit must not loosen the tolerance of a small one (elementwise)",
        ),
    ]


EXERCISES = {
    "deploy.calibration_reader": Exercise(
        reference=calibration_reader,
        custom=_check_reader,
        hint="Prepare every batch in __init__ and keep a position; get_next hands out the next "
        "one. Check the last partial batch, the dtype ORT expects, and what happens at the end.",
        formula="batches = [a[i : i + batch_size] for i in range(0, len(a), batch_size)] with "
        "a = x.numpy().astype(np.float32); get_next: {input_name: batches[pos]}, pos += 1, "
        "None once pos == len(batches).",
    ),
    # Learner-only: a tuple-returning version of deploy.parity (which returns a dict); allow-listed
    # in tests/test_exercise_keys.py.
    "deploy.parity_check": Exercise(
        reference=parity_check,
        cases=_parity_cases,
        compare=close(atol=1e-9, rtol=1e-6),
        hint="Compare element by element, in absolute value, with the tolerance of that "
        "element; think about which side rtol multiplies, about <= vs <, and about NaN.",
        formula="diff = |got - expected| (float64); max_abs_diff = diff.max(); "
        "ok = all(diff <= atol + rtol * |expected|), and NaN compares False.",
    ),
}
