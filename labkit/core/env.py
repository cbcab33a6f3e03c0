"""Environment: seeds, threads, device and a capability report (the 'doctor').

Every notebook starts with ``labkit.env.setup()`` so two runs print the same checked
numbers: fixed seeds, a fixed thread count, deterministic algorithms where torch has them.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import platform
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from labkit.core.errors import check_int
from labkit.core.paths import ROOT

OPTIONAL_PACKAGES = ("onnx", "onnxruntime", "tensorrt", "flash_attn", "xformers", "triton")
CPU_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")
DEFAULT_THREADS = 2


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; optionally ask torch for deterministic kernels.

    Taught in notebooks/00_setup_and_measurement.ipynb, "Setup".
    """
    check_int(seed, "seed", low=0, high=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def set_threads(n: int = DEFAULT_THREADS) -> int:
    """Fix torch's intra-op thread count (timings and float sums depend on it).

    Taught in notebooks/00_setup_and_measurement.ipynb, "2. Why naive timing lies".
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1024:
        raise ValueError(
            f"n (the number of threads) must be a positive integer up to 1024, got {n!r}."
        )
    torch.set_num_threads(n)
    return torch.get_num_threads()


@contextlib.contextmanager
def threads(n: int) -> Iterator[int]:
    """Context manager: run a block with ``n`` torch threads, then restore the old count.

    Taught in notebooks/00_setup_and_measurement.ipynb, "2. Why naive timing lies".
    """
    old = torch.get_num_threads()
    try:
        yield set_threads(n)
    finally:
        torch.set_num_threads(old)


def device(prefer: str = "cuda") -> torch.device:
    """The device to use: CUDA if asked for and available, else CPU."""
    if prefer == "cuda" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules


def quiet() -> bool:
    """True when output must be reproducible (notebook build, pytest): no progress bars."""
    return os.environ.get("LABKIT_QUIET") == "1" or "PYTEST_CURRENT_TEST" in os.environ


def setup(seed: int = 0, threads: int = DEFAULT_THREADS) -> None:
    """First code cell of every notebook: seeds, threads, plot renderer.

    Taught in notebooks/00_setup_and_measurement.ipynb, "Setup".
    """
    seed_everything(seed)
    set_threads(threads)

    import plotly.io as pio  # the MIME renderer JupyterLab, Notebook 7 and VS Code draw; Colab's own

    pio.renderers.default = "colab" if in_colab() else "plotly_mimetype"


def cpu_features() -> dict[str, bool]:
    """Instruction-set extensions of this CPU read from /proc/cpuinfo (Linux).

    Falls back to torch's own view (``torch.backends.cpu.get_cpu_capability()``) elsewhere.

    Taught in notebooks/00_setup_and_measurement.ipynb, "1. The environment doctor".
    """
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        cap = torch.backends.cpu.get_cpu_capability().lower()
        flags = {"avx2"} if "avx2" in cap else set()
        if "avx512" in cap:
            flags |= {"avx2", "avx512f"}
    return {name: name in flags for name in CPU_FLAGS}


def cpu_name() -> str:
    """The CPU model name, as the OS reports it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def optional_packages() -> dict[str, str | None]:
    """Version of each optional package if it imports, else None (it is missing or broken)."""
    found: dict[str, str | None] = {}
    for name in OPTIONAL_PACKAGES:
        try:
            module = importlib.import_module(name)
        except Exception:
            found[name] = None
            continue
        version = getattr(module, "__version__", None)
        if version is None:
            try:
                version = importlib.metadata.version(name.replace("_", "-"))
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
        found[name] = str(version)
    return found


def report() -> dict[str, object]:
    """Everything the course needs to know about this machine, as a dict.

    Taught in notebooks/00_setup_and_measurement.ipynb, "1. The environment doctor".
    """
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_features": cpu_features(),
        "packages": optional_packages(),
    }


def gpu_cells(rep: dict[str, object] | None = None) -> list[tuple[str, bool, str]]:
    """Which GPU-only parts of the course will run here: (part, runs, why)."""
    rep = rep or report()
    cuda = bool(rep["cuda_available"])
    pkgs = rep["packages"]
    assert isinstance(pkgs, dict)
    gpu = "CUDA GPU found" if cuda else "no CUDA GPU"

    def need(pkg: str) -> tuple[bool, str]:
        if not cuda:
            return False, gpu
        return (pkgs.get(pkg) is not None, f"{pkg} {'installed' if pkgs.get(pkg) else 'missing'}")

    parts = [
        ("01 CUDA autocast fp16 + GradScaler", cuda, gpu),
        ("07 torch.compile on CUDA (Triton)", *need("triton")),
        ("08 SDPA flash / memory-efficient backends", cuda, gpu),
        ("08 flash_attn.flash_attn_func", *need("flash_attn")),
        ("08 xformers memory_efficient_attention", *need("xformers")),
        ("09 TensorRT engine (FP16/INT8)", *need("tensorrt")),
    ]
    return [(name, runs, why) for name, runs, why in parts]


def format_report(rep: dict[str, object] | None = None) -> str:
    """The doctor's text: versions, CPU features, optional packages, GPU cells."""
    rep = rep or report()
    feats = rep["cpu_features"]
    pkgs = rep["packages"]
    assert isinstance(feats, dict) and isinstance(pkgs, dict)
    lines = [
        "Efficient Deep Learning Lab - environment doctor",
        f"  Python            {rep['python']}",
        f"  torch             {rep['torch']} (CUDA build: {rep['cuda_version'] or 'none'})",
        f"  CPU               {rep['cpu']} ({rep['cpu_count']} logical cores, "
        f"torch uses {rep['torch_threads']} threads)",
        f"  torch CPU kernels {rep['torch_cpu_capability']}",
        "  CPU features      " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in feats.items()),
        f"  GPU               {rep['gpu'] or 'none (CUDA not available)'}",
        "  optional packages " + ", ".join(f"{k}={v or 'missing'}" for k, v in pkgs.items()),
        "GPU-only cells:",
    ]
    for name, runs, why in gpu_cells(rep):
        lines.append(f"  [{'runs ' if runs else 'skip '}] {name} ({why})")
    return "\n".join(lines)


