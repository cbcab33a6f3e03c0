"""Interview prep (notebooks/interview_prep.ipynb):
- ``bank.py``: every notebook's interview questions and key terms, read from the notebooks
  themselves, the source material's ten classic questions (English, 简体, 繁體) linked to the
  sections that demonstrate them, and the course's own ten classics.
- ``records.py``: Question, Classic, SourceClassic (each checks its fields when made).
- ``widget.py``: the self-quiz and the glossary's filter box.
"""

from labkit.interview.bank import (
    CLASSICS,
    NOTEBOOKS,
    SOURCE_CLASSICS,
    Classic,
    Question,
    SourceClassic,
    course_notebooks,
    glossary,
    notebook_headings,
    notebook_text,
    notebook_titles,
    parse_key_terms,
    questions,
    section_link,
    split_row,
)

__all__ = [
    "CLASSICS", "NOTEBOOKS", "SOURCE_CLASSICS", "Classic", "Question", "SourceClassic",
    "course_notebooks", "glossary", "notebook_headings", "notebook_text", "notebook_titles",
    "parse_key_terms", "questions", "section_link", "split_row",
]  # fmt: skip
