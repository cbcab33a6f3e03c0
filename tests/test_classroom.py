"""The classroom kit: nbgrader-format student copies, the sandboxed grader, the teacher's guide.

Kernels run only on notebook 00 cut down to its set-up and exercise cells (a learner may
delete the lesson cells; the grader grades what is submitted), so the file stays quick.
"""

from __future__ import annotations

import ast
import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labkit import checks
from labkit.core.paths import ROOT, notebook_paths
from labkit.course import classroom

NB = "00_setup_and_measurement"


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the course whose notebook 00 keeps only its set-up and exercise cells."""
    root = tmp_path_factory.mktemp("course")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("labkit", "data", "solutions"):
        shutil.copytree(ROOT / part, root / part, ignore=skip)
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    nb = nbformat.read(ROOT / "notebooks" / f"{NB}.ipynb", as_version=4)
    keep, inside = [], False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and re.match(r"##\s", cell.source):
            inside = cell.source.startswith("## Exercises")
        if i <= 3 or inside:  # title, Colab cell, set-up; then the Exercises section
            keep.append(cell)
    nb.cells = keep
    (root / "notebooks").mkdir()
    nbformat.write(nb, root / "notebooks" / f"{NB}.ipynb")
    return root


@pytest.fixture(scope="module")
def released(course: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("classroom")
    classroom.release(out, [course / "notebooks" / f"{NB}.ipynb"], root=course)
    return out


def student_copy(released: Path) -> nbformat.NotebookNode:
    return nbformat.read(released / "release" / NB / f"{NB}.ipynb", as_version=4)


def solved(released: Path) -> nbformat.NotebookNode:
    """The student copy with the worked solutions pasted into the answer cells."""
    nb = student_copy(released)
    source = nbformat.read(released / "source" / NB / f"{NB}.ipynb", as_version=4)
    for s in classroom.slots(nb):
        nb.cells[s.answer].source = classroom.strip_markers(source.cells[s.answer].source)
    return nb


# ------------------------------------------------------------------ release
def test_release_writes_nbgrader_cells_for_every_notebook(tmp_path: Path) -> None:
    assert classroom.main(["release", str(tmp_path)]) == 0
    assert (tmp_path / "nbgrader_config.py").exists() and (tmp_path / "README.md").exists()
    try:
        from nbgrader.nbgraderformat import MetadataValidator
        from nbgrader.utils import compute_checksum
    except ImportError:  # nbgrader is optional: our own checksum, and the schema's required keys
        MetadataValidator, compute_checksum = None, classroom.nbgrader_checksum
    total = 0
    for path in notebook_paths():
        course_nb = nbformat.read(path, as_version=4)
        mine = nbformat.read(tmp_path / "release" / path.stem / path.name, as_version=4)
        theirs = nbformat.read(tmp_path / "source" / path.stem / path.name, as_version=4)
        found = classroom.slots(course_nb)
        assert [s.key for s in classroom.slots(mine)] == [s.key for s in found], path.name
        answers = {s.answer: s for s in found}
        tests = {s.checker: s for s in found}
        ids = set()
        for i, cell in enumerate(mine.cells):
            meta = cell.metadata["nbgrader"]
            assert {"grade", "solution", "locked", "grade_id", "schema_version"} <= set(meta)
            assert meta["schema_version"] == 3 and re.fullmatch(r"[A-Za-z0-9_-]+", meta["grade_id"])
            assert meta["grade_id"] not in ids
            ids.add(meta["grade_id"])
            assert meta["checksum"] == compute_checksum(cell), (path.name, i)
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
            if i in answers:  # the learner's cell: the course's own stub, editable
                assert meta["solution"] and not meta["grade"] and not meta["locked"]
                assert cell.source == course_nb.cells[i].source
                assert cell.metadata.get("editable", True) and not cell.metadata["deletable"]
                assert theirs.cells[i].source.count("### BEGIN SOLUTION") >= 1
            elif i in tests:  # autograded: the checker, then an assert that fails until it passes
                assert meta["grade"] and meta["locked"] and meta["points"] == classroom.POINTS
                assert cell.source.startswith(course_nb.cells[i].source.rstrip())
                assert cell.source.splitlines()[-1] == classroom.assert_line(tests[i])
                assert cell.metadata["editable"] is False
            else:  # everything else is read-only
                assert meta["locked"] and not meta["grade"] and not meta["solution"]
                assert cell.metadata["editable"] is False
        if MetadataValidator is not None:
            MetadataValidator().validate_nb(mine)
            MetadataValidator().validate_nb(theirs)
        total += len(found)
    assert total >= 30  # every exercise of the course (39 today)


def test_filled_answers_are_the_worked_solutions() -> None:
    """Each solution region holds the body of solutions/nNN_*.py's function (plus imports)."""
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        found = classroom.slots(nb)
        if not found:
            continue
        _student, source = classroom.assignment(path)
        sol_tree = ast.parse(classroom.solution_path(path).read_text())
        solved_fns = dict(classroom._functions(sol_tree))
        for s in found:
            filled = ast.parse(classroom.strip_markers(source.cells[s.answer].source))
            stubs = {q for q, fn in classroom._functions(ast.parse(nb.cells[s.answer].source))
                     if any(classroom._is_stub(st) for st in fn.body)}  # fmt: skip
            for qual, fn in classroom._functions(filled):
                if qual not in stubs:
                    continue
                body = [st for st in fn.body if not isinstance(st, ast.Import | ast.ImportFrom)]
                want = solved_fns[qual].body
                assert ast.dump(ast.Module(body, [])) == ast.dump(ast.Module(want, [])), qual


