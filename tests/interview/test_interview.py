import nbformat
import pytest

from labkit import interview
from labkit.interview import widget
from labkit.interview.widget import glossary_explorer, plain, quiz


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
    assert [value for _label, value in q.topic.options] == ["all topics", "classic", "03", "12"]
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


# ---------------------------------------------------------------- issue 19: labels, titles, glossary


def test_plain_turns_latex_into_text_for_labels() -> None:
    assert plain("why multiply the soft loss by $T^2$?") == "why multiply the soft loss by T²?"
    assert plain("the real multiplier $S_x S_w / S_y$?") == "the real multiplier S_x S_w / S_y?"
    assert (
        plain("$\\Theta(N^2 d^2 / M)$, $\\sqrt{L}$, $16\\Psi / N_d$")
        == "Θ(N² d² / M), √L, 16Ψ / N_d"
    )
    assert plain("$\\mathrm{KL}(p_t \\| p_s)$ with `batchmean`,\n**once**") == (
        "KL(p_t ‖ p_s) with batchmean, once"
    )
    assert plain("no math here") == "no math here"


def test_quiz_labels_show_no_raw_latex() -> None:
    q = quiz([("03", "Why multiply by $T^2$?", "a"), ("12", "Over $N$ GPUs,\nhow many?", "b")])
    labels = [label for label, _ in q.picker.options]
    assert labels == ["1. [03] Why multiply by T²?", "2. [12] Over N GPUs, how many?"]
    long = quiz([("t", "x" * 100, "a")])
    assert long.picker.options[0][0] == "1. [t] " + "x" * 69 + "…"


def _course_items() -> list[tuple[str, str, str]]:
    """The quiz items exactly as notebooks/interview_prep.ipynb builds them."""
    items = [
        ("sources", c.en, f"{c.zh_hans} / {c.zh_hant}\n\n{c.answer}")
        for c in interview.SOURCE_CLASSICS
    ]
    items += [("classic", c.question, c.answer) for c in interview.CLASSICS]
    items += [
        (q.notebook[:2], q.question.split(".", 1)[1].strip(), q.answer)
        for q in interview.questions()
    ]
    return items


def test_every_course_label_is_plain_text_and_every_topic_has_a_title() -> None:
    titles = {"sources": "The source material's ten classics", "classic": "The course's ten"}
    q = quiz(_course_items(), titles=titles | interview.notebook_titles())
    labels = [label for label, _ in q.picker.options]
    assert len(labels) == len(_course_items()) >= 85
    assert not [lb for lb in labels if "$" in lb or "\\" in lb or "\n" in lb]
    shown = [label for label, _ in q.topic.options]
    assert "01 · Mixed precision" in shown and "The source material's ten classics" in shown
    assert not [s for s in shown[1:] if s.isdigit()], shown  # a title, not "01"
    q.topic.value = "01"  # the value stays the short key
    assert q.visible() and all(q.items[i][0] == "01" for i in q.visible())


def test_notebook_titles_read_each_notebooks_heading(tmp_path) -> None:
    _write(tmp_path, "01_x.ipynb", "# 01 · Mixed precision\n\nWhy it matters.")
    _write(tmp_path, "02_y.ipynb", "No heading here.")
    _write(tmp_path, "interview_prep.ipynb", "# Interview prep")
    assert interview.notebook_titles(tmp_path) == {"01": "01 · Mixed precision", "02": "02_y"}


TERMS = [
    {"English": "KV cache", "简体": "KV 缓存", "繁體": "KV 快取", "meaning": "keys and values kept",
     "notebook": "11"},
    {"English": "loss scaling", "简体": "损失缩放", "繁體": "損失縮放",
     "meaning": "multiply the loss by $S$ so gradients survive fp16", "notebook": "01"},
    {"English": "pruning", "简体": "剪枝", "繁體": "", "meaning": "removing `weights`",
     "notebook": "04"},
]  # fmt: skip


def test_glossary_filter_keeps_the_rows_with_every_typed_word() -> None:
    g = glossary_explorer(TERMS)
    assert len(g.visible()) == 3 and g.count.value == "3 of 3 terms"
    g.query.value = "CACHE"  # case-insensitive
    assert [t["English"] for t in g.visible()] == ["KV cache"]
    assert "KV cache" in g.table.value and "pruning" not in g.table.value
    assert g.count.value == "1 of 3 terms"
    g.query.value = "缩放"  # simplified Chinese
    assert [t["English"] for t in g.visible()] == ["loss scaling"]
    g.query.value = "快取"  # traditional Chinese
    assert [t["English"] for t in g.visible()] == ["KV cache"]
    g.query.value = "loss fp16"  # every word, in any column
    assert [t["English"] for t in g.visible()] == ["loss scaling"]
    g.query.value = "loss cache"
    assert g.visible() == [] and "No term contains" in g.table.value
    g.query.value = ""
    assert len(g.visible()) == 3


