"""Set-up and launch files: requirements, Binder, Colab, README badges and map, CI script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from labkit.course.build_notebooks import ROOT, colab_cell_source, notebook_paths, repo_url

PLANNED = [
    "00_setup_and_measurement", "01_mixed_precision", "02_gradient_accumulation",
    "03_knowledge_distillation", "04_pruning", "05_quantization_math", "06_ptq_and_qat",
    "07_operator_fusion", "08_flash_attention", "09_onnx_and_tensorrt", "10_edge_deployment",
    "11_streaming_generation", "12_distributed_training", "13_capstone_pipeline",
]  # fmt: skip


def requirement_lines(path: Path) -> list[str]:
    lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("-")]


def test_requirements_use_ranges_not_pins() -> None:
    for name in ("requirements.txt", "requirements-gpu.txt", "binder/requirements.txt"):
        for line in requirement_lines(ROOT / name):
            assert "==" not in line, f"{name}: exact pin {line!r}; use a version range"
            assert re.search(r">=|<|~=", line), f"{name}: {line!r} has no version range"
    assert "-e ." in (ROOT / "requirements.txt").read_text()


def test_gpu_extras_are_separate() -> None:
    gpu = " ".join(requirement_lines(ROOT / "requirements-gpu.txt"))
    cpu = " ".join(requirement_lines(ROOT / "requirements.txt"))
    for pkg in ("tensorrt", "xformers", "flash-attn"):
        assert pkg in gpu and pkg not in cpu


def test_binder_has_every_runtime_requirement() -> None:
    name = re.compile(r"^[A-Za-z0-9_.-]+")
    test_only = {"pytest", "nbval", "nbclient", "nbformat", "hypothesis", "playwright", "ruff"}
    test_only |= {
        "nbgrader",
        "opencc",
        "sphinx",
        "myst-nb",
        "sphinx-book-theme",
        "sphinx-mathjax-offline",
    }  # tools
    cpu = {name.match(ln).group(0) for ln in requirement_lines(ROOT / "requirements.txt")}
    binder = {name.match(ln).group(0) for ln in requirement_lines(ROOT / "binder/requirements.txt")}
    assert cpu - test_only <= binder
    assert (ROOT / "binder/runtime.txt").read_text().startswith("python-3.")
    post = ROOT / "binder/postBuild"
    assert os.access(post, os.X_OK) and "-e ." in post.read_text()


def test_binder_requirements_resolve_with_pip() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--retries", "0",
         "--timeout", "10", "-r", str(ROOT / "binder/requirements.txt")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Would install" in res.stdout and "torch-" in res.stdout


def test_badges_and_colab_cell_use_the_one_repository_url() -> None:
    url = repo_url()
    slug = url.removeprefix("https://github.com/")
    readme = (ROOT / "README.md").read_text()
    binder = re.findall(r"https://mybinder\.org/v2/gh/([\w.-]+/[\w.-]+)/", readme)
    colab = re.findall(r"https://colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/", readme)
    assert binder and colab, "README needs Binder and Colab badges"
    assert set(binder) == set(colab) == {slug}
    assert url in colab_cell_source()


def test_readme_map_lists_every_planned_notebook() -> None:
    readme = (ROOT / "README.md").read_text()
    present = {p.stem for p in notebook_paths()}
    for stem in PLANNED:
        row = next((ln for ln in readme.splitlines() if ln.startswith("|") and stem in ln), None)
        assert row, f"README notebook map lacks {stem}"
        assert ("planned" in row) == (stem not in present), f"README status of {stem} is stale"
    for cmd in (
        "python3 -m labkit setup",
        "python3 -m labkit test",
        "pip install -r requirements.txt",
        "jupyter lab",
        "pytest",
        "cd ",
    ):
        assert cmd in readme


def readme_commands() -> list[str]:
    """The commands of the README's first code block (clone, set up, test)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    return [ln.split("#")[0].strip() for ln in block.strip().splitlines()]


def test_ci_script_runs_the_readme_commands() -> None:
    """CI does what a learner does after the clone: the README's set-up and test commands."""
    ci = (ROOT / ".ci/run").read_text()
    assert os.access(ROOT / ".ci/run", os.X_OK)
    setup, test = readme_commands()[1:3]
    assert setup == "python3 -m labkit setup" and test == "python3 -m labkit test"
    lines = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert f"{setup} --no-lab" in lines and lines[-1] == test
    assert "apt-get install" in ci and "chromium" in ci
