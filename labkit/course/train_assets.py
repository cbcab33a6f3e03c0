"""Train the course's bundled checkpoints and save them as data/<name>.safetensors.

    python -m labkit.course.train_assets            # every asset
    python -m labkit.course.train_assets NAME ...   # only these

Each asset is a function in its topic module that trains a model (fixed seed, 2 threads),
saves it with labkit.models.save (accuracy in the metadata) and returns the path.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

# name -> "module:function"; each function trains, saves and returns the checkpoint path.
ASSETS: dict[str, str] = {
    "char_gpt": "labkit.generate.gpt:save_char_gpt",
    "digit_transformer": "labkit.deploy:train_transformer_asset",
    "kd_teachers": "labkit.distill:save_teachers",
}


def resolve(spec: str) -> Callable[[], Path]:
    module, fn = spec.split(":")
    return getattr(importlib.import_module(module), fn)


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or list(ASSETS)
    unknown = set(names) - set(ASSETS)
    if unknown:
        print(f"unknown assets {sorted(unknown)}; known: {sorted(ASSETS)}")
        return 2
    for name in names:
        print(f"{name}: {resolve(ASSETS[name])()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
