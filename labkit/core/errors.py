"""Clear errors for bad input and missing optional pieces.

Every public labkit function checks its input with these helpers, so a learner sees
one sentence that says what to do instead of a stack trace from deep inside torch.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable
from types import ModuleType

import numpy as np
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


def check_int(value: object, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """Check an integer (not a bool) in [low, high]; either bound may be None (open)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer{_range(low, high)}, got {value!r}.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer{_range(low, high)}, got {value!r}.")
    return int(value)


def check_number(
    value: object, name: str, *, low: float | None = None, high: float | None = None
) -> float:
    """Check a finite real number (not a bool, not NaN or inf) in [low, high]."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number{_range(low, high)}, got {value!r}.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be a finite real number{_range(low, high)}, got {value!r}.")
    return float(value)


def check_bits(bits: object, low: int = 2, high: int = 16) -> int:
    """Check an integer bit width in [low, high]."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not low <= bits <= high:
        raise ValueError(f"bits must be an integer from {low} to {high}, got {bits!r}.")
    return bits


def check_positive(value: object, name: str) -> float:
    """Check a real number > 0 (a scale, a temperature, a learning rate...); NaN and inf fail."""
    v = float(value.min()) if isinstance(value, torch.Tensor) and value.numel() else value
    ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    if not ok or not 0 < v < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(v)


def check_fraction(value: object, name: str, *, include_one: bool = False) -> float:
    """Check a fraction in [0, 1) (or [0, 1] with include_one), e.g. a sparsity."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 <= value < 1 or (include_one and value == 1)):
        upper = "1]" if include_one else "1)"
        raise ValueError(f"{name} must be in [0, {upper}, got {value!r}.")
    return float(value)


def check_percentile(value: object, name: str = "percentile") -> float:
    """Check a percentile in [0, 100] (99.9 means the 99.9th percentile, not 0.999)."""
    return check_number(value, name, low=0, high=100)


def check_finite(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Check a non-empty tensor with no NaN or inf (sampling, scales, multipliers)."""
    check_nonempty(x, name)
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ValueError(
            f"{name} contains NaN or inf; find where it first appears (torch.isfinite) "
            "and fix that step (a too-large learning rate, a division by zero, an overflow)."
        )
    return x


def check_nonempty(x: object, name: str = "x") -> object:
    """Check a tensor, array or sequence with at least one element."""
    if not isinstance(x, torch.Tensor) and not hasattr(x, "__len__"):
        raise ValueError(f"{name} must be a tensor, array or list, got {type(x).__name__}.")
    size = x.numel() if isinstance(x, torch.Tensor) else len(x)  # type: ignore[arg-type]
    if size == 0:
        raise ValueError(f"{name} is empty; pass at least one element.")
    return x


def check_bool(value: object, name: str, why: str = "") -> bool:
    """Check True or False (not 1, not "no": a non-empty string would count as True)."""
    if not isinstance(value, bool):
        raise ValueError(
            f"{name} must be True or False, got {value!r}" + (f"; {why}" if why else "") + "."
        )
    return value


def check_generator(generator: object, name: str = "generator") -> object:
    """Check a torch.Generator or None (a seed is not one)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"{name} must be a torch.Generator or None, got {generator!r:.40}; for a seed, "
            "pass torch.Generator().manual_seed(seed)."
        )
    return generator


def check_loader(loader: object, name: str = "loader") -> object:
    """Check a DataLoader (or a list) of (x, y) batches; one with a length must not be empty."""
    if isinstance(loader, (str, bytes, dict, torch.Tensor)) or not isinstance(loader, Iterable):
        raise ValueError(
            f"{name} must be a DataLoader of (x, y) batches, got {type(loader).__name__}; "
            "e.g. labkit.data.digits_loaders().train."
        )
    if hasattr(loader, "__len__") and len(loader) == 0:  # type: ignore[arg-type]
        raise ValueError(f"{name} is empty: it yields no batches; pass at least one (x, y) batch.")
    return loader


def check_same_shape(a: torch.Tensor, b: torch.Tensor, names: str = "a, b") -> None:
    """Check two tensors of the same shape (``names`` says which two, for the message)."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}."
        )


def check_model(model: object, name: str = "model") -> torch.nn.Module:
    """Check a torch.nn.Module (not a string, a path or a state dict)."""
    if not isinstance(model, torch.nn.Module):
        hint = " (load it first: labkit.assets.load(...))" if isinstance(model, (str, dict)) else ""
        raise ValueError(f"{name} must be a torch.nn.Module, got {type(model).__name__}{hint}.")
    return model


def check_choice(value: object, name: str, choices: Iterable[object]) -> object:
    """Check that ``value`` is one of ``choices``."""
    options = list(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}.")
    return value


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    return f" <= {high}" if high is not None else ""
