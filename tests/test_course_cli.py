"""The course commands: python -m labkit setup | test | reset | doctor | gpu-check."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import env
from labkit.course import cli, gpu_check

ROOT = Path(__file__).resolve().parent.parent


def test_setup_and_test_need_only_the_standard_library() -> None:
    """`python3 -m labkit setup` runs before torch is installed: the command modules and the
    labkit modules they import (core's paths and progress) use the standard library alone."""
    own = {"labkit/core/paths.py", "labkit/core/progress.py", "labkit/core/__init__.py"}
    for path in ["labkit/course/cli.py", *sorted(own)]:
        tree = ast.parse((ROOT / path).read_text())
        imported = {
            (n.module if isinstance(n, ast.ImportFrom) else a.name)
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            and (not isinstance(n, ast.ImportFrom) or n.module)
            for a in (n.names if isinstance(n, ast.Import) else [n])
        }
        labkit_mods = {m for m in imported if m.split(".")[0] == "labkit"}
        assert {m.replace(".", "/") + ".py" for m in labkit_mods} <= own, (path, labkit_mods)
        outside = {m.split(".")[0] for m in imported - labkit_mods}
        assert outside <= set(sys.stdlib_module_names) | {"__future__"}, (path, outside)
    code = "import sys, labkit, labkit.__main__; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_forced_instruction_set_is_another_cpu() -> None:
    assert cli.FORCED_ISA == {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    }
    assert "--no-lab" in (ROOT / ".ci/run").read_text()
    assert "-m labkit test" in (ROOT / ".ci/run").read_text()


def test_gpu_check_without_gpu_says_so_in_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "no CUDA GPU" in out[0]


def test_gpu_check_rows_report_failures_instead_of_raising(monkeypatch) -> None:
    """On a machine without CUDA every CUDA path must come back as a FAIL/skip row, not a crash."""
    table = gpu_check.rows()
    assert table and all(status in {"ok", "skip", "FAIL"} for _, status, _ in table)
    if not __import__("torch").cuda.is_available():
        assert all(status != "ok" for _, status, _ in table)


def test_doctor_ends_with_a_verdict(capsys) -> None:
    rc = env.doctor()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("READY") if rc == 0 else last.startswith("NOT READY - fix:")
    assert rc == 0, last  # the test environment has the whole notebook stack


def test_doctor_names_what_is_missing(monkeypatch, capsys) -> None:
    monkeypatch.setattr(env, "notebook_stack", lambda: {"jupyterlab": "4.1", "ipywidgets": None})
    monkeypatch.setattr(env, "widget_extension_enabled", lambda: False)
    assert env.doctor() == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "ipywidgets is missing" in last and "extension" in last


def test_reset_keeps_the_learners_copy(tmp_path, monkeypatch) -> None:
    repo = tmp_path / "course"
    (repo / "notebooks").mkdir(parents=True)
    nb = repo / "notebooks/05_quantization_math.ipynb"
    nb.write_text("course version\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "c"], cwd=repo, check=True)
    nb.write_text("my outputs\n")
    monkeypatch.setattr(cli, "ROOT", repo)
    assert cli.reset(["05"]) == 0
    assert nb.read_text() == "course version\n"
    assert (repo / "my_work/05_quantization_math.ipynb").read_text() == "my outputs\n"
    assert cli.reset([]) == 2


@pytest.mark.parametrize("cmd", ["doctor", "gpu-check"])
def test_commands_run(cmd: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "labkit", cmd], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stdout + out.stderr
