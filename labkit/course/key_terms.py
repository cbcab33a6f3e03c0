"""Write every Key-terms table's 繁體 column from its 简体 column (OpenCC s2twp + a phrase table).

    python -m labkit.course.key_terms          # rewrite the notebooks' tables in place
    python -m labkit.course.key_terms --check  # exit 1 if a table differs from the conversion

OpenCC's s2twp (simplified -> Taiwan, with Taiwan phrases) does most of the work; PHRASES fixes
what it gets wrong for this course's vocabulary (it keeps 進程, 流式, 貪心, 流水線, 並行 and
turns 算子 into 運算元, "operand"). An English term used by several notebooks gets one 简体
form (its first, in course order) and so one 繁體 form everywhere, the interview glossary too.
Only markdown changes: the notebooks' outputs stay as they are.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from labkit.core.errors import require
from labkit.core.paths import notebook_paths

# simplified -> Taiwan usage, applied before OpenCC (longest first)
PHRASES = {
    "数据并行": "資料平行",
    "并行": "平行",
    "进程": "行程",
    "流式": "串流",
    "贪心": "貪婪",
    "流水线": "管線",
    "访存": "記憶體存取",
    "批处理": "批次處理",
    "算子": "運算子",
    "激活": "激活",
    "显存": "顯示記憶體",
    "帕累托前沿": "帕雷托前緣",
    "质量": "品質",
}
# mainland terms that must not appear in a 繁體 column (tests/test_key_terms.py)
MAINLAND = ("緩存", "服務器", "數據並行", "進程", "優化器", "流式", "貪心", "流水線", "訪存",
            "批處理", "提示學習", "並行", "運算元")  # fmt: skip
HEADER = re.compile(r"^\|\s*English\s*\|\s*简体\s*\|\s*繁體\s*\|")


def to_traditional(simplified: str, convert) -> str:
    """简体 -> 繁體 (Taiwan): the phrase table first, OpenCC s2twp for the rest."""
    keys = sorted(PHRASES, key=len, reverse=True)
    parts = re.split("(" + "|".join(map(re.escape, keys)) + ")", simplified)
    return "".join(PHRASES[p] if p in PHRASES else convert(p) for p in parts if p)


def table_rows(source: str):
    """(line index, cells) of each row of each Key-terms table in a markdown cell."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if HEADER.match(line):
            for j in range(i + 2, len(lines)):
                if not lines[j].startswith("|"):
                    break
                yield j, [c.strip() for c in lines[j].strip().strip("|").split("|")]


def rewrite(paths: list[Path], convert) -> list[str]:
    """Rewrite the tables in place; return the rows that changed ('file: English')."""
    first_simplified: dict[str, str] = {}
    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        dirty = False
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            lines = cell.source.split("\n")
            for j, cells in table_rows(cell.source):
                english, simplified = (
                    cells[0],
                    first_simplified.setdefault(cells[0].lower(), cells[1]),
                )
                new = [english, simplified, to_traditional(simplified, convert), *cells[3:]]
                if new != cells:
                    lines[j] = "| " + " | ".join(new) + " |"
                    changed.append(f"{path.name}: {english}")
            if "\n".join(lines) != cell.source:
                cell.source, dirty = "\n".join(lines), True
        if dirty:
            nbformat.write(nb, path)
    return changed


def main(argv: list[str]) -> int:
    opencc = require("opencc", "opencc", why="the 简体 -> 繁體 conversion of the key terms")
    convert = opencc.OpenCC("s2twp").convert
    paths = notebook_paths()
    if "--check" in argv:
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            copies = [Path(shutil.copy(p, tmp)) for p in paths]
            changed = rewrite(copies, convert)
        print("\n".join(changed) or "every Key-terms table matches the conversion")
        return 1 if changed else 0
    changed = rewrite(paths, convert)
    print(f"{len(changed)} rows rewritten" + "".join(f"\n  {c}" for c in changed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
