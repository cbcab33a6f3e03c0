"""Exercise checker: ``my_fn = labkit.checks.exercise("quant.quantize", my_fn)``.

Each exercise is an ``Exercise`` in ``labkit/<topic>/exercises.py`` (key "<topic>.<name>"):
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

from labkit.core import progress
from labkit.core.paths import ROOT, SOLUTIONS

LABKIT = ROOT / "labkit"

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
    hint: str = ""  # first miss: a nudge that does not give the answer away
    formula: str = ""  # second miss: the formula or the key line
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
    """The Exercise registered under ``key`` ("<topic>.<name>") in a chapter's exercises.py.

    Found in labkit/<topic>/exercises.py, or in the one chapter package whose exercises.py
    registers the key (chapter 00's "bench.*" keys live in labkit/measure/exercises.py).
    """
    topic = key.split(".", 1)[0]
    candidates = sorted(LABKIT.glob("*/exercises.py"), key=lambda p: p.parent.name != topic)
    for path in candidates:
        if path.parent.name == topic or f'"{key}"' in path.read_text():
            module = importlib.import_module(f"labkit.{path.parent.name}.exercises")
            if key in getattr(module, "EXERCISES", {}):
                return module.EXERCISES[key]
    raise ValueError(f"key {key!r} names no exercise; check the spelling in the notebook.")


class _Lent:
    """The reference, lent to the notebook after a miss so later cells still run.

    It is marked and keeps the learner's own function: passing it back to the checker
    (re-running only the checker cell) checks the learner's function again, so a second miss
    counts (the hint grows) and an exercise that was not written never prints ✅.
    """

    def __init__(
        self, key: str, reference: Callable[..., Any], learner: Callable[..., Any]
    ) -> None:
        self.key, self.reference, self.learner = key, reference, learner
        self.__name__ = getattr(reference, "__name__", key)
        self.__doc__ = reference.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.reference(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<reference solution of {self.key!r}, lent by labkit.checks>"


class _Raised(Exception):
    """An exception raised inside the learner's function (not in the checker's own code)."""

    @staticmethod
    def watch(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except NotImplementedError:
                raise
            except Exception as exc:
                raise _Raised(str(exc)) from exc

        return call


_MISSES: dict[str, int] = {}  # key -> wrong attempts so far in this kernel (graduated hints)


class _Unwatched:
    """Stands for an argument the checker does not watch (a function, a generator...)."""


def _snapshot(x: Any) -> Any:
    """A comparable copy of an argument: tensors, arrays, modules (state), containers, scalars."""
    if isinstance(x, torch.nn.Module):
        return {k: v.detach().clone() for k, v in x.state_dict().items()}
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, list | tuple):
        return type(x)(_snapshot(v) for v in x) if isinstance(x, list) else tuple(map(_snapshot, x))
    if isinstance(x, dict):
        return {k: _snapshot(v) for k, v in x.items()}
    if x is None or isinstance(x, bool | int | float | complex | str | bytes | np.number):
        return x  # immutable, but an item of a list or dict the learner may replace
    return _Unwatched()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and bool(torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0)))
        )
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=True)
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, _Unwatched):
        return True
    if isinstance(a, float | np.floating) and isinstance(b, float | np.floating):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def _snapshots(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """Comparable copies of every argument, positional first, then keywords in order."""
    return [_snapshot(a) for a in args] + [_snapshot(kwargs[k]) for k in kwargs]


def _changed_args(before: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    """Names of the arguments a call changed in place (``before``: the case's originals)."""
    names = [f"argument {i + 1}" for i in range(len(args))] + [f"`{k}`" for k in kwargs]
    after = _snapshots(args, kwargs)
    return [n for n, b, a in zip(names, before, after, strict=True) if not _same(b, a)]


def _where(exc: BaseException) -> str:
    """' (line N: code)' of the deepest frame outside labkit: where the learner's code failed."""
    import traceback

    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "/labkit/" not in f.filename.replace("\\", "/")
    ]
    if not frames:
        return ""
    f = frames[-1]
    code = f" `{f.line.strip()}`" if f.line else ""
    return f" (line {f.lineno}:{code})"


def _hint(key: str, ex: Exercise) -> str:
    """Graduated: the nudge at the first miss, the formula from the second, then the solution."""
    misses = _MISSES.get(key, 0)
    text = f"\n   Hint: {ex.hint}" if ex.hint else ""
    if misses >= 2 and ex.formula:
        text += f"\n   Formula: {ex.formula}"
    if misses >= 2:
        text += f'\n   Still stuck? labkit.checks.solution("{key}") shows the worked solution.'
    return text


def _miss(key: str, ex: Exercise, text: str) -> Result:
    _MISSES[key] = _MISSES.get(key, 0) + 1
    return Result(False, True, text + _hint(key, ex))