# ---------------------------------------------------------------- the doctor's verdict
NOTEBOOK_STACK = ("jupyterlab", "ipykernel", "ipywidgets", "plotly", "nbformat")
WIDGET_EXTENSION = "@jupyter-widgets/jupyterlab-manager"


def notebook_stack() -> dict[str, str | None]:
    """Installed version of each package the notebooks and widgets need (None: missing)."""
    found: dict[str, str | None] = {}
    for name in NOTEBOOK_STACK:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def widget_extension_enabled() -> bool:
    """True when JupyterLab will find the ipywidgets front-end (its labextension folder)."""
    try:
        from jupyter_core.paths import jupyter_path
    except ImportError:
        return False
    for base in jupyter_path("labextensions"):
        if os.path.isdir(os.path.join(base, *WIDGET_EXTENSION.split("/"))):
            disabled = os.path.join(os.path.dirname(base), "lab", "settings", "page_config.json")
            try:
                import json

                with open(disabled) as f:
                    if json.load(f).get("disabledExtensions", {}).get(WIDGET_EXTENSION):
                        return False
            except (OSError, ValueError):
                pass
            return True
    return False


def problems(rep: dict[str, object] | None = None) -> list[str]:
    """What stops the course from running here, each with its fix (empty: ready)."""
    out = []
    for name, version in notebook_stack().items():
        if version is None:
            out.append(f"{name} is missing: pip install -r requirements.txt")
    if not widget_extension_enabled():
        out.append(
            "the ipywidgets JupyterLab extension is not found or disabled: pip install "
            "'ipywidgets>=8.1' (and `jupyter labextension enable @jupyter-widgets/jupyterlab-manager`)"
        )
    pkgs = (rep or {}).get("packages") or optional_packages()
    for name in ("onnx", "onnxruntime"):
        if isinstance(pkgs, dict) and pkgs.get(name) is None:
            out.append(f"{name} is missing: pip install -r requirements.txt")
    kernel_labkit = kernel_labkit_dir()
    if kernel_labkit is not None and kernel_labkit != ROOT / "labkit":
        out.append(
            f"notebook kernels import labkit from {kernel_labkit}, not from this folder "
            f"({ROOT}): run `python3 -m labkit setup` here (each clone or copy has its own .venv)"
        )
    return out


def kernel_labkit_dir() -> Path | None:
    """Where a kernel of this Python imports labkit from (run from a neutral folder, as Jupyter
    kernels are): the installed (editable) copy, which can differ from the folder running this
    code when a clone was copied with its .venv. None when labkit is not installed."""
    import subprocess
    import tempfile

    code = "import os, labkit; print(os.path.dirname(os.path.abspath(labkit.__file__)))"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tempfile.gettempdir(), capture_output=True, text=True
    )
    return Path(run.stdout.strip()).resolve() if run.returncode == 0 else None


def doctor() -> int:
    """Print the report and a one-line verdict; 0 when the course is ready to run.

    Taught in notebooks/00_setup_and_measurement.ipynb, "1. The environment doctor".
    """
    rep = report()
    print(format_report(rep))
    stack = notebook_stack()
    print("  notebook stack    " + ", ".join(f"{k}={v or 'MISSING'}" for k, v in stack.items()))
    print(f"  widget extension  {'enabled' if widget_extension_enabled() else 'NOT FOUND'}")
    print(f"  labkit here       {ROOT / 'labkit'}")
    print(f"  kernels import    {kernel_labkit_dir() or 'labkit is not installed in this Python'}")
    todo = problems(rep)
    if todo:
        print("NOT READY - fix: " + "; ".join(todo))
        return 1
    gpu = "with" if rep["cuda_available"] else "without"
    print(f"READY: the course runs here ({gpu} a CUDA GPU).")
    return 0


# ---------------------------------------------------------------- INT8 kernels of this CPU
def has_vnni(features: dict[str, bool] | None = None) -> bool:
    """True where the CPU has VNNI (vpdpbusd accumulates u8*s8 in int32: no int16 overflow)."""
    f = features if features is not None else cpu_features()
    return bool(f.get("avx512_vnni") or f.get("avx_vnni"))


def int8_kernel_note(features: dict[str, bool] | None = None) -> str:
    """Which int8 dot-product instruction this CPU has, in one sentence.

    AVX2:        vpmaddubsw (u8 x s8 -> pairs summed to s16, saturating) + vpmaddwd (-> s32)
                 + vpaddd: 3 instructions per 32 byte-products, with a s16 overflow risk.
    AVX512-VNNI: vpdpbusd: u8 x s8, 4 products summed into each s32 lane, accumulated,
                 1 instruction per 64 byte-products, no intermediate saturation.
    """

    f = features if features is not None else cpu_features()
    if f.get("avx512_vnni"):
        return "AVX512-VNNI: vpdpbusd does 64 u8*s8 products + accumulation in one instruction."
    if f.get("avx_vnni"):
        return "AVX-VNNI: vpdpbusd on 256-bit registers (32 u8*s8 products per instruction)."
    if f.get("avx2"):
        return "AVX2 only: vpmaddubsw + vpmaddwd + vpaddd, three instructions per 32 products."
    return "No AVX2: int8 kernels fall back to generic code; expect little or no INT8 speed-up."
