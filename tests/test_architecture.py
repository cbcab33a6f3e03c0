"""The import rule of labkit, checked on the source (AST):

- core (shared plumbing) imports no topic and no course tooling;
- a topic imports core and topics taught before it (course order), never a later one;
- no import circles between modules.
A topic's lesson module, its exercises and its widget count as that topic.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from labkit.core import MODULES

LABKIT = Path(__file__).resolve().parent.parent / "labkit"
# Shared plumbing: labkit/core/ (its modules are also reachable as labkit.bench, labkit.env, ...).
CORE = set(MODULES)
# Course order: the notebook that teaches each topic package (interview_prep comes last).
TOPICS = {
    "measure": 0, "precision": 1, "accumulation": 2, "distill": 3, "prune": 4, "quant": 5, "qat": 6,
    "fusion": 7, "attention": 8, "deploy": 9, "edge": 10, "generate": 11, "distributed": 12,
    "pipeline": 13, "interview": 14,
}  # fmt: skip
TOOLING = {"course", "__main__"}


def unit(path: Path, root: Path) -> str:
    """The architectural unit of a labkit source file: 'core', a topic, or tooling."""
    parts = path.relative_to(root).with_suffix("").parts
    if parts[0] in ("core", "__init__"):
        return "core"
    return parts[0]


def kind(name: str) -> str:
    if name == "core" or name in CORE:
        return "core"
    if name in TOOLING:
        return "tooling"
    if name in TOPICS:
        return "topic"
    return "unknown"


def imports(path: Path) -> list[tuple[str, int]]:
    """labkit modules a file imports: ('labkit.quant', line) for each import statement."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("labkit.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "labkit":
                out += [(f"labkit.{a.name}", node.lineno) for a in node.names]
            elif node.module.startswith("labkit."):
                out.append((node.module, node.lineno))
    return out


def target_unit(module: str, root: Path) -> str:
    parts = module.split(".")[1:]
    if not parts or parts[0] in CORE:  # `from labkit import bench`: core by another name
        return "core"
    return unit(root.joinpath(*parts).with_suffix(".py"), root)


def exists(module: str, root: Path) -> bool:
    parts = module.split(".")[1:]
    if parts and parts[0] in CORE | {"MissingDependency", "expect"}:
        return True
    path = root.joinpath(*parts)
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def violations(root: Path = LABKIT) -> list[str]:
    """Every broken rule, one line each: 'file:line: unit -> unit (why)'."""
    found, edges = [], {}
    for path in sorted(root.rglob("*.py")):
        src = unit(path, root)
        for module, line in imports(path):
            dst = target_unit(module, root)
            where = f"{path.relative_to(root.parent)}:{line}: {src} -> {dst}"
            if not exists(module, root):
                found.append(f"{where} (imports {module}, which does not exist)")
                continue
            if dst == src:
                continue
            ks, kd = kind(src), kind(dst)
            if ks == "core" and kd != "core":
                found.append(f"{where} (core must not import a {kd})")
            elif ks == "topic" and kd == "tooling":
                found.append(f"{where} (a topic must not import course tooling)")
            elif ks == "topic" and kd == "topic" and TOPICS[dst] > TOPICS[src]:
                found.append(f"{where} (taught later: {TOPICS[dst]:02d} after {TOPICS[src]:02d})")
            parts = module.split(".")
            real = f"labkit.core.{parts[1]}" if len(parts) == 2 and parts[1] in CORE else module
            edges.setdefault(module_name(path, root), set()).add(real)
    found += [f"import circle: {' -> '.join(c)}" for c in cycles(edges)]
    return found


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Import circles between modules (depth-first search; each reported once)."""
    seen: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cyc = stack[stack.index(node) :] + [node]
            key = frozenset(cyc)
            if key not in seen:
                seen.add(key)
                out.append(cyc)
            return
        for nxt in sorted(edges.get(node, ())):
            visit(nxt, stack + [node])

    for start in sorted(edges):
        visit(start, [])
    return out


def test_labkit_follows_the_import_rule() -> None:
    broken = violations()
    assert not broken, "labkit breaks its import rule:\n" + "\n".join(broken)


def test_the_core_list_is_the_core_folder() -> None:
    files = {p.stem for p in (LABKIT / "core").glob("*.py")} - {"__init__"}
    assert files == CORE, f"labkit/core/__init__.py MODULES differs from the folder: {files ^ CORE}"
    import labkit

    assert all(getattr(labkit, m).__name__ == f"labkit.core.{m}" for m in CORE)


def core_by_the_face(root: Path = LABKIT) -> list[str]:
    """Imports inside labkit that reach core through the package face (`from labkit import
    bench`, `labkit.bench`, `import labkit`) instead of the one spelling `labkit.core...`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module == "labkit" and node.level == 0:
                names = [a.name for a in node.names if a.name in CORE]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                parts = node.module.split(".")
                names = (
                    parts[1:2] if parts[0] == "labkit" and parts[1:2] and parts[1] in CORE else []
                )
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name == "labkit"]
            found += [f"{path.relative_to(root.parent)}:{node.lineno}: {n}" for n in names]
    return found


def test_core_is_imported_one_way() -> None:
    found = core_by_the_face()
    assert not found, "spell core imports `from labkit.core import x`:\n" + "\n".join(found)