def test_glossary_html_keeps_math_for_mathjax_and_renders_code() -> None:
    g = glossary_explorer(TERMS)
    assert "$S$" in g.table.value and "<code>weights</code>" in g.table.value
    assert g.table.value.count("<tr>") == 4  # header + 3 rows
    assert "<td>—</td>" in g.table.value  # no 繁體 yet


def test_glossary_static_view_is_the_full_markdown_table(monkeypatch) -> None:
    shown = []
    monkeypatch.setattr(widget, "static_mode", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    g = glossary_explorer(TERMS, query="cache")  # a filter does not hide rows of the saved view
    g._ipython_display_()
    (md,) = shown
    lines = md.data.splitlines()
    assert lines[0] == "| English | 简体 | 繁體 | meaning | notebook |" and len(lines) == 2 + 3
    assert "| pruning | 剪枝 | — | removing `weights` | 04 |" in lines


def test_the_course_glossary_filters() -> None:
    g = glossary_explorer(interview.glossary())
    assert len(g.visible()) >= 100
    g.query.value = "master weights"
    assert any(t["English"] == "master weights" for t in g.visible())
    assert len(g.visible()) < len(g.terms)


def test_glossary_explorer_rejects_bad_terms() -> None:
    with pytest.raises(ValueError, match="interview.glossary"):
        glossary_explorer([])
    with pytest.raises(ValueError, match="interview.glossary"):
        glossary_explorer([("latency", "延迟")])


def test_classic_answers_agree_with_the_notebooks() -> None:
    """Issue 19: TensorRT INT8 through explicit Q/DQ, FlashAttention's complexity figures."""
    by_nb = {c.notebook: c.answer for c in interview.CLASSICS}
    trt = by_nb["09_onnx_and_tensorrt"]
    assert "Q/DQ" in trt and "strongly typed" in trt and "INT8 with calibration" not in trt
    fa = by_nb["08_flash_attention"]
    for figure in ("O(N²d)", "Θ(Nd + N²)", "Θ(N²d²/M)", "O(N²)", "O(N)"):
        assert figure in fa, figure


# ---------------------------------------------------------------- issue 22: the sources' classics

SIMPLIFIED_ONLY = set("么习这说实现优势题边设备训练后恢复组合压缩术译减")  # never in 繁體 text
TRADITIONAL_ONLY = set("麼習這說實現優勢題邊設備訓練後恢復組合壓縮術譯減")  # never in 简体


def test_the_source_classics_are_ten_in_three_scripts() -> None:
    cs = interview.SOURCE_CLASSICS
    assert len(cs) == 10 and len({c.en for c in cs}) == 10
    for c in cs:
        assert c.en.endswith("?") and c.zh_hans.endswith("？") and c.zh_hant.endswith("？"), c.en
        assert not set(c.zh_hant) & (SIMPLIFIED_ONLY - TRADITIONAL_ONLY), c.zh_hant
        assert not set(c.zh_hans) & (TRADITIONAL_ONLY - SIMPLIFIED_ONLY), c.zh_hans
    topics = " ".join(c.en for c in cs)
    for word in ("mixed precision", "teacher", "quantization-aware", "TensorRT", "FlashAttention",
                 "edge", "streaming", "Python", "accuracy", "combine"):  # fmt: skip
        assert word in topics, word


def test_each_source_classic_links_to_headings_that_exist() -> None:
    for c in interview.SOURCE_CLASSICS:
        assert c.sections, c.en
        for stem, heading in c.sections:
            assert heading in interview.notebook_headings(stem), (stem, heading)


def test_source_classic_answers_are_interview_grade() -> None:
    """Numbers or formulas in every answer, and the trade-off words of the ones that need them."""
    for c in interview.SOURCE_CLASSICS:
        assert len(c.answer) > 400, c.en
        assert any(ch.isdigit() for ch in c.answer), c.en
    fa = next(c for c in interview.SOURCE_CLASSICS if "FlashAttention" in c.en).answer
    assert "O(N²d)" in fa and "Θ(N²d²/M)" in fa and "Θ(Nd + N²)" in fa and "O(N)" in fa
    trt = next(c for c in interview.SOURCE_CLASSICS if "TensorRT" in c.en).answer
    assert "Q/DQ" in trt and "with calibration" not in trt


def test_section_link_uses_jupyterlabs_anchor() -> None:
    assert interview.section_link("01_mixed_precision", "4.1 Which ops run in which dtype") == (
        "[01 · 4.1 Which ops run in which dtype]"
        "(01_mixed_precision.ipynb#4.1-Which-ops-run-in-which-dtype)"
    )
    assert interview.section_link("02_x", "6. With DDP: `no_sync`").endswith(
        "#6.-With-DDP:-no_sync)"
    )
    assert interview.notebook_headings("no_such_notebook") == set()
