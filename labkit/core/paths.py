"""Where the course's files are: the repository root and the notebooks in course order.

Standard library only: the course commands (`python3 -m labkit setup` / `test`) use it before
torch is installed.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: labkit/, notebooks/, data/, ...
NOTEBOOKS = ROOT / "notebooks"
DATA = ROOT / "data"
SOLUTIONS = ROOT / "solutions"


def notebook_paths(prefixes: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """Notebooks in course order (NN_topic.ipynb first, then the rest by name).

    ``prefixes``: only those whose file name starts with one of them ("03", "05_quant").
    """
    paths = sorted(folder.glob("*.ipynb"), key=lambda p: (not re.match(r"\d\d_", p.name), p.name))
    if prefixes:
        paths = [p for p in paths if any(p.name.startswith(x) for x in prefixes)]
    return paths
