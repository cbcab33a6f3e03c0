"""The records of the interview page: a notebook's question, a course classic, a source classic.

Each checks its fields when it is made (a frozen dataclass's __post_init__), so a typo in the
question bank (an empty evidence string, a flat (stem, heading) pair) fails at import.
Used by labkit/interview/bank.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    notebook: str
    question: str
    answer: str

    def __post_init__(self) -> None:
        _check_texts(self, "notebook", "question", "answer")


@dataclass(frozen=True)
class Classic:
    question: str
    answer: str
    notebook: str  # stem of the notebook that demonstrates it
    evidence: str  # text that must appear in that notebook

    def __post_init__(self) -> None:
        _check_texts(self, "question", "answer", "notebook", "evidence")


@dataclass(frozen=True)
class SourceClassic:
    """One of the ten classic questions of the course's source material, in three scripts."""

    en: str
    zh_hans: str  # 简体
    zh_hant: str  # 繁體
    answer: str
    sections: tuple[tuple[str, str], ...]  # (notebook stem, heading) that demonstrate it

    def __post_init__(self) -> None:
        _check_source_classic(self)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_texts(item: object, *fields: str) -> None:
    for name in fields:
        value = getattr(item, name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string, got {value!r}.")


def _check_source_classic(item: SourceClassic) -> None:
    _check_texts(item, "en", "zh_hans", "zh_hant", "answer")
    ok = isinstance(item.sections, tuple | list) and bool(item.sections)
    for pair in item.sections if ok else ():
        ok = ok and isinstance(pair, tuple | list) and len(pair) == 2
        ok = ok and all(isinstance(part, str) and part for part in pair)
    if not ok:
        raise ValueError(
            "sections must be a non-empty tuple of (notebook stem, heading) pairs, e.g. "
            f"(('08_flash_attention', '5. IO complexity'),), got {item.sections!r}."
        )
