"""Shared plumbing that two or more chapters use and that knows no chapter."""

# The core modules; `labkit.<name>` reaches each (labkit/__init__.py), the architecture test
# reads this list. tests/test_architecture.py checks it against the files in this folder.
MODULES = frozenset(
    {"assets", "bench", "checks", "data", "env", "errors", "explorer", "models", "onnx", "paths",
     "plots", "probes", "progress", "train"}
)  # fmt: skip
