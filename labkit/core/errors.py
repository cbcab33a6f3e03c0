"""Clear errors for bad input and missing optional pieces.

Every public labkit function checks its input with these helpers, so a learner sees
one sentence that says what to do instead of a stack trace from deep inside torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch


class MissingDependency(ImportError):
    """An optional package or a GPU is missing; the message says how to get it."""


def require(module: str, pip_name: str | None = None, why: str = "") -> ModuleType:
    """Import ``module`` or raise MissingDependency with the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken native library behind it
        what = f" ({why})" if why else ""
        raise MissingDependency(
            f"'{module}' is not importable{what}: {type(exc).__name__}: {exc}. "
            f"Install it with `pip install {pip_name or module}` "
            "(GPU extras: `pip install -r requirements-gpu.txt`)."
        ) from None


def require_cuda(what: str) -> torch.device:
    """Return the CUDA device, or raise MissingDependency naming the GPU-only feature."""
    if not torch.cuda.is_available():
        raise MissingDependency(
            f"{what} needs an NVIDIA GPU with CUDA, and torch sees none on this machine. "
            "Run this part on a GPU machine (e.g. Colab: Runtime > Change runtime type > GPU)."
        )
    return torch.device("cuda")


def check_tensor(
    x: object,
    name: str = "x",
    *,
    floating: bool = True,
    ndim: int | tuple[int, ...] | None = None,
) -> torch.Tensor:
    """Check that ``x`` is a torch.Tensor (floating point if asked, with the given ndim)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}; "
            f"convert it with torch.as_tensor({name}, dtype=torch.float32)."
        )
    if floating and not x.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor, got dtype {x.dtype}; use {name}.float()."
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if x.ndim not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                f"got shape {tuple(x.shape)}."
            )
    return x


def check_bits(bits: object, low: int = 2, high: int = 16) -> int:
    """Check an integer bit width in [low, high]."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not low <= bits <= high:
        raise ValueError(f"bits must be an integer from {low} to {high}, got {bits!r}.")
    return bits


def check_positive(value: object, name: str) -> float:
    """Check a real number > 0 (a scale, a temperature, a learning rate...)."""
    v = float(value.min()) if isinstance(value, torch.Tensor) else value
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}.")
    return float(v)


def check_fraction(value: object, name: str, *, include_one: bool = False) -> float:
    """Check a fraction in [0, 1) (or [0, 1] with include_one), e.g. a sparsity."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 <= value < 1 or (include_one and value == 1)):
        upper = "1]" if include_one else "1)"
        raise ValueError(f"{name} must be in [0, {upper}, got {value!r}.")
    return float(value)
