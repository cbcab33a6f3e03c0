"""labkit: the helper package of the Efficient Deep Learning Lab.

Submodules load on first use (``labkit.bench``, ``from labkit import quant``), so the course
commands ``python3 -m labkit setup`` / ``test`` run with the standard library alone, before
torch is installed.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = [
    "bench",
    "checks",
    "data",
    "env",
    "errors",
    "models",
    "plots",
    "train",
    "MissingDependency",
    "expect",
]
_LAZY = {
    "MissingDependency": ("labkit.errors", "MissingDependency"),
    "expect": ("labkit.checks", "expect"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    try:
        return importlib.import_module(f"labkit.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"labkit.{name}":
            raise AttributeError(f"module 'labkit' has no attribute {name!r}") from None
        raise
