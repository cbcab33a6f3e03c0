"""Every public lesson function says where it is taught (d2l's helpers point back to their section).

A topic package's public functions and classes (labkit/<topic>/*.py, exercises and widgets aside)
end their docstring with `Taught in notebooks/NN_name.ipynb, "<heading>".`; the notebook must
exist and have a markdown heading with that text, so the pointer cannot go stale.
"""

from __future__ import annotations

import ast
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
        if f.name not in NOT_LESSONS and not f.name.startswith("_") or f.name == "__init__.py"
    )


def public_defs(path: Path) -> list[tuple[str, str | None]]:
    tree = ast.parse(path.read_text())
    return [
        (n.name, ast.get_docstring(n))
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
    ]


def headings(notebook: Path) -> set[str]:
    cells = nbformat.read(notebook, as_version=4).cells
    return {
        ln.lstrip("#").strip()
        for c in cells
        if c.cell_type == "markdown"
        for ln in c.source.split("\n")
        if ln.startswith("#")
    }


@pytest.mark.parametrize("path", lesson_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_public_lesson_function_says_where_it_is_taught(path: Path) -> None:
    missing, stale = [], []
    for name, doc in public_defs(path):
        m = POINTER.search(doc or "")
        if not m:
            missing.append(name)
        elif m.group(2) not in headings(ROOT / m.group(1)):
            stale.append(f"{name}: {m.group(1)} has no heading {m.group(2)!r}")
    assert not missing, f"no 'Taught in notebooks/..., \"heading\"' line in: {missing}"
    assert not stale, stale


def test_a_pointer_to_a_missing_heading_is_caught(tmp_path: Path) -> None:
    nb = ROOT / "notebooks" / "05_quantization_math.ipynb"
    assert "Learning objectives" in headings(nb)
    assert "A heading no notebook has" not in headings(nb)
