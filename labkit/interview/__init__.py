"""Interview prep (notebooks/interview_prep.ipynb):
- ``bank.py``: every notebook's interview questions and key terms, read from the notebooks
  themselves, and the ten classic questions with the notebook that demonstrates each answer.
- ``widget.py``: the self-quiz.
"""

from labkit.interview.bank import (
    CLASSICS,
    NOTEBOOKS,
    Classic,
    Question,
    course_notebooks,
    glossary,
    notebook_text,
    parse_key_terms,
    questions,
    split_row,
)

__all__ = [
    "CLASSICS", "NOTEBOOKS", "Classic", "Question", "course_notebooks", "glossary",
    "notebook_text", "parse_key_terms", "questions", "split_row",
]  # fmt: skip
