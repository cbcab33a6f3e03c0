"""Exercise checker: ``my_fn = labkit.checks.exercise("quant.quantize", my_fn)``.

Each exercise is an ``Exercise`` in ``labkit/exercises/<topic>.py`` (key "<topic>.<name>"):
a reference implementation plus test cases (edge cases included). The checker runs the
learner's function on every case against the reference and prints

- ✅ when every case matches,
- ❌ with the failing case, expected vs got, and a hint, when one does not,
- 📝 "not attempted yet" when the function still raises NotImplementedError.

It never raises on a learner's bug. It returns the learner's function when it passed,
otherwise the reference, so the rest of the notebook still runs (and says so).
"""

from __future__ import annotations

import copy
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

Compare = Callable[[Any, Any], "str | None"]


@dataclass(frozen=True)
class Case:
    """One call: fn(*args, **kwargs); ``label`` says what the case tests."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""


def close(atol: float = 1e-5, rtol: float = 1e-4) -> Compare:
    """Compare numbers, tensors, arrays and nested tuples/lists/dicts of them."""

    def compare(got: Any, expected: Any) -> str | None:
        return _compare(got, expected, atol, rtol)

    return compare


@dataclass(frozen=True)
class Exercise:
    """A reference, the cases that test it, how to compare, and a hint for a wrong answer.

    ``custom`` replaces the case loop for exercises whose answer is not a value (e.g. a
    timing function): it receives the learner's function and returns None when it passes,
    else the message to show.
    """

    reference: Callable[..., Any]
    cases: Callable[[], list[Case]] = lambda: []
    compare: Compare = field(default_factory=close)
    hint: str = ""
    custom: Callable[[Callable[..., Any]], str | None] | None = None


@dataclass(frozen=True)
class Result:
    passed: bool
    attempted: bool
    message: str


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        flat = x.detach().flatten()[:6].tolist()
        more = ", ..." if x.numel() > 6 else ""
        return f"tensor(shape={tuple(x.shape)}, dtype={x.dtype}, values={flat}{more})"
    if isinstance(x, np.ndarray):
        return f"array(shape={x.shape}, dtype={x.dtype}, values={x.ravel()[:6].tolist()})"
    text = repr(x)
    return text if len(text) < 200 else text[:200] + "..."


def _compare(got: Any, expected: Any, atol: float, rtol: float) -> str | None:
    if isinstance(expected, torch.Tensor | np.ndarray):
        if not isinstance(got, torch.Tensor | np.ndarray):
            return f"expected a {type(expected).__name__}, got {type(got).__name__}"
        g = torch.as_tensor(np.asarray(got) if isinstance(got, np.ndarray) else got.detach())
        e = torch.as_tensor(
            np.asarray(expected) if isinstance(expected, np.ndarray) else expected.detach()
        )
        if g.shape != e.shape:
            return f"shape {tuple(g.shape)} but expected {tuple(e.shape)}"
        if g.dtype.is_floating_point != e.dtype.is_floating_point:
            return f"dtype {g.dtype} but expected {e.dtype}"
        if not torch.allclose(g.double(), e.double(), atol=atol, rtol=rtol, equal_nan=True):
            worst = (g.double() - e.double()).abs().nan_to_num(float("inf")).max().item()
            return f"values differ (largest difference {worst:.3g})"
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"expected a dict with keys {sorted(expected)}, got {_describe(got)}"
        for k in expected:
            msg = _compare(got[k], expected[k], atol, rtol)
            if msg:
                return f"[{k!r}]: {msg}"
        return None
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            return f"expected {len(expected)} items, got {_describe(got)}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            msg = _compare(g, e, atol, rtol)
            if msg:
                return f"item {i}: {msg}"
        return None
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return None if got == expected else "not equal"
    if isinstance(expected, int | float):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, int | float | np.number):
            return f"expected a number, got {type(got).__name__}"
        ok = math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol) or (
            math.isnan(float(got)) and math.isnan(float(expected))
        )
        return None if ok else "not equal"
    return None if got == expected else "not equal"


def lookup(key: str) -> Exercise:
    """The Exercise registered under ``key`` ("<topic>.<name>" -> labkit/exercises/<topic>.py)."""
    topic = key.split(".", 1)[0]
    try:
        module = importlib.import_module(f"labkit.exercises.{topic}")
        return module.EXERCISES[key]
    except (ModuleNotFoundError, KeyError, AttributeError):
        raise ValueError(
            f"no exercise named {key!r}; check the spelling in the notebook."
        ) from None


def check(key: str, fn: Callable[..., Any]) -> Result:
    """Run ``fn`` against the reference of exercise ``key``; never raises on a learner's bug."""
    ex = lookup(key)
    try:
        if ex.custom is not None:
            msg = ex.custom(fn)
            if msg:
                return Result(
                    False, True, f"❌ {key}: {msg}" + (f"\n   Hint: {ex.hint}" if ex.hint else "")
                )
            return Result(True, True, f"✅ {key}: correct.")
        cases = ex.cases()
        for i, case in enumerate(cases):
            expected = ex.reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            got = fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            msg = (
                "returned None - did you forget `return`?"
                if got is None and expected is not None
                else None
            )
            msg = msg or ex.compare(got, expected)
            if msg:
                label = case.label or f"case {i + 1}"
                text = (
                    f"❌ {key}: wrong on {label}: {msg}.\n"
                    f"   expected {_describe(expected)}\n   got      {_describe(got)}"
                )
                if ex.hint:
                    text += f"\n   Hint: {ex.hint}"
                return Result(False, True, text)
        return Result(True, True, f"✅ {key}: correct on all {len(cases)} cases.")
    except NotImplementedError:
        return Result(False, False, f"📝 {key}: not attempted yet.")
    except Exception as exc:  # a learner's bug: report it, never raise
        return Result(False, True, f"❌ {key}: your function raised {type(exc).__name__}: {exc}")


def exercise(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check ``fn``, print the verdict, and return what the notebook should use next."""
    result = check(key, fn)
    print(result.message)
    if result.passed:
        return fn
    print("   The notebook goes on with the reference solution for now.")
    return lookup(key).reference


# ------------------------------------------------ tolerance checks for measured numbers
def expect(label: str, value: float, low: float, high: float) -> bool:
    """Assert ``low <= value <= high`` and print one line that is the same on every machine.

    Measured numbers (accuracy, loss, errors, ratios) differ in their last digits between
    CPUs and torch versions, so notebooks print them in output-ignored cells and check them
    here: the printed line ``✓ label in [low, high]`` is what nbval compares. The range must
    be able to fail: choose it from measurements (instruction sets, seeds, thread counts).
    """
    if not low <= high:
        raise ValueError(f"expect({label!r}): low={low} must be <= high={high}.")
    v = float(value)
    if not (low <= v <= high):  # NaN fails too
        raise AssertionError(
            f"{label} = {v:.6g} is outside the expected range [{low:g}, {high:g}]. "
            "If you changed the code above, that is the effect; otherwise please report it "
            "with the output of `python -m labkit doctor`."
        )
    print(f"✓ {label} in [{low:g}, {high:g}]")
    return True
