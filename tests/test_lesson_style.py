"""Lesson first: the shape of every topic package, checked on the source (AST).

- `labkit/<topic>/__init__.py` is the face: a docstring, imports and `__all__`, no function or
  class of its own, at most 40 lines;
- no module of a topic is longer than 600 lines (split it along the notebook's parts);
- a public lesson function (and each public method of a public lesson class) starts with at most
  one guard statement: one `_check_...(...)` / `check_...(...)` call, one `assert`, or one
  `if ...: raise`; then comes the formula. The checks sit at the bottom of the module;
- the guard lines of all lesson functions together stay under a budget: a ratchet at today's
  count (about 580 before the rule, 223 after it, 281 once chapters 03, 04, 06, 10, 11 and 13
  gained their depth, 376 once the independent bad-input probe in tests/badinput/ gave the 95
  functions that had no check one: one line for each of about 376 public functions a learner
  calls; issue 18's target, 150, is not reached: lower GUARD_BUDGET whenever a change removes
  guard lines).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_LESSONS = {"exercises.py", "widget.py", "worker.py"}  # learner tools, with their own tests
NOT_TOPICS = {"core", "course"}
FACE_LINES, MODULE_LINES, GUARD_BUDGET = 40, 600, 376


def topic_dirs() -> list[Path]:
    pkgs = (p for p in (ROOT / "labkit").iterdir() if (p / "__init__.py").exists())
    return sorted(p for p in pkgs if p.name not in NOT_TOPICS)


def lesson_modules() -> list[Path]:
    return sorted(
        f
        for t in topic_dirs()
        for f in t.glob("*.py")
        if f.name != "__init__.py" and f.name not in NOT_LESSONS
    )


def is_guard(st: ast.stmt) -> bool:
    """A statement that only checks input: assert, check call, or `if ...: raise` (elifs too)."""
    if isinstance(st, ast.Assert):
        return True
    if isinstance(st, ast.If):
        return isinstance(st.body[-1], ast.Raise) and all(is_guard(s) for s in st.orelse)
    value = st.value if isinstance(st, (ast.Expr, ast.Assign, ast.AnnAssign)) else None
    if isinstance(value, ast.Call):
        f = value.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        return re.match(r"_?check(_|$)", name) is not None  # not checkpoint_sequential
    return False


def lesson_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    for cls in tree.body:
        if isinstance(cls, ast.ClassDef) and not cls.name.startswith("_"):
            fns += [
                n
                for n in cls.body
                if isinstance(n, ast.FunctionDef)
                and (not n.name.startswith("_") or n.name == "__init__")
            ]
    return fns


def guards(fn: ast.FunctionDef) -> list[ast.stmt]:
    """Every guard statement in a function body, nested ones included (docstring skipped)."""
    found = []
    for node in ast.walk(fn):
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                found += [st for st in block if isinstance(st, ast.stmt) and is_guard(st)]
    return [g for g in found if not any(g is not o and _inside(g, o) for o in found)]


def _inside(inner: ast.stmt, outer: ast.stmt) -> bool:
    return outer.lineno <= inner.lineno and inner.end_lineno <= outer.end_lineno  # type: ignore[operator]


def rule_breaks(path: Path) -> tuple[list[str], int]:
    """(functions breaking the one-guard-at-the-top rule, guard lines in lesson functions)."""
    tree = ast.parse(path.read_text())
    breaks, lines = [], 0
    for fn in lesson_functions(tree):
        body = fn.body[1:] if ast.get_docstring(fn) is not None else fn.body
        found = guards(fn)
        lines += sum(g.end_lineno - g.lineno + 1 for g in found)  # type: ignore[operator]
        if len(found) > 1 or (found and (not body or found[0] is not body[0])):
            breaks.append(f"{fn.name} (line {fn.lineno}): {len(found)} guard statements")
    return breaks, lines


@pytest.mark.parametrize("topic", topic_dirs(), ids=lambda p: p.name)
def test_init_is_the_face(topic: Path) -> None:
    face = topic / "__init__.py"
    tree = ast.parse(face.read_text())
    defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert not defs, f"{face.relative_to(ROOT)} defines {defs}: move them to a named module"
    n = len(face.read_text().splitlines())
    assert n <= FACE_LINES, f"{face.relative_to(ROOT)} has {n} lines (face: <= {FACE_LINES})"


@pytest.mark.parametrize("path", lesson_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_lesson_module_size_and_guards(path: Path) -> None:
    n = len(path.read_text().splitlines())
    assert n <= MODULE_LINES, f"{n} lines: split it along the notebook's parts"
    breaks, _ = rule_breaks(path)
    assert not breaks, f"guards before the formula (one at most, first): {breaks}"


def test_guard_lines_in_lesson_functions_stay_within_budget() -> None:
    total = sum(rule_breaks(p)[1] for p in lesson_modules())
    assert total <= GUARD_BUDGET, f"{total} guard lines in lesson functions (budget {GUARD_BUDGET})"


def test_the_rule_catches_guards_before_the_formula(tmp_path: Path) -> None:
    src = tmp_path / "lesson.py"
    src.write_text(
        "def good(x):\n    '''Doc.'''\n    _check_good(x)\n    return x + 1\n\n\n"
        "def two(x, k):\n    check_tensor(x)\n    if k < 1:\n        raise ValueError('k')\n"
        "    return x\n\n\n"
        "def late(x):\n    y = x + 1\n    assert y > 0\n    return y\n\n\n"
        "def nested(xs):\n    for x in xs:\n        if x < 0:\n            raise ValueError('x')\n"
        "    return xs\n\n\n"
        "class Obs:\n    def qparams(self):\n        if not self.seen:\n"
        "            raise RuntimeError('observe first')\n        return 1\n"
    )
    breaks, lines = rule_breaks(src)
    assert [b.split(" ")[0] for b in breaks] == ["two", "late", "nested"]
    assert lines == 1 + (1 + 2) + 1 + 2 + 2
