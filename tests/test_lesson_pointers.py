"""Every public lesson function says where it is taught (d2l's helpers point back to their section).

A topic package's public functions and classes (labkit/<topic>/*.py, exercises and widgets aside)
end their docstring with `Taught in notebooks/NN_name.ipynb, "<heading>".`; the notebook must
exist and have a markdown heading with that text, so the pointer cannot go stale.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
POINTER = re.compile(r'Taught in (notebooks/[\w.]+\.ipynb), "([^"]+)"')
NOT_LESSONS = {"exercises.py", "widget.py", "worker.py"}  # checked by their own tests


def lesson_files() -> list[Path]:
    topics = [p for p in (ROOT / "labkit").iterdir() if (p / "__init__.py").exists()]
    return sorted(
        f
        for t in topics
        if t.name not in ("core", "course", "interview")
        for f in t.glob("*.py")
        if f.name == "__init__.py" or (f.name not in NOT_LESSONS and not f.name.startswith("_"))
    )


def public_defs(path: Path) -> list[tuple[str, str | None]]:
    tree = ast.parse(path.read_text())
    return [
        (n.name, ast.get_docstring(n))
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
    ]


@functools.cache  # one read per notebook, not one per function
def headings(notebook: Path) -> set[str]:
    cells = nbformat.read(notebook, as_version=4).cells
    return {
        ln.lstrip("#").strip()
        for c in cells
        if c.cell_type == "markdown"
        for ln in c.source.split("\n")
        if ln.startswith("#")
    }


def pointer_problems(path: Path) -> tuple[list[str], list[str]]:
    """(public defs with no pointer, pointers to a heading their notebook does not have)."""
    missing, stale = [], []
    for name, doc in public_defs(path):
        m = POINTER.search(doc or "")
        if not m:
            missing.append(name)
        elif m.group(2) not in headings(ROOT / m.group(1)):
            stale.append(f"{name}: {m.group(1)} has no heading {m.group(2)!r}")
    return missing, stale


@pytest.mark.parametrize("path", lesson_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_public_lesson_function_says_where_it_is_taught(path: Path) -> None:
    missing, stale = pointer_problems(path)
    assert not missing, f"no 'Taught in notebooks/..., \"heading\"' line in: {missing}"
    assert not stale, stale


def test_a_missing_or_stale_pointer_is_caught(tmp_path: Path) -> None:
    nb = "notebooks/05_quantization_math.ipynb"
    lesson = tmp_path / "lesson.py"
    lesson.write_text(
        f'def good():\n    """Taught in {nb}, "Learning objectives"."""\n\n\n'
        f'def stale():\n    """Taught in {nb}, "A heading no notebook has"."""\n\n\n'
        'def bare():\n    """No pointer."""\n\n\n'
        "def _private():\n    pass\n"
    )
    missing, stale = pointer_problems(lesson)
    assert missing == ["bare"]
    assert len(stale) == 1 and stale[0].startswith("stale:")