def check(key: str, fn: Callable[..., Any]) -> Result:
    """Run ``fn`` against the reference of exercise ``key``; never raises on a learner's bug.

    Each case: the reference and the learner's function get their own deep copies of the
    arguments; the learner's result is compared with the reference's, and its arguments with
    the originals (a change the reference does not make is an in-place bug: ``x /= scale``).
    """
    ex = lookup(key)
    fn = fn.learner if isinstance(fn, _Lent) else fn  # a re-run of the checker cell: yours again
    if not callable(fn):
        return Result(False, False, f"📝 {key}: expected your function, got {_describe(fn)}.")
    if ex.custom is not None:
        try:
            msg = ex.custom(_Raised.watch(fn))
        except NotImplementedError:
            return Result(False, False, f"📝 {key}: not attempted yet.")
        except _Raised as raised:  # a learner's bug: report it, never raise
            exc = raised.__cause__ or raised
            return _miss(
                key, ex, f"❌ {key}: your function raised {type(exc).__name__}: {exc}{_where(exc)}"
            )
        except Exception as exc:  # the checker could not use what the function gave back
            msg = (
                f"the checker could not use what your function returned ({type(exc).__name__}: "
                f"{exc}); return the same kind of value as the reference (dtype, shape, type)"
            )
        return (
            _miss(key, ex, f"❌ {key}: {msg}") if msg else Result(True, True, f"✅ {key}: correct.")
        )
    cases = ex.cases()
    for i, case in enumerate(cases):
        label = case.label or f"case {i + 1}"
        ref_args, ref_kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        expected = ex.reference(*ref_args, **ref_kwargs)
        before = _snapshots(case.args, case.kwargs)  # once per case, for both calls
        ref_changed = set(_changed_args(before, ref_args, ref_kwargs))
        args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        try:
            got = fn(*args, **kwargs)
        except NotImplementedError:
            return Result(False, False, f"📝 {key}: not attempted yet.")
        except Exception as exc:  # a learner's bug: report it, never raise
            return _miss(
                key,
                ex,
                f"❌ {key}: your function raised {type(exc).__name__} on {label}: {exc}{_where(exc)}",
            )
        changed = [n for n in _changed_args(before, args, kwargs) if n not in ref_changed]
        if changed:
            return _miss(
                key,
                ex,
                f"❌ {key}: on {label} your function changed its {', '.join(changed)} in place "
                "(e.g. `x /= s`, `w.abs_()`, `+=` on a tensor you were given). Work on a copy: "
                "`x = x / s`, `w.abs()`.",
            )
        if got is None and expected is not None:
            return _miss(key, ex, f"❌ {key}: returned None on {label} - did you forget `return`?")
        try:
            msg = ex.compare(got, expected)
        except Exception as exc:  # the result has a form the comparison cannot handle
            msg = (
                f"could not compare what your function returned ({type(exc).__name__}: {exc}); "
                f"return the same kind of value as the reference ({_describe(expected)})"
            )
        if msg:
            text = (
                f"❌ {key}: wrong on {label}: {msg}.\n"
                f"   expected {_describe(expected)}\n   got      {_describe(got)}"
            )
            return _miss(key, ex, text)
    return Result(True, True, f"✅ {key}: correct on all {len(cases)} cases.")


def exercise(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check ``fn``, print the verdict, and return what the notebook should use next.

    A pass returns ``fn``. Otherwise the reference is lent (marked, so a later re-run of the
    checker cell cannot mistake it for the learner's work) and the notebook goes on.
    """
    result = check(key, fn)
    print(result.message)
    if result.attempted:
        progress.record_exercise(key, result.passed)  # your machine only: python -m labkit progress
    if result.passed:
        _MISSES.pop(key, None)
        return fn
    print("   The notebook goes on with the reference solution for now.")
    learner = fn.learner if isinstance(fn, _Lent) else fn
    return _Lent(key, lookup(key).reference, learner)


def solution(key: str) -> str:
    """Print (and return) the worked solution of exercise ``key`` from the solutions/ folder."""
    import importlib.util
    import inspect

    lookup(key)  # a clear error for an unknown key
    folder = SOLUTIONS
    for path in sorted(folder.glob("n*.py")):
        spec = importlib.util.spec_from_file_location(f"_solutions_{path.stem}", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = getattr(module, "EXERCISES", {}).get(key)
        if fn is not None:
            text = f"# {path.relative_to(folder.parent)}\n" + inspect.getsource(fn)
            print(text)
            return text
    raise ValueError(
        f"no worked solution for {key!r} in {folder}; the solutions/ folder ships with the "
        "course repository (clone it to see them)."
    )


# ------------------------------------------------ tolerance checks for measured numbers
def expect(label: str, value: float, low: float, high: float) -> None:
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