def test_a_face_import_of_core_is_caught(copy_of_labkit: Path) -> None:
    lesson = copy_of_labkit / "quant" / "planted.py"
    lesson.write_text("from labkit import bench\nimport labkit\nfrom labkit.env import threads\n")
    found = [f for f in core_by_the_face(copy_of_labkit) if "planted" in f]
    assert [f.split(": ")[1] for f in found] == ["bench", "labkit", "env"]


def test_every_module_has_a_known_place() -> None:
    for path in LABKIT.rglob("*.py"):
        u = unit(path, LABKIT)
        assert kind(u) != "unknown", f"{path}: add {u!r} to CORE, TOPICS or TOOLING"


@pytest.fixture
def copy_of_labkit(tmp_path: Path) -> Path:
    root = tmp_path / "labkit"
    shutil.copytree(LABKIT, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_a_planted_back_import_fails(copy_of_labkit: Path) -> None:
    quant = copy_of_labkit / "quant" / "__init__.py"
    quant.write_text(quant.read_text() + "\nfrom labkit import generate  # planted\n")
    broken = violations(copy_of_labkit)
    assert any(
        "quant/__init__.py" in b and "quant -> generate" in b and "taught later" in b
        for b in broken
    )
    env = copy_of_labkit / "core" / "env.py"
    env.write_text(env.read_text() + "\nfrom labkit import quant  # planted\n")
    assert any(
        "env.py" in b and "core must not import a topic" in b for b in violations(copy_of_labkit)
    )


def test_deleting_a_topic_names_what_depends_on_it(copy_of_labkit: Path) -> None:
    before = set(violations(copy_of_labkit))
    shutil.rmtree(copy_of_labkit / "quant")
    new = set(violations(copy_of_labkit)) - before
    dependents = {b.split(":")[0] for b in new}
    users = {
        f"labkit/{p.relative_to(copy_of_labkit).as_posix()}"
        for p in copy_of_labkit.rglob("*.py")
        if any(target_unit(m, copy_of_labkit) == "quant" for m, _ in imports(p))
        and "quant" not in p.relative_to(copy_of_labkit).parts
    }
    assert new and all("quant" in b and "does not exist" in b for b in new), new
    assert dependents == users, (dependents, users)


# ---------------------------------------------------------------- notebooks and solutions

ROOT = LABKIT.parent


def course_number(path: Path) -> int:
    """The place of a notebook or solution in the course: 05 for 05_*.ipynb / n05_*.py."""
    digits = path.stem.lstrip("n")[:2]
    return int(digits) if digits.isdigit() else max(TOPICS.values())


def code_of(path: Path) -> str:
    """A solution's source, or a notebook's code cells with IPython magics commented out."""
    if path.suffix == ".py":
        return path.read_text()
    import nbformat

    cells = nbformat.read(path, as_version=4).cells
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    return "\n".join(
        "#" + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in code.split("\n")
    )


def topics_used(path: Path) -> set[str]:
    """Topic packages a notebook or solution imports (import labkit.x / from labkit import x)."""
    used = set()
    for node in ast.walk(ast.parse(code_of(path), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labkit"):
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        used |= {n.split(".")[1] for n in names if n.startswith("labkit.") and n.count(".") >= 1}
    return used & set(TOPICS)


def course_files(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("*.ipynb")) + sorted((root / "solutions").glob("n*.py"))


def notebook_violations(root: Path = ROOT, lab: Path = LABKIT) -> list[str]:
    """A notebook or solution may use only topics taught at or before it, and only ones that exist."""
    found = []
    for path in course_files(root):
        for t in sorted(topics_used(path)):
            where = f"{path.relative_to(root)}: uses labkit.{t}"
            if not (lab / t / "__init__.py").exists():
                found.append(f"{where} (which does not exist)")
            elif TOPICS[t] > course_number(path):
                found.append(
                    f"{where} (taught later: {TOPICS[t]:02d} after {course_number(path):02d})"
                )
    return found


def test_notebooks_and_solutions_follow_the_course_order() -> None:
    assert topics_used(ROOT / "notebooks" / "05_quantization_math.ipynb") == {"quant"}
    broken = notebook_violations()
    assert not broken, "\n".join(broken)


def test_deleting_a_topic_and_its_notebook_names_every_notebook_that_needs_it(
    copy_of_labkit: Path,
) -> None:
    shutil.rmtree(copy_of_labkit / "distill")  # 03; later notebooks build on its teachers
    named = {b.split(":")[0] for b in notebook_violations(ROOT, copy_of_labkit)}
    needs = {
        str(p.relative_to(ROOT))
        for p in course_files()
        if "distill" in topics_used(p) and course_number(p) != 3
    }
    assert needs, "expected later notebooks to use labkit.distill"
    assert (
        named - {str(p.relative_to(ROOT)) for p in course_files() if course_number(p) == 3} == needs
    )


def test_a_notebook_using_a_later_topic_fails(tmp_path: Path) -> None:
    import nbformat

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "solutions").mkdir()
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("%time 1\nfrom labkit import quant")]
    )
    nbformat.write(nb, tmp_path / "notebooks" / "02_planted.ipynb")
    (tmp_path / "solutions" / "n04_planted.py").write_text("import labkit.generate.gpt\n")
    assert notebook_violations(tmp_path) == [
        "notebooks/02_planted.ipynb: uses labkit.quant (taught later: 05 after 02)",
        "solutions/n04_planted.py: uses labkit.generate (taught later: 11 after 04)",
    ]
