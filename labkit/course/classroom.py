"""``python -m labkit classroom``: hand out the notebooks, grade them, and the teacher's guide.

    python -m labkit classroom release OUT [NN ...]    student copies + an nbgrader course folder
    python -m labkit classroom grade SUBMISSIONS [--out gradebook.csv] [--timeout S]
                                                [--memory-gb G] [--feedback DIR]
    python -m labkit classroom guide [--out docs/teachers_guide.md]

**release** writes, for each notebook (all, or those whose name starts with NN):

- ``OUT/release/<nb>/<nb>.ipynb``: the student copy. Each exercise's answer cell (the cell that
  defines the learner's function and still raises ``NotImplementedError``) is an nbgrader
  *answer* cell; each checker cell (``f = labkit.checks.exercise("key", f)``) is an nbgrader
  *autograded test* cell worth ``POINTS``, ending in an ``assert`` that fails until the exercise
  passes; every other cell is locked (read-only). Outputs are cleared; checksums are nbgrader's.
- ``OUT/source/<nb>/<nb>.ipynb``: the same notebook for the teacher, with the worked solution
  of ``solutions/`` between ``### BEGIN SOLUTION`` / ``### END SOLUTION`` in each answer cell.
- ``OUT/nbgrader_config.py``: so that ``nbgrader generate_assignment <nb>`` (run in OUT) turns
  source/ into exactly the student copies of release/ and records them in nbgrader's gradebook;
  ``nbgrader autograde <nb>`` then grades ``OUT/submitted/<student>/<nb>/<nb>.ipynb``.

**grade** is for teachers without nbgrader: ``SUBMISSIONS/<student>/<notebook>.ipynb`` (a student
copy, or the learner's own course notebook). Each submission runs in a fresh kernel, in its own
temporary folder that holds a copy of the course (labkit/, data/, notebooks/, solutions/), so
nothing it does reaches the course or another submission. Where Linux Landlock is available the
kernel cannot write anywhere but that folder (and /dev/shm); its memory (RLIMIT_DATA) and each
file it writes (RLIMIT_FSIZE) are limited, the whole folder is watched (``disk``), the notebook
has a wall-clock limit, and at most ``output`` bytes of its outputs are kept. The grader puts its
own cells in: one before the first cell that records every ``labkit.checks`` result, and one after
each checker cell that reports it; the checker cells themselves are reset to the course's. Cells
after the last checker cell are not run. A submission that raises, hangs, exits, deletes files,
fills the disk or prints megabytes gets zero for the exercises it broke, with the reason, and the
run goes on. The gradebook CSV has one row per (student, notebook, exercise): student, notebook,
exercise, passed, points, reason. (It guards against accidents and runaway code, not against a
learner who sets out to fool the grader; nor does nbgrader.)

**guide** writes the teacher's guide (docs/teachers_guide.md) from the course itself: times from
notebooks/build_times.json, objectives and exercises from the notebooks, the mistakes learners
make from the planted wrong answers in tests/<topic>/test_exercises_<topic>.py, discussion
questions from each notebook's interview corner, GPU sections from labkit/course/gpu_check.py.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import csv
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
import textwrap
import threading
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.core.paths import ROOT, notebook_paths

POINTS = 1  # points of each exercise (one autograded test cell each)
SCHEMA_VERSION = 3  # nbgrader's cell metadata schema
# The course's stub line; OUT/nbgrader_config.py makes it nbgrader's code stub too.
STUB = "raise NotImplementedError  # your code here"
CHECKER = re.compile(
    r"^(?P<name>\w+)\s*=\s*labkit\.checks\.exercise\(\s*[\"'](?P<key>[\w.]+)[\"']\s*,\s*(?P<arg>\w+)\s*\)",
    re.M,
)
# What each graded submission gets a copy of.
COURSE_PARTS = ("labkit", "data", "notebooks", "solutions")


# ------------------------------------------------------------------ exercises in a notebook
@dataclass(frozen=True)
class Slot:
    """One exercise of a notebook: its key, the learner's function name, and its two cells."""

    key: str
    name: str
    answer: int | None  # index of the answer cell (None: not found)
    checker: int  # index of the checker cell


def slots(nb: Any) -> list[Slot]:
    """The exercises of a notebook in order: each checker cell and the answer cell before it.

    The answer cell is the nearest code cell above the checker that defines the function
    (``def name`` / ``class name``), stopping at the previous checker cell.
    """
    found: list[Slot] = []
    for i, cell in enumerate(nb.cells):
        m = CHECKER.search(cell.source) if cell.cell_type == "code" else None
        if not m:
            continue
        defines = re.compile(rf"^(def|class)\s+{re.escape(m['arg'])}\b", re.M)
        answer = None
        for j in range(i - 1, -1, -1):
            other = nb.cells[j]
            if other.cell_type != "code":
                continue
            if CHECKER.search(other.source):
                break
            if defines.search(other.source):
                answer = j
                break
        found.append(Slot(m["key"], m["name"], answer, i))
    return found


def grade_id(prefix: str, key: str) -> str:
    """nbgrader ids allow letters, digits, _ and - only: ("test", "quant.quantize") -> test-quant-quantize."""
    return f"{prefix}-" + re.sub(r"[^A-Za-z0-9_-]", "-", key)


def assert_line(slot: Slot) -> str:
    """The line a released checker cell ends with: it fails until the exercise passes."""
    return f'assert (_result := labkit.checks.check("{slot.key}", {slot.name})).passed, _result.message'


# ------------------------------------------------------------------ worked solutions
def solution_path(notebook: Path, root: Path = ROOT) -> Path:
    """solutions/n05_quantization_math.py for notebooks/05_quantization_math.ipynb."""
    return root / "solutions" / f"n{notebook.stem}.py"


