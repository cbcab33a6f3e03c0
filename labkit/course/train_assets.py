"""Train the course's bundled checkpoints again and save them as data/<name>.safetensors.

    python -m labkit.course.train_assets            # every checkpoint
    python -m labkit.course.train_assets NAME ...   # only these

A command line over labkit.assets: each topic that ships a checkpoint registers its trainer
there when imported (fixed seeds; the metadata records how it was trained and its quality).
"""

from __future__ import annotations

import sys

# Importing these topics registers their checkpoints (kd_teachers, digit_transformer, char_gpt,
# char_gpt_draft, qat_char_lm).
import labkit.deploy  # noqa: F401
import labkit.distill  # noqa: F401
import labkit.generate.gpt  # noqa: F401
import labkit.generate.speculative  # noqa: F401
import labkit.qat  # noqa: F401
from labkit.core import assets


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or sorted(assets.REGISTRY)
    unknown = set(names) - set(assets.REGISTRY)
    if unknown:
        print(f"unknown assets {sorted(unknown)}; known: {sorted(assets.REGISTRY)}")
        return 2
    for name in names:
        print(f"{name}: {assets.train(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
