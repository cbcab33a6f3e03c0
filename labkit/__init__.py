"""labkit: the helper package of the Efficient Deep Learning Lab.

Layout: ``labkit/core/`` is the shared plumbing (env, errors, data, plots, checks, the widget
base, train, bench, models, assets, probes, onnx); ``labkit/<topic>/`` is one chapter's lesson
(``__init__.py``), its ``exercises.py`` and its ``widget.py``; ``labkit/course/`` is tooling.
A topic imports core and topics taught before it, never a later one (tests/test_architecture.py).

Submodules load on first use (``labkit.bench``, ``from labkit import quant``), so the course
commands ``python3 -m labkit setup`` / ``test`` run with the standard library alone, before
torch is installed.
"""

from __future__ import annotations

import importlib
from typing import Any

from labkit.core import MODULES as _CORE

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
    "MissingDependency": ("labkit.core.errors", "MissingDependency"),
    "expect": ("labkit.core.checks", "expect"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in _CORE:
        return importlib.import_module(f"labkit.core.{name}")
    try:
        return importlib.import_module(f"labkit.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"labkit.{name}":
            raise AttributeError(f"module 'labkit' has no attribute {name!r}") from None
        raise