@pytest.mark.parametrize(
    "stem, key",
    [("06_ptq_and_qat", "qat.ste_fake_quant"), ("09_onnx_and_tensorrt", "deploy.calibration_reader"),
     ("00_setup_and_measurement", "bench.measure_latency")],
)  # fmt: skip
def test_a_filled_answer_cell_passes_its_checker(stem: str, key: str) -> None:
    """A class's methods, a class whose solution has one method more, a plain function."""
    path = ROOT / "notebooks" / f"{stem}.ipynb"
    nb = nbformat.read(path, as_version=4)
    _student, source = classroom.assignment(path)
    namespace: dict = {}
    for cell in nb.cells:  # the notebook's own imports, as the kernel would have them
        if cell.cell_type == "code":
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Import | ast.ImportFrom):
                    exec(ast.unparse(node), namespace)
    slot = next(s for s in classroom.slots(nb) if s.key == key)
    exec(classroom.strip_markers(source.cells[slot.answer].source), namespace)
    result = checks.check(key, namespace[slot.name])
    assert result.passed, result.message


def test_checksum_matches_nbgrader() -> None:
    nbgrader_utils = pytest.importorskip("nbgrader.utils")
    cell = nbformat.v4.new_code_cell("x = 1")
    for meta in (
        {"grade": True, "solution": False, "locked": True, "points": 2, "grade_id": "t"},
        {"grade": False, "solution": True, "locked": False, "grade_id": "a"},
        {"grade": False, "solution": False, "locked": True, "grade_id": "c"},
    ):
        cell.metadata["nbgrader"] = {**meta, "schema_version": 3}
        assert classroom.nbgrader_checksum(cell) == nbgrader_utils.compute_checksum(cell)


