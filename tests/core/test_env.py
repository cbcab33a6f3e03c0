import re
import subprocess
import sys

import pytest
import torch

from labkit import env


def test_seed_everything_repeats_random_streams() -> None:
    env.seed_everything(123)
    a = torch.randn(5)
    env.seed_everything(123)
    assert torch.equal(a, torch.randn(5))


def test_threads_context_restores() -> None:
    old = torch.get_num_threads()
    with env.threads(1) as n:
        assert n == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == old


def test_bad_thread_count_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        env.set_threads(0)


def test_cpu_features_match_proc_cpuinfo() -> None:
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    feats = env.cpu_features()
    for name, present in feats.items():
        assert present == (name in flags), name


def test_report_is_consistent_with_torch() -> None:
    rep = env.report()
    assert rep["torch"] == torch.__version__
    assert rep["cuda_available"] == torch.cuda.is_available()
    assert (rep["gpu"] is None) == (not torch.cuda.is_available())
    assert set(rep["packages"]) == set(env.OPTIONAL_PACKAGES)


def test_gpu_cells_skip_without_cuda() -> None:
    rep = env.report() | {"cuda_available": False}
    assert all(not runs for _, runs, _ in env.gpu_cells(rep))


def test_doctor_command_prints_report() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "labkit", "doctor"], capture_output=True, text=True, check=True
    ).stdout
    assert f"torch             {torch.__version__}" in out
    avx2 = "yes" if env.cpu_features()["avx2"] else "no"
    assert re.search(rf"avx2={avx2}\b", out)
    gpu_line = "runs " if torch.cuda.is_available() else "skip "
    assert f"[{gpu_line}] 01 CUDA autocast fp16 + GradScaler" in out


def test_doctor_usage_on_unknown_command() -> None:
    res = subprocess.run([sys.executable, "-m", "labkit", "nope"], capture_output=True, text=True)
    assert res.returncode == 2 and "usage" in res.stdout


def test_doctor_flags_kernels_importing_labkit_from_another_folder(monkeypatch, tmp_path) -> None:
    from labkit.core import env as env_mod

    monkeypatch.setattr(env_mod, "kernel_labkit_dir", lambda: env_mod.ROOT / "labkit")
    assert not any("kernels import labkit" in p for p in env_mod.problems())
    monkeypatch.setattr(env_mod, "kernel_labkit_dir", lambda: tmp_path / "original" / "labkit")
    found = [p for p in env_mod.problems() if "kernels import labkit" in p]
    assert found and str(tmp_path / "original") in found[0] and "labkit setup" in found[0]


def test_kernel_labkit_dir_is_where_a_fresh_python_imports_it() -> None:
    from labkit.core import env as env_mod

    assert env_mod.kernel_labkit_dir() == (env_mod.ROOT / "labkit").resolve()
