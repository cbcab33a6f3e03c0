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

# (examples, batch_size, input_name, dtype, call): every parameter a reader could hard-code
# varies: batch sizes other than 32, N a multiple of the batch size (no empty last batch), a
# batch larger than N (one partial batch), batch_size=1 (many batches), names other than "x",
# float64 input, and a call by keyword.
READER_CASES = (
    (70, 32, "inp", torch.float32, "positional"),  # 32, 32, 6: a last partial batch
    (70, 32, "inp", torch.float64, "positional"),  # float64 in, float32 out
    (48, 16, "pixels", torch.float32, "positional"),  # 16, 16, 16: N a multiple of batch_size
    (5, 8, "input.1", torch.float32, "positional"),  # one batch of 5 < batch_size
    (9, 1, "x", torch.float32, "positional"),  # nine batches of one
    (25, 10, "images", torch.float64, "keyword"),  # 10, 10, 5, called with keywords
)


def _describe_case(n: int, batch_size: int, name: str, dtype: torch.dtype, call: str) -> str:
    how = "keywords" if call == "keyword" else "positional arguments"
    return (
        f"{n} examples ({str(dtype).replace('torch.', '')}), batch_size={batch_size}, "
        f"input_name={name!r} (passed as {how})"
    )


def _next(reader: Any) -> tuple[Any, str | None]:
    """(reader.get_next(), None), or (None, what went wrong) when the learner's get_next raises."""
    try:
        return reader.get_next(), None
    except Exception as exc:  # the learner's get_next: report it, never raise
        return None, f"get_next() raised {type(exc).__name__}: {exc}"


def _drain(reader: Any, limit: int) -> list[Any] | str:
    """Every item get_next() gives before None, or a message saying what went wrong."""
    items = []
    for _ in range(limit):
        item, error = _next(reader)
        if error or item is None:
            return error or items
        items.append(item)
    return f"get_next() never returned None after {limit} calls: return None when they run out"


def _sizes(items: list[Any]) -> list[Any]:
    """Rows in each item's (first) array, '?' where there is none."""
    firsts = [next(iter(i.values()), None) if isinstance(i, dict) else i for i in items]
    return [len(a) if hasattr(a, "__len__") else "?" for a in firsts]


def _check_reader(learner: Callable[..., Any]) -> str | None:
    gen = torch.Generator().manual_seed(0)
    for n, batch_size, name, dtype, call in READER_CASES:
        x = torch.randn(n, 1, 8, 8, generator=gen).to(dtype)
        case = _describe_case(n, batch_size, name, dtype, call)
        want = [b[name] for b in _drain(calibration_reader(x, name, batch_size), n + 2)]
        if call == "keyword":
            reader = learner(x.clone(), input_name=name, batch_size=batch_size)
        else:
            reader = learner(x.clone(), name, batch_size)
        if not callable(getattr(reader, "get_next", None)):
            return "the reader needs a get_next() method (subclass CalibrationDataReader)"
        items = _drain(reader, n + 5)  # at most n non-empty batches: more means no end
        if isinstance(items, str):
            return f"with {case}: {items}"
        if len(items) != len(want):
            return (
                f"with {case}: expected {len(want)} batches of sizes {_sizes(want)}, "
                f"got {len(items)} of sizes {_sizes(items)}"
            )
        for i, (item, expected) in enumerate(zip(items, want, strict=True)):
            if not isinstance(item, dict) or list(item) != [name]:
                keys = list(item) if isinstance(item, dict) else type(item).__name__
                return f"with {case}: batch {i} must be a dict {{{name!r}: array}}, got {keys}"
            arr = item[name]
            if not isinstance(arr, np.ndarray):
                return (
                    f"with {case}: batch {i} must be a NumPy array (ORT feeds NumPy), "
                    f"got {type(arr).__name__}"
                )
            if arr.dtype != np.float32:
                return (
                    f"with {case}: batch {i} must be float32 (the model's input type), "
                    f"got {arr.dtype}"
                )
            lo, hi = i * batch_size, i * batch_size + len(expected)
            if arr.shape != expected.shape or not np.allclose(arr, expected, atol=1e-6):
                return (
                    f"with {case}: batch {i} should be x[{lo}:{hi}] (shape {expected.shape}), "
                    f"got shape {arr.shape} or other values"
                )
        after, error = _next(reader)
        if error or after is not None:
            return f"with {case}: after the last batch, get_next() must keep returning None"
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
        "one. Use the batch_size and input_name you are given, keep the last partial batch "
        "(and no empty one), give ORT the dtype it expects, and think about what happens at the end.",
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
