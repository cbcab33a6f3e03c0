"""Signposts that are true, both ways (d2l's helpers point back to the section that teaches them).

- A public lesson def (labkit/<topic>/*.py, exercises and widgets aside) that a notebook calls,
  as `<topic>.<name>` or imported `from labkit.<topic>`, ends its docstring with
  `Taught in notebooks/NN_name.ipynb, "<heading>".` naming a notebook whose code calls it and a
  markdown heading that notebook has; a def no notebook calls has no such line.
- Each notebook's setup cell is introduced by a markdown cell that names, as paths, the module
  files holding the labkit code the notebook calls.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
POINTER = re.compile(r'Taught in (notebooks/[\w.]+\.ipynb), "([^"]+)"')
NOT_LESSONS = {"exercises.py", "widget.py", "worker.py"}  # checked by their own tests
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def topics() -> list[Path]:
    pkgs = [p for p in (ROOT / "labkit").iterdir() if (p / "__init__.py").exists()]
    return sorted(p for p in pkgs if p.name not in ("core", "course", "interview"))


def lesson_files() -> list[Path]:
    return sorted(
        f
        for t in topics()
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
def read(notebook: Path) -> tuple[set[str], str]:
    """(markdown headings, all code) of a notebook."""
    cells = nbformat.read(notebook, as_version=4).cells
    heads = {
        ln.lstrip("#").strip()
        for c in cells
        if c.cell_type == "markdown"
        for ln in c.source.split("\n")
        if ln.startswith("#")
    }
    return heads, "\n".join(c.source for c in cells if c.cell_type == "code")


def calls(code: str, topic: str, name: str) -> bool:
    """Does this notebook code use labkit.<topic>.<name> (attribute or from-import)?"""
    attr = re.search(rf"\b{topic}\.{name}\b", code)
    imported = re.search(rf"from labkit\.{topic}(\.\w+)? import [^\n]*\b{name}\b", code)
    return bool(attr or imported)


def callers(topic: str, name: str) -> list[str]:
    return [f"notebooks/{nb.name}" for nb in NOTEBOOKS if calls(read(nb)[1], topic, name)]


def pointer_problems(path: Path, topic: str) -> tuple[list[str], list[str]]:
    """(defs a notebook calls but with no pointer, pointers that are not true)."""
    missing, false = [], []
    for name, doc in public_defs(path):
        m = POINTER.search(doc or "")
        users = callers(topic, name)
        if not m:
            if users:
                missing.append(f"{name} (called by {users[0]})")
            continue
        nb, heading = m.group(1), m.group(2)
        if not (ROOT / nb).exists():
            false.append(f"{name}: {nb} does not exist")
        elif nb not in users:
            false.append(f"{name}: {nb} never calls {topic}.{name} (callers: {users or 'none'})")
        elif heading not in read(ROOT / nb)[0]:
            false.append(f"{name}: {nb} has no heading {heading!r}")
    return missing, false


@pytest.mark.parametrize("path", lesson_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_pointer_is_true_and_each_taught_def_has_one(path: Path) -> None:
    missing, false = pointer_problems(path, path.parent.name)
    assert not missing, f"no 'Taught in notebooks/..., \"heading\"' line in: {missing}"
    assert not false, false


def test_a_missing_or_false_pointer_is_caught(tmp_path: Path) -> None:
    nb = "notebooks/05_quantization_math.ipynb"
    lesson = tmp_path / "lesson.py"
    lesson.write_text(
        f'def quantize():\n    """Taught in {nb}, "Learning objectives"."""\n\n\n'
        f'def dequantize():\n    """Taught in {nb}, "A heading no notebook has"."""\n\n\n'
        f'def not_called_anywhere():\n    """Taught in {nb}, "Learning objectives"."""\n\n\n'
        'def compute_qparams():\n    """No pointer, though notebook 05 calls it."""\n\n\n'
        'def helper_nobody_calls():\n    """No pointer, and none needed."""\n\n\n'
        "def _private():\n    pass\n"
    )
    missing, false = pointer_problems(lesson, "quant")
    assert [m.split(" ")[0] for m in missing] == ["compute_qparams"]
    assert [f.split(":")[0] for f in false] == ["dequantize", "not_called_anywhere"]


# ------------------------------------------------------- notebooks name the files of their code
def setup_markdown(nb: Path) -> str:
    """The markdown cell just before the setup cell (the first code cell calling env.setup)."""
    cells = nbformat.read(nb, as_version=4).cells
    for i, c in enumerate(cells):
        if c.cell_type == "code" and "env.setup(" in c.source:
            assert i > 0 and cells[i - 1].cell_type == "markdown", f"{nb.name}: no text before"
            return cells[i - 1].source
    raise AssertionError(f"{nb.name} has no setup cell calling labkit.env.setup(...)")


def code_files(nb: Path) -> set[str]:
    """Topic module files defining what the notebook calls as <topic>.<name>."""
    code = read(nb)[1]
    files = set()
    for t in topics():
        if not re.search(rf"\b{t.name}\.\w+|from labkit\.{t.name}", code):
            continue
        module = importlib.import_module(f"labkit.{t.name}")
        for name in getattr(module, "__all__", dir(module)):
            obj = getattr(module, name, None)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and calls(code, t.name, name):
                src = Path(inspect.getsourcefile(obj) or "")
                if src.is_relative_to(t):
                    files.add(str(src.relative_to(ROOT)))
    return files


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_names_the_files_that_hold_the_notebooks_code(nb: Path) -> None:
    text = setup_markdown(nb)
    named = set(re.findall(r"`(labkit/[\w/]+\.py)`", text))
    assert all((ROOT / p).exists() for p in named), f"named but absent: {named}"
    unnamed = code_files(nb) - named
    assert not unnamed, f"{nb.name}: the text before the setup cell should name {sorted(unnamed)}"