def _is_stub(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.Raise) or stmt.exc is None:
        return False
    exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def _functions(tree: ast.Module) -> list[tuple[str, ast.FunctionDef]]:
    """Top-level functions and the methods of top-level classes, as ("f" | "Class.f", node)."""
    out: list[tuple[str, ast.FunctionDef]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out.append((node.name, node))
        elif isinstance(node, ast.ClassDef):
            out += [
                (f"{node.name}.{s.name}", s) for s in node.body if isinstance(s, ast.FunctionDef)
            ]
    return out


def _body_lines(fn: ast.FunctionDef, lines: list[str]) -> list[str]:
    """The lines of a function's body (comments included), dedented."""
    first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
    text = "\n".join(lines[first - 1 : fn.end_lineno])
    depth, header_end, seen_def = 0, None, False
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.NAME and tok.string == "def":
            seen_def = True
        elif tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif seen_def and tok.type == tokenize.OP and tok.string == ":" and depth == 0:
            header_end = first - 1 + tok.end[0]  # 1-based line of the header's colon
            break
    if header_end is None or header_end >= fn.end_lineno:  # noqa: SIM108
        raise ValueError(f"cannot take the body of {fn.name} (a one-line def?)")
    body = textwrap.dedent("\n".join(lines[header_end : fn.end_lineno]))
    return [ln.rstrip() for ln in body.splitlines()]


def imported_names(nb: Any) -> set[str]:
    """Names the notebook's code cells import (a solution's body need not import them again)."""
    names: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def filled_answer(stub_source: str, solution_source: str, available: set[str] = frozenset()) -> str:
    """The answer cell with the worked solution between nbgrader's solution markers.

    Each ``raise NotImplementedError`` body of a function (or method) of the stub is replaced by
    the body of the solution's function of the same name (``Class.method`` for methods), with
    the imports that body uses from the solution module (and the notebook does not import) in
    front of it, all between
    ``### BEGIN SOLUTION`` and ``### END SOLUTION``. nbgrader's generate_assignment (with
    OUT/nbgrader_config.py's code stub) turns the result back into the stub.
    """
    sol_tree = ast.parse(solution_source)
    sol_lines = solution_source.splitlines()
    imports: dict[str, str] = {}
    for node in sol_tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            text = ast.get_source_segment(solution_source, node) or ""
            for alias in node.names:
                imports.setdefault((alias.asname or alias.name).split(".")[0], text)
    solved = dict(_functions(sol_tree))
    stub_lines = stub_source.splitlines()
    edits: list[tuple[int, int, list[str]]] = []
    for qual, fn in _functions(ast.parse(stub_source)):
        stubs = [s for s in fn.body if _is_stub(s)]
        if not stubs:
            continue
        sol = solved.get(qual)
        if sol is None:
            raise ValueError(f"the worked solution has no {qual}")
        used = {n.id for n in ast.walk(sol) if isinstance(n, ast.Name)}
        needed = [t for n, t in imports.items() if n in used and n not in available]
        needed = list(dict.fromkeys(needed))
        stmt = stubs[0]
        pad = stub_lines[stmt.lineno - 1][: stmt.col_offset]
        block = [pad + "### BEGIN SOLUTION", *(pad + t for t in needed)]
        block += [pad + ln if ln else "" for ln in _body_lines(sol, sol_lines)]
        block.append(pad + "### END SOLUTION")
        edits.append((stmt.lineno - 1, stmt.end_lineno or stmt.lineno, block))
    if not edits:
        raise ValueError("no `raise NotImplementedError` stub in this cell")
    for start, end, block in sorted(edits, reverse=True):
        stub_lines[start:end] = block
    return "\n".join(stub_lines)


def strip_markers(source: str) -> str:
    """The answer as a learner would paste it: the solution markers left out."""
    return "\n".join(ln for ln in source.splitlines() if "### BEGIN SOLUTION" not in ln
                     and "### END SOLUTION" not in ln)  # fmt: skip


# ------------------------------------------------------------------ release
def nbgrader_checksum(cell: Any) -> str:
    """nbgrader's cell checksum (nbgrader.utils.compute_checksum, reproduced: no nbgrader needed)."""
    meta = cell.metadata["nbgrader"]
    m = hashlib.md5()
    for part in (cell.source, cell.cell_type, str(meta["grade"]), str(meta["solution"])):
        m.update(part.encode("utf-8"))
    locked = not meta["solution"] and (meta["grade"] or meta["locked"])
    m.update(str(locked).encode("utf-8"))
    m.update(meta["grade_id"].encode("utf-8"))
    if meta["grade"]:
        m.update(str(float(meta["points"])).encode("utf-8"))
    return m.hexdigest()


def _cleared(cell: Any) -> Any:
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    for key in ("execution", "collapsed", "scrolled", "editable", "deletable", "nbgrader"):
        cell.metadata.pop(key, None)
    return cell


def assignment(notebook: Path, root: Path = ROOT) -> tuple[Any, Any]:
    """(student copy, teacher's source version) of one course notebook, as nbformat notebooks."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    found = slots(nb)
    sol_source = solution_path(notebook, root).read_text() if found else ""
    answers = {s.answer: s for s in found if s.answer is not None}
    checkers = {s.checker: s for s in found}
    available = imported_names(nb)
    student, source = copy.deepcopy(nb), copy.deepcopy(nb)
    for nb_ in (student, source):
        nb_.metadata.pop("widgets", None)  # saved widget state belongs to the cleared outputs
        nb_.cells = [_cleared(c) for c in nb_.cells]
    for i, (mine, theirs) in enumerate(zip(student.cells, source.cells, strict=True)):
        if i in answers:
            meta = {"grade": False, "solution": True, "locked": False,
                    "grade_id": grade_id("answer", answers[i].key)}  # fmt: skip
            theirs.source = filled_answer(theirs.source, sol_source, available)
        elif i in checkers:
            meta = {"grade": True, "solution": False, "locked": True, "points": POINTS,
                    "grade_id": grade_id("test", checkers[i].key)}  # fmt: skip
            mine.source = theirs.source = mine.source.rstrip() + "\n" + assert_line(checkers[i])
        else:
            meta = {"grade": False, "solution": False, "locked": True, "grade_id": f"cell-{i:03d}"}
        for cell in (mine, theirs):
            cell.metadata["nbgrader"] = {**meta, "schema_version": SCHEMA_VERSION}
        # what nbgrader's generate_assignment adds (LockCells, ComputeChecksums)
        mine.metadata["deletable"] = False
        if not meta["solution"]:
            mine.metadata["editable"] = False
        mine.metadata["nbgrader"]["cell_type"] = mine.cell_type
        mine.metadata["nbgrader"]["checksum"] = nbgrader_checksum(mine)
    return student, source


NBGRADER_CONFIG = f'''"""nbgrader configuration written by `python -m labkit classroom release`."""

c = get_config()  # noqa: F821
# generate_assignment replaces each solution region with the course's own stub line, so the
# student copies it makes are the ones in release/.
c.ClearSolutions.code_stub = {{"python": {STUB!r}}}
# Notebooks train small models: give each cell time (seconds) when autograding.
c.Execute.timeout = 600
'''

RELEASE_README = """# Classroom release of the Efficient Deep Learning Lab

Made by `python -m labkit classroom release`. One assignment per notebook.

- `release/<nb>/<nb>.ipynb`: the student copies. Exercise cells are answer cells; each checker
  cell is an autograded test cell worth {points} point(s) that fails until the exercise passes;
  every other cell is read-only. Students need the course installed (`python3 -m labkit
  setup`) so that `import labkit` works; they can work in the copy anywhere.
- `source/<nb>/<nb>.ipynb`: the same with the worked solutions (nbgrader's source version).

**Grading without nbgrader:** collect the copies as `SUBMISSIONS/<student>/<nb>.ipynb`, then
`python -m labkit classroom grade SUBMISSIONS --out gradebook.csv`.

**Grading with nbgrader** (`pip install nbgrader`), in this folder:

    nbgrader generate_assignment <nb> --force   # records the assignment; remakes release/<nb>
    # put each submission in submitted/<student>/<nb>/<nb>.ipynb (or nbgrader collect / zip_collect)
    nbgrader autograde <nb>
    nbgrader export                             # grades.csv
"""


def release(out: Path, notebooks: list[Path] | None = None, root: Path = ROOT) -> list[Path]:
    """Write the student copies and the nbgrader source versions; returns the student copies."""
    import nbformat

    chosen = notebooks if notebooks is not None else notebook_paths(folder=root / "notebooks")
    written = []
    for path in chosen:
        student, source = assignment(path, root)
        for kind, nb in (("release", student), ("source", source)):
            target = out / kind / path.stem / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)
        written.append(out / "release" / path.stem / path.name)
        print(f"{path.name}: {len(slots(student))} exercise(s)")
    (out / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    (out / "README.md").write_text(RELEASE_README.format(points=POINTS))
    print(f"student copies in {out / 'release'}, nbgrader source versions in {out / 'source'}")
    return written


# ------------------------------------------------------------------ the grader's sandbox
# Landlock (Linux >= 5.13): an unprivileged process can give up the right to write outside
# chosen folders, for itself and its children. Syscall numbers are the same on every arch.
_LL_CREATE, _LL_ADD_RULE, _LL_RESTRICT = 444, 445, 446
_LL_WRITE_FILE, _LL_TRUNCATE, _LL_REFER = 1 << 1, 1 << 14, 1 << 13
# remove dir/file, make char/dir/reg/sock/fifo/block/sym
_LL_TREE = sum(1 << b for b in range(4, 13))


def landlock_abi() -> int:
    """The Landlock ABI version of this kernel (0: not available)."""
    if not sys.platform.startswith("linux"):
        return 0
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return max(0, int(libc.syscall(_LL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))))
    except (OSError, AttributeError):
        return 0


def _landlock(writable: list[str]) -> str:
    """Allow this process to write only beneath ``writable`` (and to files in /dev).

    Returns "" when in force, else why not (the copies of the course still protect it).
    """
    import ctypes

    abi = landlock_abi()
    if abi < 1:
        return "Landlock is not available"
    libc = ctypes.CDLL(None, use_errno=True)
    handled = _LL_WRITE_FILE | _LL_TREE | (_LL_REFER if abi >= 2 else 0)
    handled |= _LL_TRUNCATE if abi >= 3 else 0

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = ctypes.c_uint64(handled)  # struct landlock_ruleset_attr, first field only
    ruleset = libc.syscall(_LL_CREATE, ctypes.byref(attr), ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"landlock_create_ruleset failed (errno {ctypes.get_errno()})"
    files_only = (_LL_WRITE_FILE | (_LL_TRUNCATE if abi >= 3 else 0)) & handled
    rules = [(p, handled) for p in writable] + [("/dev", files_only)]
    try:
        for path, access in rules:
            if not os.path.isdir(path):
                continue
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = PathBeneath(access, fd)
                args = (
                    ctypes.c_long(ruleset),
                    ctypes.c_long(1),
                    ctypes.byref(rule),
                    ctypes.c_long(0),
                )
                if libc.syscall(_LL_ADD_RULE, *args) != 0:  # 1: LANDLOCK_RULE_PATH_BENEATH
                    return f"landlock_add_rule({path}) failed (errno {ctypes.get_errno()})"
            finally:
                os.close(fd)
        no_new_privs = (ctypes.c_long(38), ctypes.c_long(1), *(ctypes.c_long(0),) * 3)
        if libc.prctl(*no_new_privs) != 0:  # PR_SET_NO_NEW_PRIVS: required to restrict oneself
            return "prctl(PR_SET_NO_NEW_PRIVS) failed"
        if libc.syscall(_LL_RESTRICT, ctypes.c_long(ruleset), ctypes.c_long(0)) != 0:
            return f"landlock_restrict_self failed (errno {ctypes.get_errno()})"
    finally:
        os.close(ruleset)
    return ""


def _confined_kernel() -> None:
    """The grader's kernel: limits from $LABKIT_GRADE_LIMITS, then an ordinary IPython kernel."""
    import resource

    limits = json.loads(os.environ.pop("LABKIT_GRADE_LIMITS"))
    for name, value in (("RLIMIT_DATA", limits["memory"]), ("RLIMIT_FSIZE", limits["file"]),
                        ("RLIMIT_CORE", 0)):  # fmt: skip
        resource.setrlimit(getattr(resource, name), (value, value))
    if limits["landlock"]:
        why_not = _landlock(limits["writable"])
        if why_not:
            print(f"labkit grader: {why_not}", file=sys.stderr)
    if sys.path and sys.path[0] == "":  # like ipykernel_launcher: not the notebook's folder
        del sys.path[0]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


@dataclass
class Limits:
    """What one submission may use. Sizes in bytes, time in seconds."""

    timeout: float = 600.0  # wall clock for the whole notebook
    memory: int = 6 << 30  # RLIMIT_DATA of the kernel (and of each process it starts)
    file: int = 256 << 20  # RLIMIT_FSIZE: the largest file it may write
    disk: int = 1 << 30  # everything in its folder; the kernel is stopped beyond it
    output: int = 1 << 20  # outputs kept per notebook; the rest is dropped
    landlock: bool = True  # no writes outside its folder, where the kernel supports it


@dataclass
class Outcome:
    """What grading one submission found: per exercise (passed, reason), and the run."""

    results: dict[str, tuple[bool, str]]
    notebook: Any = None  # the executed notebook (outputs capped), for feedback
    notes: list[str] = field(default_factory=list)  # about the run: printed, and the reason
    # of a row with no exercise; those that concern every exercise (outputs cut, no Landlock)
    # also go into the reason of the exercises that passed
    remarks: list[str] = field(default_factory=list)


SETUP_CELL = """\
# Inserted by the grader (python -m labkit classroom grade): records every labkit.checks result.
def __labkit_grade_setup():
    import labkit.core.checks as checks

    seen, check = {}, checks.check

    def recorded(key, fn):
        result = check(key, fn)
        seen.setdefault(key, []).append(result)
        return result

    checks.check = recorded
    return seen


__labkit_grade_results = __labkit_grade_setup()
"""

REPORT_CELL = """\
# Inserted by the grader: what the checker cell above found.
print({nonce!r}, __import__("json").dumps([[r.passed, r.attempted, r.message]
      for r in __labkit_grade_results.pop({key!r}, [])]))
"""


def _tree_bytes(folder: Path) -> int:
    """Disk blocks used beneath ``folder`` (sparse files count what they really use)."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


class _DiskWatch(threading.Thread):
    """Kills the kernel's process group when its folder grows past the limit."""

    def __init__(self, folder: Path, limit: int, pgid: int | None) -> None:
        super().__init__(daemon=True)
        self.folder, self.limit, self.pgid = folder, limit, pgid
        self.tripped, self.done = False, threading.Event()

    def run(self) -> None:
        import signal

        while not self.done.wait(0.25):
            if _tree_bytes(self.folder) > self.limit:
                self.tripped = True
                if self.pgid:
                    try:
                        os.killpg(self.pgid, signal.SIGKILL)
                    except OSError:
                        pass
                return


def _output_size(content: dict) -> int:
    return len(json.dumps(content, default=str))


def _client(nb: Any, km: Any, grader_cells: set[int], cap: int) -> Any:
    from nbclient import NotebookClient

    class GradingClient(NotebookClient):
        """nbclient, keeping at most ``cap`` bytes of the submission's outputs."""

        def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
            if cell_index not in grader_cells and msg["msg_type"] != "error":
                self.spent = getattr(self, "spent", 0) + _output_size(msg["content"])
                if self.spent > cap:
                    if not getattr(self, "cut", False):
                        self.cut = True
                        note = f"[the grader kept the first {cap // 1024} KiB of outputs only]\n"
                        outs.append(_stream(note))
                    return None
            return super().output(outs, msg, display_id, cell_index)

    return GradingClient(
        nb, km=km, allow_errors=True, shutdown_kernel="immediate", record_timing=False,
        startup_timeout=120, iopub_timeout=10,
    )  # fmt: skip


def _stream(text: str) -> Any:
    import nbformat

    return nbformat.v4.new_output("stream", name="stderr", text=text)


def _first_line(text: str, limit: int = 200) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"\x1b\[[0-9;]*m", "", line).lstrip("❌📝✅ ").strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _error_of(cell: Any) -> str:
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            return _first_line(f"{out.ename}: {out.evalue}")
    return ""


def course_slots(notebook_name: str, course: Path = ROOT) -> list[Slot] | None:
    """The exercises of the course notebook of that name (None: not a course notebook)."""
    import nbformat

    path = course / "notebooks" / notebook_name
    return slots(nbformat.read(path, as_version=4)) if path.exists() else None


def _sandbox(course: Path) -> Path:
    box = Path(tempfile.mkdtemp(prefix="labkit-grade-"))
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for part in COURSE_PARTS:
        if (course / part).is_dir():
            shutil.copytree(course / part, box / "course" / part, ignore=skip)
    for name in ("pyproject.toml",):
        if (course / name).exists():
            shutil.copy2(course / name, box / "course" / name)
    for sub in ("home", "tmp", "cache", "config", "share", "ipython", "kernels/labkit-grade"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    (box / "course" / "notebooks").mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-c",
                 "from labkit.course.classroom import _confined_kernel; _confined_kernel()",
                 "-f", "{connection_file}"],
        "display_name": "labkit grader", "language": "python",
    }  # fmt: skip
    (box / "kernels" / "labkit-grade" / "kernel.json").write_text(json.dumps(spec))
    return box


