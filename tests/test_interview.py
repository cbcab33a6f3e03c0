import nbformat

from labkit import interview
from labkit.widgets.quiz import quiz


def _write(tmp_path, name: str, md: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(md)])
    nbformat.write(nb, tmp_path / name)


def test_questions_and_glossary_are_parsed(tmp_path) -> None:
    _write(
        tmp_path,
        "01_x.ipynb",
        "## Interview corner\n**Q1. What?**\n<details><summary>Answer</summary>\n\nThis.\n\n</details>\n"
        "**Q2. Why?**\n<details><summary>Answer</summary>\n\nBecause.\n\n</details>\n"
        "## Key terms\n| English | 中文 | meaning |\n|---|---|---|\n| latency | 延迟 | time |\n",
    )
    _write(
        tmp_path,
        "02_y.ipynb",
        "## Key terms\n| English | 中文 | meaning |\n|---|---|---|\n| Latency | 延时 | dup |\n",
    )
    qs = interview.questions(tmp_path)
    assert [(q.notebook, q.question, q.answer) for q in qs] == [
        ("01_x", "Q1. What?", "This."),
        ("01_x", "Q2. Why?", "Because."),
    ]
    assert interview.glossary(tmp_path) == [
        {"English": "latency", "中文": "延迟", "meaning": "time", "notebook": "01"}
    ]


def test_every_classic_is_demonstrated_in_its_notebook() -> None:
    assert len(interview.CLASSICS) >= 10
    for c in interview.CLASSICS:
        text = interview.notebook_text(c.notebook)
        assert text, f"{c.notebook} does not exist"
        assert c.evidence in text, f"{c.notebook} does not show {c.evidence!r}"


def test_course_questions_are_all_collected() -> None:
    qs = interview.questions()
    per_notebook = {q.notebook for q in qs}
    assert {p.stem for p in interview.course_notebooks()} == per_notebook
    assert all(q.answer for q in qs)


def test_quiz_hides_answer_until_revealed() -> None:
    q = quiz([("t", "What is 1+1?", "`2`"), ("t", "Capital?", "Paris")])
    assert "Think first" in q.answer.value
    q.reveal.value = True
    assert "<code>2</code>" in q.answer.value
    q.picker.value = 1
    assert not q.reveal.value and "Capital?" in q.question.value and "Think first" in q.answer.value
