"""Conventions every course notebook follows (CONTRIBUTING.md, "Notebook layout"), checked on the saved files.

nbval (configured in pyproject.toml) separately re-executes each notebook and compares outputs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from labkit.course.build_notebooks import (
    COLAB_MARK,
    NOTEBOOKS,
    TIMES,
    colab_cell_source,
    notebook_paths,
)

PATHS = notebook_paths()
NAMES = [p.name for p in PATHS]
CJK = re.compile(r"[\u4e00-\u9fff]")
LOCAL_PATH = re.compile(r"(/home/|/root/|/work/|/Users/|C:\\\\Users|/tmp/)")


def load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def markdown(nb: nbformat.NotebookNode) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def section(nb: nbformat.NotebookNode, heading: str) -> str:
    """The markdown text from a '## heading' up to the next '## ' heading."""
    text = markdown(nb)
    m = re.search(rf"^##\s+{heading}.*?$(.*?)(?=^##\s|\Z)", text, re.M | re.S | re.I)
    assert m, f"missing a '## {heading}' section"
    return m.group(1)


def test_course_has_notebooks() -> None:
    assert "00_setup_and_measurement.ipynb" in NAMES


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_structure(path: Path) -> None:
    nb = load(path)
    assert re.match(r"\d\d_[a-z_]+\.ipynb$|[a-z_]+\.ipynb$", path.name)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    objectives = section(nb, "Learning objectives")
    assert objectives.count("\n- ") >= 3, "list at least 3 learning objectives"
    section(nb, "Pitfalls")
    interview = section(nb, "Interview corner")
    assert interview.count("<details>") >= 3, "need 3+ interview questions with hidden answers"
    terms = section(nb, "Key terms")
    rows = [r for r in terms.splitlines() if r.startswith("|") and CJK.search(r)]
    assert len(rows) >= 5, "key-terms table needs 5+ rows with the Chinese term"


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_exercises_call_the_checker(path: Path) -> None:
    if not path.name[:2].isdigit():
        pytest.skip("only numbered course notebooks carry exercises")
    nb = load(path)
    keys = re.findall(
        r"labkit\.checks\.exercise\(\s*\"([\w.]+)\"",
        "\n".join(c.source for c in nb.cells if c.cell_type == "code"),
    )
    assert len(set(keys)) >= 2, "need 2+ exercises checked by labkit.checks.exercise"
    stubs = [
        c for c in nb.cells if c.cell_type == "code" and "raise NotImplementedError" in c.source
    ]
    assert len(stubs) >= 2, "each exercise cell leaves `raise NotImplementedError` for the learner"


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_saved_executed_and_clean(path: Path) -> None:
    nb = load(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == colab_cell_source(), "rebuild: first code cell must be the Colab cell"
    assert code[0].source.startswith(COLAB_MARK)
    for i, c in enumerate(code):
        assert c.execution_count is not None, f"code cell {i} not executed; run the build"
        for out in c.outputs:
            assert out.output_type != "error", f"code cell {i} saved an error"
            text = json.dumps(out.get("text", "")) + json.dumps(
                out.get("data", {}).get("text/plain", "")
            )
            assert not LOCAL_PATH.search(text), f"code cell {i} shows a local path"
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), "cells must be executed top to bottom once"


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_markdown_before_every_code_cell(path: Path) -> None:
    nb = load(path)
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and i > 0 and not c.source.startswith(COLAB_MARK):
            assert nb.cells[i - 1].cell_type == "markdown", (
                f"cell {i} needs a markdown cell before it"
            )


IGNORE_TAG = "nbval-ignore-output"
EXACT_TAG = "exact-output"  # a checked cell whose floats are exact IEEE arithmetic (no reductions)
FLOAT = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e[-+]?\d+)?|(?<![\w.])\d+e-\d+")


def ignored(cell: nbformat.NotebookNode) -> bool:
    return IGNORE_TAG in cell.get("metadata", {}).get("tags", [])


def output_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for o in cell.get("outputs", []):
        parts.append(o.get("text", "") if isinstance(o.get("text", ""), str) else "")
        parts.append(str(o.get("data", {}).get("text/plain", "")))
    return "".join(parts)


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_timing_and_plot_cells_are_ignored_by_nbval(path: Path) -> None:
    nb = load(path)
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        assert "NBVAL_IGNORE_OUTPUT" not in c.source, (
            f"cell {i}: use the cell tag {IGNORE_TAG!r}, not a comment in the code"
        )
        shows_plot = any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in c.outputs)
        if shows_plot:
            assert ignored(c), f"plot cell {i} must carry the tag {IGNORE_TAG!r}"


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_checked_cells_print_no_measured_floats(path: Path) -> None:
    """A checked cell prints what is identical on every CPU: no floating-point results.

    Measured floats go in cells tagged nbval-ignore-output and are asserted there with
    labkit.expect, whose '✓ ... in [lo, hi]' line is what nbval compares. A cell whose floats
    are exact IEEE arithmetic (bit layouts, powers of two, scalar formulas) is tagged exact-output.
    """
    nb = load(path)
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code" or ignored(c) or EXACT_TAG in c.metadata.get("tags", []):
            continue
        for line in output_text(c).splitlines():
            if line.lstrip().startswith("✓"):
                continue
            assert not FLOAT.search(line), (
                f"checked cell {i} prints a float ({line.strip()[:80]!r}): print it in a cell "
                f"tagged {IGNORE_TAG!r} and assert it with labkit.expect, or tag the cell "
                f"{EXACT_TAG!r} if the value is exact on every CPU"
            )


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_every_figure_has_a_static_image_and_the_notebook_is_small(path: Path) -> None:
    """GitHub, nbviewer and Colab's preview cannot run plotly.js: each figure carries a PNG."""
    nb = load(path)
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            data = o.get("data", {})
            if "application/vnd.plotly.v1+json" in data:
                assert "image/png" in data or "image/svg+xml" in data, (
                    f"cell {i}: plotly figure without a static image; rebuild with "
                    "python -m labkit.course.build_notebooks"
                )
    size = path.stat().st_size
    assert size < 2_000_000, f"{path.name} is {size / 1e6:.1f} MB (limit 2 MB)"


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_first_screen_says_time_exercises_and_prerequisites(path: Path) -> None:
    title = load(path).cells[0].source
    times = json.loads(TIMES.read_text())
    m = re.search(r"\*\*Time to run:\*\* (\d+) s on the 2-core machine that built it", title)
    assert m, (
        "the title cell needs the line '**Time to run:** ... · **Exercises:** ... · **Assumes:** ...'"
    )
    assert int(m.group(1)) == round(times[path.name]), (
        "time line differs from build_times.json: rebuild"
    )
    assert "**Exercises:**" in title and "**Assumes:**" in title


def test_build_times_under_two_minutes() -> None:
    times = json.loads(TIMES.read_text())
    for name in NAMES:
        assert name in times, (
            f"{name} has no recorded build time; run python -m labkit.course.build_notebooks"
        )
        assert times[name] <= 90, f"{name} took {times[name]} s to run (limit 90 s on 2 cores)"
    assert sum(times[n] for n in NAMES) < 15 * 60


def test_notebooks_dir_has_only_course_files() -> None:
    extra = (
        {p.name for p in NOTEBOOKS.iterdir()}
        - set(NAMES)
        - {"build_times.json", ".ipynb_checkpoints"}
    )
    assert not extra, f"unexpected files in notebooks/: {extra}"
