"""The key-terms tables: 繁體 is Taiwan usage, one form per English term across the course."""

from __future__ import annotations

from collections import defaultdict

import nbformat
import pytest

from labkit.core.paths import notebook_paths
from labkit.course import key_terms


def rows() -> list[tuple[str, list[str]]]:
    out = []
    for path in notebook_paths():
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                out += [(path.name, cells) for _, cells in key_terms.table_rows(cell.source)]
    return out


def test_every_notebook_has_a_key_terms_table() -> None:
    assert {name for name, _ in rows()} == {p.name for p in notebook_paths()}


def test_no_mainland_term_in_the_traditional_column() -> None:
    bad = [
        f"{nb}: {c[0]} -> {c[2]}" for nb, c in rows() if any(t in c[2] for t in key_terms.MAINLAND)
    ]
    assert not bad, bad


def test_one_traditional_form_per_english_term() -> None:
    forms = defaultdict(set)
    for _, c in rows():
        forms[c[0].lower()].add(c[2])
    assert not {k: v for k, v in forms.items() if len(v) > 1}


def test_the_tables_are_what_the_conversion_script_writes(tmp_path) -> None:
    opencc = pytest.importorskip("opencc", reason="pip install opencc (requirements.txt)")
    convert = opencc.OpenCC("s2twp").convert
    import shutil

    copies = [shutil.copy(p, tmp_path) for p in notebook_paths()]
    from pathlib import Path

    assert key_terms.rewrite([Path(c) for c in copies], convert) == []


def test_the_phrase_table_beats_opencc_where_it_is_wrong() -> None:
    opencc = pytest.importorskip("opencc", reason="pip install opencc (requirements.txt)")
    convert = opencc.OpenCC("s2twp").convert
    assert convert("进程") == "程序"  # OpenCC alone: 'program', not 'process'
    assert key_terms.to_traditional("进程组", convert) == "行程組"
    assert key_terms.to_traditional("算子融合", convert) == "運算子融合"
    assert key_terms.to_traditional("流水线并行的气泡", convert) == "管線平行的氣泡"