def _kernel_env(box: Path, limits: Limits) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_", "JPY_"))}
    course = str(box / "course")
    env.update(
        PYTHONPATH=os.pathsep.join([course, *filter(None, [env.get("PYTHONPATH")])]),
        HOME=str(box / "home"), TMPDIR=str(box / "tmp"), XDG_CACHE_HOME=str(box / "cache"),
        XDG_CONFIG_HOME=str(box / "config"), XDG_DATA_HOME=str(box / "share"),
        IPYTHONDIR=str(box / "ipython"), MPLCONFIGDIR=str(box / "cache"),
        LABKIT_QUIET="1", LABKIT_PROGRESS="off", LABKIT_PROGRESS_DIR=str(box / "share"),
        PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1",
        LABKIT_GRADE_LIMITS=json.dumps({
            "memory": limits.memory, "file": limits.file, "landlock": limits.landlock,
            "writable": [str(box), "/dev/shm"],
        }),
    )  # fmt: skip
    return env


def _prepare(nb: Any, expected: list[Slot], course_nb: Any, nonce: str) -> tuple[Any, dict, dict]:
    """The submission with the course's checker cells, the grader's setup and report cells.

    Returns the notebook to run, {key: (report, checker, answer) cell indices in it} and
    {index in it: index in the submission}.
    """
    import nbformat

    canonical = {s.key: course_nb.cells[s.checker].source for s in expected}
    out = copy.deepcopy(nb)
    out.cells = [nbformat.v4.new_code_cell(SETUP_CELL)]
    where: dict[str, tuple[int, int, int | None]] = {}
    original: dict[int, int] = {}
    moved: dict[int, int] = {}
    mine = {s.checker: s for s in slots(nb)}
    for i, cell in enumerate(nb.cells):
        cell = copy.deepcopy(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        moved[i], original[len(out.cells)] = len(out.cells), i
        out.cells.append(cell)
        s = mine.get(i)
        if s is not None and s.key in canonical and s.key not in where:
            cell.source = canonical[s.key]
            answer = None if s.answer is None else moved[s.answer]
            where[s.key] = (len(out.cells), len(out.cells) - 1, answer)
            out.cells.append(nbformat.v4.new_code_cell(REPORT_CELL.format(nonce=nonce, key=s.key)))
    return out, where, original


def grade_notebook(path: Path, limits: Limits | None = None, course: Path = ROOT) -> Outcome:
    """Run one submission in its own sandbox and say which of its exercises pass, and why not."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    limits = limits or Limits()
    expected = course_slots(path.name, course)
    if expected is None:
        return Outcome({}, notes=["not a notebook of this course"])
    try:
        submitted = nbformat.read(path, as_version=4)
    except Exception as exc:  # not JSON, not a notebook
        why = f"not a readable notebook ({type(exc).__name__}: {_first_line(str(exc))})"
        return Outcome({s.key: (False, why) for s in expected})
    course_nb = nbformat.read(course / "notebooks" / path.name, as_version=4)
    nonce = "labkit-grade-" + secrets.token_hex(8)
    nb, where, original = _prepare(submitted, expected, course_nb, nonce)
    grader_cells = {0} | {w[0] for w in where.values()}
    last = max((w[0] for w in where.values()), default=0)
    box = _sandbox(course)
    work = box / "course" / "notebooks"
    nbformat.write(submitted, work / path.name)  # where the learner's notebook would be
    stopped, notes, remarks, completed, stop_index = "", [], [], set(), -1
    ksm = KernelSpecManager(kernel_dirs=[str(box / "kernels")])
    km = AsyncKernelManager(kernel_name="labkit-grade", kernel_spec_manager=ksm)
    client = _client(nb, km, grader_cells, limits.output)
    deadline = time.monotonic() + limits.timeout
    watch = None
    stack = contextlib.ExitStack()
    try:
        log = stack.enter_context((box / "kernel.log").open("wb"))  # the kernel's own messages
        env = _kernel_env(box, limits)
        with client.setup_kernel(cleanup_kc=True, env=env, cwd=str(work), stdout=log, stderr=log):
            watch = _DiskWatch(box, limits.disk, getattr(km.provisioner, "pgid", None))
            watch.start()
            for index, cell in enumerate(nb.cells[: last + 1]):
                if cell.cell_type != "code":
                    continue
                where_ = (
                    f"cell {original[index] + 1} (`{_first_line(cell.source, 50)}`)"
                    if index in original
                    else "the grader's own cell"
                )
                left = deadline - time.monotonic()
                if left <= 0:
                    stopped = f"the notebook ran out of its {limits.timeout:g} s before {where_}"
                    break
                client.timeout = max(1, math.ceil(left))
                try:
                    client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
                    completed.add(index)
                except CellTimeoutError:
                    stopped = f"the notebook ran out of its {limits.timeout:g} s in {where_}"
                except DeadKernelError:
                    stopped = f"the kernel died in {where_} (sys.exit/os._exit, a crash, memory)"
                if watch.tripped:
                    stopped = f"it wrote more than {limits.disk >> 20} MiB to disk in {where_}"
                if stopped:
                    stop_index = index
                    break
    except Exception as exc:  # the kernel did not start, or the grader's own failure
        if not stopped:
            stopped = f"the grader could not run it ({type(exc).__name__}: {_first_line(str(exc))})"
    finally:
        stack.close()
        if watch is not None:
            watch.done.set()
            if watch.tripped and "disk" not in stopped:
                stopped = f"it wrote more than {limits.disk >> 20} MiB to disk"
        try:
            said = (box / "kernel.log").read_text(errors="replace")
            remarks += re.findall(r"labkit grader: (.+)", said)  # e.g. no Landlock there
        except OSError:
            pass
        shutil.rmtree(box, ignore_errors=True)
    if getattr(client, "cut", False):
        remarks.append(f"outputs over {limits.output // 1024} KiB were not kept")
    if stopped:
        notes.append(stopped)
    stop = (stop_index, stopped)
    return Outcome({s.key: _verdict(s.key, nb, where, completed, nonce, stop) for s in expected},
                   nb, remarks + notes, remarks)  # fmt: skip


def _verdict(key: str, nb: Any, where: dict, completed: set[int], nonce: str,
             stop: tuple[int, str]) -> tuple[bool, str]:  # fmt: skip
    """(passed, reason) of one exercise, from the report cell after its checker cell."""
    if key not in where:
        return False, "its checker cell is missing from the submission"
    report, checker, answer = where[key]
    for out in nb.cells[report].get("outputs", []):
        if out.output_type == "stream" and nonce in out.text:
            line = next(ln for ln in out.text.splitlines() if nonce in ln)
            results = json.loads(line.split(nonce, 1)[1])
            if results:
                passed, attempted, message = results[0]
                if passed:
                    return True, ""
                if not attempted:
                    return False, "not attempted (the function still raises NotImplementedError)"
                return False, _first_line(message)
    stop_index, stopped = stop
    if checker == stop_index:
        return False, stopped
    if checker not in completed:
        return False, f"not checked: {stopped or 'the checker cell did not run'}"
    broke = _error_of(nb.cells[answer]) if answer is not None else ""
    if broke:
        return False, f"the answer cell raised {broke}"
    return False, f"the checker cell raised {_error_of(nb.cells[checker]) or 'no result'}"


@dataclass(frozen=True)
class Row:
    student: str
    notebook: str
    exercise: str
    passed: bool
    points: float
    reason: str


COLUMNS = ["student", "notebook", "exercise", "passed", "points", "reason"]


def grade(
    submissions: Path,
    out: Path | None = None,
    limits: Limits | None = None,
    course: Path = ROOT,
    feedback: Path | None = None,
) -> list[Row]:
    """Grade SUBMISSIONS/<student>/<notebook>.ipynb, one submission at a time; write the CSV."""
    import nbformat

    rows: list[Row] = []
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    for student in students:
        for path in sorted(student.glob("*.ipynb")):
            t0 = time.monotonic()
            try:
                outcome = grade_notebook(path, limits, course)
            except Exception as exc:  # never stop the run
                outcome = Outcome({}, notes=[f"grader error: {type(exc).__name__}: {exc}"])
            note = "; ".join(outcome.notes)
            if not outcome.results:
                rows.append(Row(student.name, path.name, "", False, 0, note))
            for key, (passed, reason) in outcome.results.items():
                remark = "; ".join(outcome.remarks) if passed else ""
                rows.append(Row(student.name, path.name, key, passed, POINTS if passed else 0,
                                reason or remark))  # fmt: skip
            got = sum(
                r.points for r in rows if (r.student, r.notebook) == (student.name, path.name)
            )
            print(f"{student.name}/{path.name}: {got:g}/{POINTS * len(outcome.results)} points "
                  f"({time.monotonic() - t0:.0f} s){' - ' + note if note else ''}", flush=True)  # fmt: skip
            if feedback is not None and outcome.notebook is not None:
                target = feedback / student.name / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(outcome.notebook, target)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for r in rows:
                writer.writerow(
                    [r.student, r.notebook, r.exercise, r.passed, f"{r.points:g}", r.reason]
                )
    return rows


# ------------------------------------------------------------------ the teacher's guide
GUIDE = ROOT / "docs" / "teachers_guide.md"
WORKSHOP = ["00", "01", "02", "05", "06", "08", "09", "13"]  # the README's one-day path
THREE_DAYS = [
    ("Day 1: measure, then train with less", ["00", "01", "02", "03", "04"]),
    ("Day 2: fewer bits, fewer trips to memory", ["05", "06", "07", "08"]),
    ("Day 3: deploy, generate, scale out", ["09", "10", "11", "12", "13", "interview_prep"]),
]
TEN_WEEKS = [
    ["00", "01"], ["02", "03"], ["04"], ["05"], ["06"], ["07", "08"], ["09", "10"], ["11"],
    ["12"], ["13", "interview_prep"],
]  # fmt: skip
HUMANIZE_END = re.compile(
    r"_(is|are)_(rejected|named|caught|refused|reported)(_as_such)?$|_rejected$"
)


def planted_mistakes(tests: Path = ROOT / "tests") -> dict[str, list[str]]:
    """{exercise key: the wrong answers its tests plant}, read from tests/*/test_exercises_*.py.

    A test counts when it asserts ``not ....passed`` on ``checks.check("key", ...)``. The mistake
    is said by its docstring's first sentence, else by its name
    (``test_floor_instead_of_round_is_rejected``: "floor instead of round"); a test that is
    parametrized with wrong functions, or loops over a list of mistakes, lists them too. The
    words its assertions expect in the checker's message are quoted.
    """
    found: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}  # items of lists already given, per key
    for path in sorted(tests.glob("*/test_exercises_*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            if "not_attempted" in node.name:
                continue
            keys, wrong, says, rejects = [], [], [], False
            for sub in ast.walk(node):
                if _is_check_call(sub):
                    keys.append(sub.args[0].value)
                    if len(sub.args) > 1 and isinstance(sub.args[1], ast.Name):
                        wrong.append(sub.args[1].id)
                if (isinstance(sub, ast.UnaryOp) and isinstance(sub.op, ast.Not)
                        and isinstance(sub.operand, ast.Attribute)
                        and sub.operand.attr == "passed"):  # fmt: skip
                    rejects = True
                if (isinstance(sub, ast.Compare) and isinstance(sub.left, ast.Constant)
                        and isinstance(sub.left.value, str) and isinstance(sub.ops[0], ast.In)
                        and "message" in ast.unparse(sub.comparators[0])):  # fmt: skip
                    says.append(sub.left.value)
            if not keys or not rejects:
                continue
            name = HUMANIZE_END.sub("", node.name.removeprefix("test_")).removesuffix("_and")
            if "solution" in name and wrong:  # a test of the solution that also plants a mistake
                name = wrong[-1]
            doc = " ".join((ast.get_docstring(node) or "").split())
            if re.search(r"issue \d+|must fail|checker|planted", doc, re.I):  # about the tests
                doc = ""
            text = re.split(r"(?<=\.)\s", doc)[0].rstrip(".") if doc else _words(name)
            text = text if len(text) <= 200 else text[:197] + "..."
            listed = _parametrized(node) or _looped(node)
            for key in dict.fromkeys(keys):
                known = seen.setdefault(key, set())
                items = [_words(n) for n in listed if _words(n) not in known]
                known |= set(items)
                if listed and not items:
                    continue
                line = text
                if items:
                    line += ": " + "; ".join(_drop_common_prefix(items))
                if says:
                    line += (
                        " (the checker says "
                        + ", ".join(f"“{x}”" for x in dict.fromkeys(says))
                        + ")"
                    )
                if line not in found.setdefault(key, []):
                    found[key].append(line)
    return found


def _is_check_call(node: ast.AST) -> bool:
    """``checks.check("key", ...)`` (or ``check("key", ...)``) with the key written out."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "check" and isinstance(node.args[0].value, str)


def _words(identifier: str) -> str:
    words = re.sub(r"\s+", " ", re.sub(r"[_-]", " ", identifier)).strip()
    return words.replace("planted mistakes", "mistakes")


def _drop_common_prefix(items: list[str]) -> list[str]:
    """["fold without eps", "fold in place"] -> ["without eps", "in place"]."""
    first = items[0].split(" ")[0]
    if len(items) > 1 and all(i.startswith(first + " ") for i in items):
        return [i[len(first) + 1 :] for i in items]
    return items


def _parametrized(fn: ast.FunctionDef) -> list[str]:
    """The ids, or the wrong functions, a test is parametrized with."""
    for deco in fn.decorator_list:
        if isinstance(deco, ast.Call) and ast.unparse(deco.func).endswith("parametrize"):
            for kw in deco.keywords:
                if kw.arg == "ids" and isinstance(kw.value, ast.List | ast.Tuple):
                    ids = [e.value for e in kw.value.elts if isinstance(e, ast.Constant)]
                    if ids and all(isinstance(i, str) for i in ids):
                        return ids
            values = deco.args[1] if len(deco.args) > 1 else None
            if isinstance(values, ast.List | ast.Tuple):
                names = []
                for v in values.elts:
                    first = v.elts[0] if isinstance(v, ast.Tuple) and v.elts else v
                    if isinstance(first, ast.Name):
                        names.append(first.id)
                return names
    return []


def _looped(fn: ast.FunctionDef) -> list[str]:
    """The string constants a test loops over (``for mistake in ("no_division", ...)``)."""
    literals: dict[str, ast.expr] = {}
    for sub in ast.walk(fn):
        if (
            isinstance(sub, ast.Assign)
            and len(sub.targets) == 1
            and isinstance(sub.targets[0], ast.Name)
        ):
            literals[sub.targets[0].id] = sub.value
    for sub in ast.walk(fn):
        if isinstance(sub, ast.For):
            it = sub.iter
            if (
                isinstance(it, ast.Call)
                and isinstance(it.func, ast.Attribute)
                and it.func.attr == "items"
            ):
                it = it.func.value
            if isinstance(it, ast.Name):
                it = literals.get(it.id, it)
            elts = it.keys if isinstance(it, ast.Dict) else getattr(it, "elts", [])
            names = [
                e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
            if names:
                return names
    return []


def _markdown_section(markdown: str, heading: str) -> str:
    m = re.search(rf"^##\s+{heading}\s*$(.*?)(?=^#{{1,2}}\s|\Z)", markdown, re.M | re.S | re.I)
    return m.group(1) if m else ""


def _bullets(section: str) -> list[str]:
    """The items of the first bullet list of a section (indented lines continue an item)."""
    items: list[str] = []
    for line in section.splitlines():
        if re.match(r"^[-*]\s+", line):
            items.append(re.sub(r"^[-*]\s+", "", line).strip())
        elif items and line.startswith((" ", "\t")) and line.strip():
            items[-1] += " " + line.strip()
        elif items:
            break
    return items


def exercise_minutes(solution_lines: int) -> int:
    """Estimated learner time for one exercise: 5 min + 1.5 min per line of the worked
    solution, rounded up to 5 minutes."""
    return 5 * math.ceil((5 + 1.5 * solution_lines) / 5)


def _solution_lines(notebook: Path, name: str, root: Path) -> int:
    path = solution_path(notebook, root)
    if not path.exists():
        return 0
    source = path.read_text()
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
            lines = source.splitlines()[node.lineno : node.end_lineno]
            return sum(1 for ln in lines if ln.strip() and not ln.strip().startswith("#"))
    return 0


@dataclass
class Chapter:
    stem: str
    title: str
    run_s: float
    objectives: list[str]
    exercises: list[tuple[str, str, int]]  # (key, title, minutes)
    questions: list[str]
    words: int

    @property
    def number(self) -> str:
        return self.stem[:2] if self.stem[:2].isdigit() else self.stem

    @property
    def teach_minutes(self) -> int:
        """Walk-through: reading and discussing the text at ~150 words a minute, plus Run All."""
        return 5 * math.ceil((self.words / 150 + self.run_s / 60) / 5)

    @property
    def exercise_minutes(self) -> int:
        return sum(m for _k, _t, m in self.exercises)


def chapters(root: Path = ROOT) -> list[Chapter]:
    """What the guide says of each notebook, read from the notebook and its neighbours."""
    import nbformat

    from labkit.interview import bank

    times_file = root / "notebooks" / "build_times.json"
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    by_stem: dict[str, list[str]] = {}
    for q in bank.questions(root / "notebooks"):
        by_stem.setdefault(q.notebook, []).append(re.sub(r"^Q\d+\.\s*", "", q.question))
    out = []
    for path in notebook_paths(folder=root / "notebooks"):
        nb = nbformat.read(path, as_version=4)
        markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        title = re.search(r"^#\s+(.+)$", markdown, re.M)
        titles = re.findall(r"^###\s+Exercise\s+\d+\s*:\s*(.+)$", markdown, re.M)
        found = slots(nb)
        exercises = []
        for i, s in enumerate(found):
            name = titles[i].strip() if len(titles) == len(found) else s.key
            name = name[:1].upper() + name[1:]
            exercises.append((s.key, name, exercise_minutes(_solution_lines(path, s.name, root))))
        out.append(Chapter(
            stem=path.stem, title=title.group(1).strip() if title else path.stem,
            run_s=float(times.get(path.name, 0.0)),
            objectives=_bullets(_markdown_section(markdown, "Learning objectives")),
            exercises=exercises, questions=by_stem.get(path.stem, []),
            words=len(re.findall(r"\w+", markdown)),
        ))  # fmt: skip
    return out


def gpu_sections(root: Path = ROOT) -> dict[str, list[str]]:
    """{notebook number: the GPU paths `python -m labkit gpu-check` runs for it}."""
    path = root / "labkit" / "course" / "gpu_check.py"
    text = path.read_text() if path.exists() else ""
    found: dict[str, list[str]] = {}
    for nn, label in re.findall(r'\(\s*"(\d\d) ([^"]+)"', text):
        found.setdefault(nn, []).append(label)
    for nn, label in re.findall(r'\(\s*f?"(\d\d) ([^"{]+)', text):
        if label not in found.get(nn, []) and not any(label in x for x in found.get(nn, [])):
            found.setdefault(nn, []).append(label.strip())
    return found


def _hm(minutes: float) -> str:
    minutes = int(round(minutes))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _plan_rows(chosen: list[Chapter], quickest_only: bool = False, budget: int = 0) -> list[str]:
    """A day's table: walk-throughs, the exercises done in class, the rest as homework.

    ``quickest_only``: each notebook's quickest exercise in class. ``budget`` (minutes): the
    longest exercises go to homework until the day fits.
    """
    in_class = {
        c.stem: ([min(c.exercises, key=lambda e: e[2])] if quickest_only and c.exercises
                 else list(c.exercises))
        for c in chosen
    }  # fmt: skip

    def total() -> int:
        return sum(c.teach_minutes + sum(e[2] for e in in_class[c.stem]) for c in chosen)

    if budget:
        for ch, ex in sorted(
            ((c, e) for c in chosen for e in c.exercises), key=lambda ce: -ce[1][2]
        ):
            if total() <= budget:
                break
            in_class[ch.stem].remove(ex)
    rows = ["| notebook | walk-through | exercises in class | homework |", "|---|---|---|---|"]
    for c in chosen:
        done = in_class[c.stem]
        rest = [e for e in c.exercises if e not in done]
        rows.append(
            f"| {c.title} | {c.teach_minutes} min | "
            + (", ".join(f"{t} ({m} min)" for _k, t, m in done) or "-") + " | "
            + (", ".join(t for _k, t, _m in rest) or "-") + " |"
        )  # fmt: skip
    rows.append(f"| **in class** | | **{_hm(total())}** | |")
    return rows


def teachers_guide(root: Path = ROOT) -> str:
    """The teacher's guide, as markdown (``python -m labkit classroom guide`` writes it)."""
    chs = chapters(root)
    by = {c.number: c for c in chs}
    mistakes = planted_mistakes(root / "tests")
    gpu = gpu_sections(root)
    out = [
        "# Teacher's guide",
        "",
        "<!-- Generated by `python -m labkit classroom guide` from the notebooks, "
        "notebooks/build_times.json, the exercise tests and labkit/course/gpu_check.py. "
        "Do not edit by hand: tests/test_classroom.py checks that it is current. -->",
        "",
        "Everything a teacher needs to run the course with a class: how long each notebook "
        "takes, what it teaches, the mistakes learners make in each exercise, questions to "
        "discuss, and plans for a one-day workshop, a three-day course and a ten-week module.",
        "",
        "## Handing out and grading",
        "",
        "- `python -m labkit classroom release OUT` writes the student copies (`OUT/release/`) "
        "with nbgrader's metadata: each exercise is an answer cell, each checker an autograded "
        f"test cell worth {POINTS} point, every other cell read-only; `OUT/source/` holds the "
        "same notebooks with the worked solutions, for `nbgrader generate_assignment` and "
        "`nbgrader autograde` (see `OUT/README.md`).",
        "- Without nbgrader: collect the notebooks as `SUBMISSIONS/<student>/<notebook>.ipynb` "
        "and run `python -m labkit classroom grade SUBMISSIONS --out gradebook.csv`. Each "
        "submission runs in a fresh kernel in its own folder with a copy of the course, with "
        "a time limit (`--timeout`, default 600 s per notebook), a memory limit "
        "(`--memory-gb`, default 6) and a cap on outputs; a submission that hangs, exits, "
        "deletes files, fills the disk or prints megabytes gets zero for what it broke, with "
        "the reason in the CSV. `--feedback DIR` keeps each executed notebook to hand back.",
        "- Learners studying alone see their own progress with `python -m labkit progress`.",
        "",
        "## Time per notebook",
        "",
        "*Run All* is the measured build time on an idle 2-core CPU "
        "(notebooks/build_times.json); on a learner's laptop with a browser open expect up to "
        "3x. *Walk-through* is the time to present and discuss the text (about 150 words a "
        "minute) plus Run All. *Exercises* is an estimate for a learner: 10 minutes plus 2 "
        "minutes per line of the worked solution, per exercise.",
        "",
        "| notebook | Run All | walk-through | exercises | exercise time |",
        "|---|---|---|---|---|",
    ]
    for c in chs:
        out.append(f"| {c.title} | {c.run_s:.0f} s | {c.teach_minutes} min | {len(c.exercises)} | "
                   f"{c.exercise_minutes} min |")  # fmt: skip
    out += ["", "## Notebook by notebook", ""]
    for c in chs:
        out += [f"### {c.title}", "", f"`notebooks/{c.stem}.ipynb` · Run All {c.run_s:.0f} s · "
                f"walk-through {c.teach_minutes} min · exercises {c.exercise_minutes} min", ""]  # fmt: skip
        if c.objectives:
            out += ["**Objectives**", "", *(f"- {o}" for o in c.objectives), ""]
        if c.exercises:
            out += ["**Exercises and the mistakes learners make**", ""]
            for key, title, minutes in c.exercises:
                out.append(f"- **{title}** (`{key}`, about {minutes} min)")
                for m in mistakes.get(key, []):
                    out.append(f"  - {m}")
            out.append("")
        if c.questions:
            out += ["**Discussion questions** (the notebook's interview corner has answers)", ""]
            out += [f"- {q}" for q in c.questions]
            out.append("")
        if c.number in gpu:
            out += [
                "**On a GPU** (`python -m labkit gpu-check`): " + "; ".join(gpu[c.number]) + ".",
                "",
            ]
    workshop = [by[n] for n in WORKSHOP if n in by]
    out += [
        "## Plans",
        "",
        "### One-day workshop (about 6 hours of teaching)",
        "",
        "The README's one-day path. The teacher runs each notebook live and explains it; "
        "learners do each notebook's quickest exercise in class (the checker prints ✅ or a "
        "hint) and the rest as homework, released with `classroom release` and graded with "
        "`classroom grade`. Times are the estimates above.",
        "",
        *_plan_rows(workshop, quickest_only=True),
        "",
        "### Three-day course",
        "",
        "Every notebook. Mornings: walk-throughs; afternoons: exercises in pairs, then a "
        "discussion of the notebook's questions. Where a day would run past 6 h 30 min, its "
        "longest exercises become homework.",
        "",
    ]
    for title, numbers in THREE_DAYS:
        chosen = [by[n] for n in numbers if n in by]
        out += [f"**{title}**", "", *_plan_rows(chosen, budget=390), ""]
    out += [
        "### Ten-week module",
        "",
        "One lecture (the walk-through) and one lab (the exercises) a week; each week's "
        "notebooks are released with `classroom release` and graded with `classroom grade` "
        "(or nbgrader) the week after. Week 10 ends with the capstone and the interview self-quiz.",
        "",
        "| week | notebooks | lecture | lab |",
        "|---|---|---|---|",
    ]
    for week, numbers in enumerate(TEN_WEEKS, 1):
        chosen = [by[n] for n in numbers if n in by]
        out.append(f"| {week} | {', '.join(c.title for c in chosen)} | "
                   f"{sum(c.teach_minutes for c in chosen)} min | "
                   f"{sum(c.exercise_minutes for c in chosen)} min |")  # fmt: skip
    out += [
        "",
        "### The GPU-lab variant",
        "",
        "Everything runs on CPUs; with a CUDA GPU per learner (or per pair) the same plans "
        "gain the GPU sections below. Start the first session with `python -m labkit doctor` "
        "and `python -m labkit gpu-check` on every machine: the table says which GPU paths "
        "work there. Give each GPU section 15-20 minutes in the lab after the notebook's "
        "CPU exercises; on the ten-week module, make them the week's extension task.",
        "",
    ]
    for nn in sorted(gpu):
        if nn in by:
            out.append(f"- **{by[nn].title}**: " + "; ".join(gpu[nn]))
    return "\n".join(out).rstrip() + "\n"


def write_guide(path: Path = GUIDE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(teachers_guide())
    print(f"wrote {path}")
    return path


# ------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labkit classroom", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="student copies and nbgrader source versions")
    p.add_argument("out", type=Path)
    p.add_argument("notebooks", nargs="*", help="only notebooks whose name starts with these")
    g = sub.add_parser("grade", help="grade SUBMISSIONS/<student>/<notebook>.ipynb")
    g.add_argument("submissions", type=Path)
    g.add_argument("--out", type=Path, default=Path("gradebook.csv"))
    g.add_argument("--timeout", type=float, default=Limits.timeout, help="seconds per notebook")
    g.add_argument("--memory-gb", type=float, default=Limits.memory / 2**30, help="GiB")
    g.add_argument("--disk-mb", type=float, default=Limits.disk / 2**20, help="MiB")
    g.add_argument("--output-kb", type=float, default=Limits.output / 2**10, help="KiB")
    g.add_argument("--feedback", type=Path, help="keep each executed notebook here")
    d = sub.add_parser("guide", help="write the teacher's guide")
    d.add_argument("--out", type=Path, default=GUIDE)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "release":
        chosen = notebook_paths(args.notebooks or None)
        if not chosen:
            print(f"no notebook starts with {' or '.join(args.notebooks)}")
            return 2
        release(args.out, chosen)
        return 0
    if args.command == "grade":
        if not args.submissions.is_dir():
            print(f"{args.submissions} is not a folder of SUBMISSIONS/<student>/<notebook>.ipynb")
            return 2
        limits = Limits(
            timeout=args.timeout, memory=int(args.memory_gb * 2**30),
            disk=int(args.disk_mb * 2**20), output=int(args.output_kb * 2**10),
        )  # fmt: skip
        if not landlock_abi():
            print("note: no Landlock here; submissions run on copies of the course, which they "
                  "could still write outside of.")  # fmt: skip
        rows = grade(args.submissions, args.out, limits, feedback=args.feedback)
        print(f"gradebook: {args.out} ({len(rows)} rows)")
        return 0
    write_guide(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