# ------------------------------------------------------------------ nbgrader's own commands
def test_nbgrader_generates_the_same_copies_and_autogrades_them(
    released: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nbgrader generate_assignment` makes our student copy; autograde: full marks / zero."""
    pytest.importorskip("nbgrader")
    # nbgrader runs `alembic` by name: this environment's scripts must be on PATH (CI's is not)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    from nbgrader.api import Gradebook

    nbgrader = [sys.executable, "-m", "nbgrader"]
    run = {"cwd": released, "capture_output": True, "text": True, "timeout": 600}
    gen = subprocess.run(
        [*nbgrader, "generate_assignment", NB, "--CourseDirectory.release_directory=nbg"], **run
    )
    assert gen.returncode == 0, gen.stdout + gen.stderr
    ours, theirs = student_copy(released), nbformat.read(released / "nbg" / NB / f"{NB}.ipynb", 4)
    assert [(c.source, c.metadata) for c in ours.cells] == [
        (c.source, c.metadata) for c in theirs.cells
    ]
    for student, nb in (("good", solved(released)), ("stub", student_copy(released))):
        target = released / "submitted" / student / NB / f"{NB}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(nb, target)
    graded = subprocess.run([*nbgrader, "autograde", NB], **run)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    with Gradebook(f"sqlite:///{released / 'gradebook.db'}") as gb:
        for student, want in (("good", 1.0), ("stub", 0.0)):
            nb = gb.find_submission_notebook(NB, NB, student)
            tests = [g for g in nb.grades if g.name.startswith("test-")]
            assert len(tests) == 3
            assert all(g.score == want * g.max_score for g in tests), [
                (g.name, g.score) for g in tests
            ]


# ------------------------------------------------------------------ the grader
def with_answer(nb: nbformat.NotebookNode, key: str, code: str, *, prefix: bool = True):
    """A copy of ``nb`` whose answer cell of ``key`` starts with (or is) ``code``."""
    nb = copy.deepcopy(nb)
    slot = next(s for s in classroom.slots(nb) if s.key == key)
    cell = nb.cells[slot.answer]
    cell.source = code + "\n" + cell.source if prefix else code
    return nb


LATENCY, SIZE, MACS = "bench.measure_latency", "bench.model_size_bytes", "bench.conv2d_macs"
SPAM = 'for _ in range(20_000):\n    print("spam " * 200)  # 20 MB\n'
ALLOC = "import torch\n\nbig = torch.empty(10 * 2**30, dtype=torch.uint8)  # 10 GB\n"
EXITS = "import sys\n\nsys.exit(1)\n"
DIES = "def conv2d_macs(conv, height, width, batch=1):\n    import os\n\n    os._exit(1)\n"
HANGS = "def model_size_bytes(model):\n    while True:\n        pass\n"
FILLS = """\
import time

try:
    with open("one_big_file.bin", "wb") as f:
        f.write(bytes(100 << 20))
except OSError as exc:
    print("one big file:", exc)
for i in range(20):  # 640 MB at most
    with open(f"junk{i}.bin", "wb") as f:
        f.write(bytes(32 << 20))
    time.sleep(0.1)
"""


def removes(paths: list[str]) -> str:
    return f"""\
import os

for target in {paths!r}:
    try:
        os.remove(target)
        print("removed", target)
    except OSError as exc:
        print("could not remove", target, "-", exc)
"""


def outputs(path: Path, code: str) -> str:
    """The outputs of the executed cell whose source contains ``code``, as JSON text."""
    nb = nbformat.read(path, as_version=4)
    return json.dumps(next(c.outputs for c in nb.cells if code in c.source))


def rows_of(rows: list[classroom.Row], student: str) -> dict[str, classroom.Row]:
    return {r.exercise: r for r in rows if r.student == student}


def test_grader_survives_planted_submissions(course: Path, released: Path, tmp_path: Path) -> None:
    good, stub = solved(released), student_copy(released)
    course_file = course / "labkit" / "measure" / "exercises.py"
    targets = ["../labkit/measure/exercises.py"]  # the submission's own copy of the course
    if classroom.landlock_abi():  # a path outside its folder: Landlock must refuse
        targets.insert(0, str(course_file))
    planted = {
        "alice": good,
        "bob": stub,
        "dave": with_answer(with_answer(good, LATENCY, EXITS), MACS, DIES, prefix=False),
        "erin": with_answer(good, LATENCY, removes(targets)),
        "fred": with_answer(good, LATENCY, ALLOC),
        "gina": with_answer(good, LATENCY, SPAM),
        "hugo": with_answer(good, SIZE, FILLS),
    }
    subs = tmp_path / "submissions"
    for student, nb in planted.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / f"{NB}.ipynb")
    limits = classroom.Limits(timeout=300, memory=4 << 30, file=64 << 20, disk=160 << 20,
                              output=256 << 10)  # fmt: skip
    csv_path, feedback = tmp_path / "gradebook.csv", tmp_path / "feedback"
    rows = classroom.grade(subs, csv_path, limits, course=course, feedback=feedback)
    print(csv_path.read_text())  # the gradebook, for the log (pytest -rP)

    with csv_path.open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == classroom.COLUMNS and len(table) == 3 * len(planted)
    assert all(r.passed and r.points == 1 and not r.reason for r in rows_of(rows, "alice").values())
    assert all(not r.passed and r.points == 0 and "not attempted" in r.reason
               for r in rows_of(rows, "bob").values())  # fmt: skip

    dave = rows_of(rows, "dave")  # sys.exit in an answer cell; os._exit in a function
    assert not dave[LATENCY].passed and "SystemExit" in dave[LATENCY].reason
    assert dave[SIZE].passed and not dave[SIZE].reason
    assert not dave[MACS].passed and "kernel died" in dave[MACS].reason

    erin = rows_of(rows, "erin")  # removed a course file: its own checks break, nobody else's
    assert all(not r.passed and "names no exercise" in r.reason for r in erin.values())
    assert course_file.exists() and (ROOT / "labkit" / "measure" / "exercises.py").exists()
    said = outputs(feedback / "erin" / f"{NB}.ipynb", "os.remove(target)")
    assert "removed ../labkit/measure/exercises.py" in said
    if len(targets) == 2:
        assert "could not remove " + str(course_file) in said

    fred = rows_of(rows, "fred")  # a 10 GB allocation fails under the memory limit
    assert not fred[LATENCY].passed and "allocate" in fred[LATENCY].reason
    assert fred[SIZE].passed and fred[MACS].passed  # and the course copy was whole again

    gina = rows_of(rows, "gina")  # 20 MB of prints: graded, outputs cut
    assert all(r.passed and "not kept" in r.reason for r in gina.values())
    kept = nbformat.read(feedback / "gina" / f"{NB}.ipynb", 4)
    assert len(json.dumps([c.get("outputs", []) for c in kept.cells])) < 2 * limits.output

    hugo = rows_of(rows, "hugo")  # a file past RLIMIT_FSIZE, then files past the disk limit
    assert hugo[LATENCY].passed and not hugo[LATENCY].reason
    assert not hugo[SIZE].passed and "disk" in hugo[SIZE].reason
    assert not hugo[MACS].passed and "not checked" in hugo[MACS].reason
    said = outputs(feedback / "hugo" / f"{NB}.ipynb", "one_big_file.bin")
    assert "File too large" in said


def test_grader_stops_a_hanging_submission(course: Path, released: Path, tmp_path: Path) -> None:
    subs = tmp_path / "submissions"
    (subs / "carl").mkdir(parents=True)
    nbformat.write(
        with_answer(solved(released), SIZE, HANGS, prefix=False), subs / "carl" / f"{NB}.ipynb"
    )
    (subs / "carl" / "notes.txt").write_text("not a notebook: ignored")
    rows = classroom.grade(subs, None, classroom.Limits(timeout=20), course=course)
    carl = rows_of(rows, "carl")
    assert not carl[SIZE].passed and "ran out of its 20 s" in carl[SIZE].reason
    assert not carl[MACS].passed and carl[MACS].reason.startswith("not checked")


def test_grader_names_what_it_cannot_grade(course: Path, tmp_path: Path) -> None:
    subs = tmp_path / "submissions"
    (subs / "kim").mkdir(parents=True)
    (subs / "kim" / "my_notes.ipynb").write_text("{}")
    (subs / "kim" / f"{NB}.ipynb").write_text("not json")
    rows = classroom.grade(subs, None, course=course)
    assert [(r.notebook, r.passed) for r in rows if r.exercise == ""] == [("my_notes.ipynb", False)]
    broken = [r for r in rows if r.notebook == f"{NB}.ipynb"]
    assert len(broken) == 3 and all("not a readable notebook" in r.reason for r in broken)


# ------------------------------------------------------------------ the teacher's guide
def test_teachers_guide_is_current() -> None:
    """docs/teachers_guide.md is generated: `python -m labkit classroom guide` rewrites it."""
    assert classroom.GUIDE.exists(), "run: python -m labkit classroom guide"
    assert classroom.GUIDE.read_text() == classroom.teachers_guide(), (
        "docs/teachers_guide.md is out of date: run `python -m labkit classroom guide`"
    )


def test_guide_names_mistakes_for_every_exercise() -> None:
    mistakes = classroom.planted_mistakes()
    keys = {s.key for p in notebook_paths() for s in classroom.slots(nbformat.read(p, 4))}
    assert keys and all(mistakes.get(k) for k in keys), sorted(
        k for k in keys if not mistakes.get(k)
    )
    guide = classroom.teachers_guide()
    for heading in ("One-day workshop", "Three-day course", "Ten-week module", "GPU-lab variant"):
        assert heading in guide
    chapters = classroom.chapters()
    assert all(c.objectives and (c.exercises or c.stem == "interview_prep") for c in chapters)
    assert all(c.run_s > 0 for c in chapters)
