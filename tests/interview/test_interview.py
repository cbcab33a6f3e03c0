import nbformat
import pytest

from labkit import interview
from labkit.interview.widget import quiz


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
        {"English": "latency", "简体": "延迟", "繁體": "", "meaning": "time", "notebook": "01"}
    ]


def test_glossary_keeps_escaped_pipes_in_one_cell(tmp_path) -> None:
    """Issue 14: splitting on every '|' cut $\\mathrm{KL}(P\\|Q)$ in two and left an unclosed $."""
    _write(
        tmp_path,
        "05_q.ipynb",
        "## Key terms\n| English | 中文 | meaning |\n|---|---|---|\n"
        "| KL divergence | KL 散度 | $\\mathrm{KL}(P\\|Q) = \\sum_i p_i \\log(p_i / q_i)$ |\n"
        "| norm | 范数 | $\\|x\\|_2$, the length of x |\n",
    )
    terms = {t["English"]: t for t in interview.glossary(tmp_path)}
    assert (
        terms["KL divergence"]["meaning"] == "$\\mathrm{KL}(P\\|Q) = \\sum_i p_i \\log(p_i / q_i)$"
    )
    assert terms["norm"]["meaning"] == "$\\|x\\|_2$, the length of x"
    assert all(t["meaning"].count("$") % 2 == 0 for t in terms.values())  # every $ closed
    assert interview.split_row("| a | b \\| c | d |") == ["a", "b \\| c", "d"]


def test_glossary_reads_the_four_column_form_with_both_scripts(tmp_path) -> None:
    _write(
        tmp_path,
        "01_a.ipynb",
        "## Key terms\n| English | 简体 | 繁體 | meaning |\n|---|---|---|---|\n"
        "| quantization | 量化 | 量化 | reals to integers |\n| KV cache | 键值缓存 | 鍵值快取 | kept keys |\n",
    )
    _write(  # an older 3-column table: its 繁體 is empty unless another notebook has it
        tmp_path,
        "02_b.ipynb",
        "## Key terms\n| English | 中文 | meaning |\n|:---|:---|:---|\n| latency | 延迟 | time |\n"
        "| kv cache | 键值缓存 | dup |\n",
    )
    terms = {t["English"]: t for t in interview.glossary(tmp_path)}
    assert terms["KV cache"] == {
        "English": "KV cache", "简体": "键值缓存", "繁體": "鍵值快取", "meaning": "kept keys",
        "notebook": "01",
    }  # fmt: skip
    assert terms["latency"]["简体"] == "延迟" and terms["latency"]["繁體"] == ""
    assert set(terms) == {"KV cache", "quantization", "latency"}


def test_the_course_glossary_has_no_broken_math() -> None:
    terms = interview.glossary()
    assert len(terms) >= 100
    for t in terms:
        assert t["meaning"].count("$") % 2 == 0, t
        assert t["简体"], t


def test_every_classic_is_demonstrated_in_its_notebook() -> None:
    assert len(interview.CLASSICS) == 10, "the notebook promises the ten classic questions"
    assert len({c.question for c in interview.CLASSICS}) == 10
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


ITEMS = [
    ("classic", "Why $T^2$?", "The gradient scales like $1/T^2$; see $$\\sqrt{L}$$."),
    ("03", "Which KL?", "$\\mathrm{KL}(p_t \\| p_s)$, `reduction='batchmean'`"),
    ("03", "Teacher?", "eval() and no_grad"),
    ("12", "ZeRO-3?", "$16\\Psi / N_d$ bytes"),
]


def test_quiz_renders_latex_with_htmlmath() -> None:
    import ipywidgets as W

    q = quiz(ITEMS)
    assert isinstance(q.answer, W.HTMLMath) and isinstance(q.question, W.HTMLMath)
    q.reveal.value = True
    assert "$1/T^2$" in q.answer.value and "$$\\sqrt{L}$$" in q.answer.value  # left for MathJax
    assert "$T^2$" in q.question.value


def test_quiz_topic_filter() -> None:
    q = quiz(ITEMS)
    assert q.topic.options == ("all topics", "classic", "03", "12")
    q.topic.value = "03"
    assert q.visible() == [1, 2] and q.picker.value == 1 and "Which KL?" in q.question.value
    q.topic.value = "12"
    assert q.visible() == [3]
    q.topic.value = "all topics"
    assert q.visible() == [0, 1, 2, 3]


def test_quiz_shuffle_is_a_reproducible_permutation() -> None:
    items = [("t", f"Q{i}?", f"A{i}") for i in range(12)]
    a, b = quiz(items, seed=3), quiz(items, seed=3)
    a.reveal.value = True
    a.shuffle.click()
    b.shuffle.click()
    assert sorted(a.visible()) == list(range(12)) and a.visible() != list(range(12))
    assert a.visible() == b.visible()
    assert not a.reveal.value  # a new question is hidden again
    assert a.picker.value == a.visible()[0]
    for _ in range(20):  # every press shows another question (the browser test relies on it)
        before = a.picker.value
        a.shuffle.click()
        assert a.picker.value != before


def test_quiz_keeps_a_score_per_topic() -> None:
    q = quiz(ITEMS)
    assert q.score() == (0, 0) and "0 of 0" in q.score_label.value
    q.knew.click()  # item 0
    q.picker.value = 1
    q.missed.click()
    assert q.score() == (1, 2) and "1 of 2 marked known (50 %)" in q.score_label.value
    q.missed.click()  # marking the same question again replaces its mark
    assert q.score() == (1, 2)
    q.picker.value = 1
    q.knew.click()
    assert q.score() == (2, 2)
    q.topic.value = "12"  # the score counts the selected topic only
    assert q.score() == (0, 0)


def test_quiz_rejects_bad_items() -> None:
    with pytest.raises(ValueError, match="at least one"):
        quiz([])
    with pytest.raises(ValueError, match="triple"):
        quiz([("t", "q")])
