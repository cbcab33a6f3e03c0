"""``python3 -m labkit setup | test | reset``: the course's set-up and test commands.

Standard library only: ``setup`` runs before anything is installed. Both commands work where
pip refuses system-wide installs (PEP 668): they make and use a virtual environment, .venv/,
in the repository root. The environment is tied to this folder (labkit is installed editable
from it): a second clone needs its own ``setup``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

from labkit.core.paths import ROOT, notebook_paths

VENV = ROOT / ".venv"
CPU_WHEELS = "https://download.pytorch.org/whl/cpu"
# Another CPU's instruction set, forced at process start: checked notebook outputs must not move.
FORCED_ISA = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
}
# JupyterLab saves widget state with the notebook, so a reopened notebook shows its figures.
LAB_OVERRIDES = {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}


def _python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _in_our_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _run(cmd: list[str], **kw: object) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, **kw).returncode  # type: ignore[call-overload]


def _reachable(url: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except Exception:
        return False


def _has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia").exists()


def setup(args: list[str]) -> int:
    """Make .venv, install the course into it, then open JupyterLab (``--no-lab``: don't)."""
    if not _python().exists():
        print(f"Creating the virtual environment {VENV.name}/ ...", flush=True)
        try:
            venv.create(VENV, with_pip=True)
        except Exception as exc:  # Debian/Ubuntu without python3-venv
            print(
                f"Could not create {VENV}: {exc}\n"
                "On Debian/Ubuntu install the venv module first: sudo apt install python3-venv"
            )
            return 1
    py = _python()
    pip = [py, "-m", "pip", "--disable-pip-version-check"]
    if _run([*pip, "install", "-q", "--upgrade", "pip"]) != 0:
        return 1
    has_torch = subprocess.run([py, "-c", "import torch"], capture_output=True).returncode == 0
    if not has_torch and not _has_nvidia_gpu():
        # No NVIDIA GPU: the CPU build of torch (~200 MB) instead of the CUDA build (several GB).
        if _reachable(CPU_WHEELS + "/torch/"):
            _run([*pip, "install", "-q", "torch", "--index-url", CPU_WHEELS])
        else:
            print(f"note: {CPU_WHEELS} is not reachable; torch comes from the default index.")
    if _run([*pip, "install", "-q", "-r", "requirements.txt"]) != 0:
        print("pip could not install requirements.txt; see the message above.")
        return 1
    settings = VENV / "share/jupyter/lab/settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES, indent=1) + "\n")
    _run([py, "-m", "labkit", "doctor"])
    if "--no-lab" in args:
        print(f"Ready. Activate with: source {VENV.name}/bin/activate")
        return 0
    lab = [py, "-m", "jupyter", "lab", "notebooks/00_setup_and_measurement.ipynb"]
    return _run(lab)


def test(args: list[str]) -> int:
    """Every test (pytest: unit, notebooks, browser), then the notebooks again on another
    instruction set. ``--native-only`` skips the second pass; other arguments go to pytest."""
    py = _python() if _python().exists() else Path(sys.executable)
    extra = [a for a in args if a != "--native-only"]
    rc = _run([py, "-m", "pytest", *extra])
    if "--native-only" in args:
        return rc
    print("\nNotebooks again with another CPU's instruction set forced:", FORCED_ISA, flush=True)
    rc2 = _run([py, "-m", "pytest", "notebooks"], env={**os.environ, **FORCED_ISA})
    return rc or rc2


def reset(args: list[str]) -> int:
    """Put notebooks back to the course's version (git), keeping the learner's copy in my_work/.

    ``python -m labkit reset 05`` (one), ``reset --all``. Run it before ``git pull`` so the
    pull never conflicts with your own edits and outputs.
    """
    nbs = notebook_paths(folder=ROOT / "notebooks")
    chosen = nbs if "--all" in args else [p for p in nbs if any(p.name.startswith(a) for a in args)]
    if not chosen:
        print("usage: python -m labkit reset NN [NN ...] | --all   (NN: the notebook's number)")
        return 2
    mine = ROOT / "my_work"
    mine.mkdir(exist_ok=True)
    for p in chosen:
        rel = p.relative_to(ROOT).as_posix()
        changed = subprocess.run(["git", "diff", "--quiet", "--", rel], cwd=ROOT).returncode != 0
        if changed:
            shutil.copy2(p, mine / p.name)
            subprocess.run(["git", "checkout", "--", rel], cwd=ROOT, check=True)
            print(f"{p.name}: reset; your version is in my_work/{p.name}")
        else:
            print(f"{p.name}: unchanged")
    return 0
