"""Progress for self-study: recorded on the learner's machine, read back by `labkit progress`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from labkit import checks
from labkit.core import progress
from labkit.core.checks import Case, Exercise
from labkit.core.paths import ROOT


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_PROGRESS_DIR", str(tmp_path))
    monkeypatch.delenv("LABKIT_QUIET", raising=False)
    monkeypatch.delenv("LABKIT_PROGRESS", raising=False)
    return tmp_path / "progress.json"


def test_the_file_lives_outside_the_repository(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("LABKIT_PROGRESS_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert progress.progress_file() == tmp_path / "labkit" / "progress.json"
    assert not progress.progress_file().is_relative_to(ROOT)


def test_an_exercise_run_is_recorded_and_a_pass_is_kept(store, monkeypatch, capsys) -> None:
    spec = Exercise(reference=lambda x: x * 2, cases=lambda: [Case((torch.ones(2),))])
    monkeypatch.setattr(checks, "lookup", lambda key: spec)
    checks.exercise("quant.quantize", lambda x: x * 3)
    assert json.loads(store.read_text())["exercises"]["quant.quantize"]["passed"] is False
    checks.exercise("quant.quantize", lambda x: x + x)
    checks.exercise("quant.quantize", lambda x: x * 3)  # a later miss keeps the earned pass
    saved = json.loads(store.read_text())["exercises"]["quant.quantize"]
    assert saved["passed"] is True and saved["tries"] == 3

    def stub(x):
        raise NotImplementedError

    checks.exercise("quant.dequantize", stub)  # not attempted: nothing recorded
    assert "quant.dequantize" not in json.loads(store.read_text())["exercises"]


def test_nothing_is_recorded_under_tests_and_builds(store, monkeypatch) -> None:
    monkeypatch.setenv("LABKIT_QUIET", "1")
    progress.record_exercise("quant.quantize", True)
    assert not store.exists()


def test_the_report_shows_each_notebook_with_open_exercises(store) -> None:
    keys = progress.course_exercises()
    assert "quant.quantize" in keys["05_quantization_math"]
    progress.record_exercise("quant.quantize", True)
    progress.record_quiz({0: True, 3: False, 5: True}, total=80)
    text = progress.report()
    line = next(ln for ln in text.splitlines() if ln.startswith("05_quantization_math"))
    n = len(keys["05_quantization_math"])
    assert f"1/{n}" in line and "quant.quantize" not in line.split("open:")[1]
    assert "interview quiz: 2 of 80" in text


def test_a_damaged_file_is_set_aside_not_a_crash(store, capsys) -> None:
    store.write_text("{not json")
    progress.record_exercise("quant.quantize", True)
    assert "damaged" in capsys.readouterr().out
    assert json.loads(store.read_text())["exercises"]["quant.quantize"]["passed"]
    assert list(store.parent.glob("progress.damaged-*.json"))


def test_progress_survives_a_kernel_restart_and_reset_clears_it(store) -> None:
    env = {"LABKIT_PROGRESS_DIR": str(store.parent), "PATH": "/usr/bin:/bin"}
    code = (
        "from labkit.core import progress; progress.record_exercise('prune.magnitude_mask', True)"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "labkit", "progress"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    assert any(ln.startswith("04_pruning") and "open:" in ln for ln in out.splitlines())
    assert json.loads(store.read_text())["exercises"]["prune.magnitude_mask"]["passed"]
    subprocess.run(
        [sys.executable, "-m", "labkit", "progress", "--reset"], env=env, cwd=ROOT, check=True
    )
    assert not store.exists()
