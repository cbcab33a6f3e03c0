"""Every worked solution passes its checker, and every exercise in a notebook has one.

Planted wrong versions (the mistakes learners really make) live in tests/<topic>/test_exercises_<topic>.py.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import labkit
import solutions
from labkit import checks
from labkit.core.paths import notebook_paths


def solution_entries() -> dict[str, object]:
    entries: dict[str, object] = {}
    for info in pkgutil.iter_modules(solutions.__path__):
        module = importlib.import_module(f"solutions.{info.name}")
        entries.update(module.EXERCISES)
    return entries


SOLUTIONS = solution_entries()


@pytest.mark.parametrize("key", sorted(SOLUTIONS))
def test_solution_passes_checker(key: str) -> None:
    result = checks.check(key, SOLUTIONS[key])
    assert result.passed, result.message


def test_every_notebook_exercise_has_a_solution() -> None:
    used = set()
    for path in notebook_paths():
        used |= set(re.findall(r'labkit\.checks\.exercise\(\s*\\?"([\w.]+)', path.read_text()))
    assert used, "no exercises found in the notebooks"
    missing = used - set(SOLUTIONS)
    assert not missing, f"exercises without a worked solution in solutions/: {sorted(missing)}"


def test_every_exercise_spec_has_a_solution() -> None:
    specs = set()
    for path in sorted(Path(labkit.__file__).parent.glob("*/exercises.py")):
        name = "labkit." + ".".join(
            path.relative_to(Path(labkit.__file__).parent).with_suffix("").parts
        )
        specs |= set(importlib.import_module(name).EXERCISES)
    assert specs == set(SOLUTIONS), f"specs vs solutions differ: {sorted(specs ^ set(SOLUTIONS))}"
