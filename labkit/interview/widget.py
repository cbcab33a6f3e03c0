"""Self-quiz and glossary filter of the interview prep notebook.

quiz(items) takes (topic, question, answer-markdown) triples. Questions and answers are shown
in ``W.HTMLMath``, so LaTeX such as ``$T^2$`` or ``$\\sqrt{L}$`` is rendered (MathJax), not
shown raw. Controls: a topic filter ("all", "classic", "03", ...), the question picker, a
"Shuffle" button (a new random order of the filtered questions), "Show answer", and
"I knew it" / "I did not" buttons that keep a score (the last mark of each question counts).
In builds and nbval (static mode) it prints the questions only, so a saved notebook does not
give the answers away. The picker's labels are plain text (a dropdown cannot render LaTeX):
``plain`` turns ``$T^2$`` into ``T²``. ``titles`` names the topics in the topic filter
("01" -> "01 · Mixed precision").

glossary_explorer(terms) shows the course glossary under a filter box: type a word (English,
简体, 繁體 or the meaning) and only the rows containing it stay. In static mode it is the full
markdown table, so a saved notebook shows every term.
"""

from __future__ import annotations

import html
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import ipywidgets as W

from labkit.core import progress
from labkit.core.explorer import static_mode

ALL = "all topics"
THINK = "<i>Think first, then press 'Show answer'.</i>"


# LaTeX commands that occur in the course's questions, as plain text for dropdown labels
_COMMANDS = {
    "times": "×", "cdot": "·", "approx": "≈", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥",
    "to": "→", "rightarrow": "→", "infty": "∞", "sqrt": "√", "ell": "ℓ", "Psi": "Ψ",
    "alpha": "α", "beta": "β", "gamma": "γ", "sigma": "σ", "mu": "μ", "epsilon": "ε",
    "lambda": "λ", "Theta": "Θ", "theta": "θ", "Delta": "Δ", "log": "log", "exp": "exp",
    "mathrm": "", "text": "", "mathbf": "", "operatorname": "", "left": "", "right": "",
}  # fmt: skip
_SUPER = str.maketrans("0123456789+-()=nNiTkd", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁽⁾⁼ⁿᴺⁱᵀᵏᵈ")
_SUB = str.maketrans("0123456789+-()=", "₀₁₂₃₄₅₆₇₈₉₊₋₍₎₌")
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)


def _script(body: str, table: dict[int, str], mark: str) -> str:
    """x -> ² (when every character has a raised/lowered form), else ^(x) / _x."""
    moved = body.translate(table)
    if all(ord(c) in table for c in body):
        return moved
    return f"{mark}({body})" if len(body) > 1 else f"{mark}{body}"


def _math_to_text(tex: str) -> str:
    text = re.sub(r"\\([A-Za-z]+)", lambda m: _COMMANDS.get(m.group(1), m.group(1)), tex)
    text = re.sub(r"\\([,;:! ])", " ", text).replace("\\|", "‖").replace("\\", "")
    text = re.sub(
        r"\^\{([^{}]*)\}|\^(\w)", lambda m: _script(m.group(1) or m.group(2), _SUPER, "^"), text
    )
    text = re.sub(
        r"_\{([^{}]*)\}|_(\w)", lambda m: _script(m.group(1) or m.group(2), _SUB, "_"), text
    )
    return text.replace("{", "").replace("}", "")


def plain(text: str) -> str:
    """Markdown with LaTeX as one line of plain text, for labels that cannot render math:
    '$T^2$' -> 'T²', '$O(N^2 d)$' -> 'O(N² d)', '$S_x$' -> 'S_x' (Unicode scripts where they
    exist), `code` and **bold** marks removed, line breaks joined."""
    text = _MATH.sub(lambda m: _math_to_text(m.group(1) or m.group(2)), text)
    text = re.sub(r"\*\*([^*]+)\*\*|`([^`]+)`", lambda m: m.group(1) or m.group(2), text)
    return " ".join(text.split())


@dataclass
class Quiz:
    topic: W.Dropdown
    picker: W.Dropdown
    shuffle: W.Button
    reveal: W.ToggleButton
    knew: W.Button
    missed: W.Button
    question: W.HTMLMath
    answer: W.HTMLMath
    score_label: W.HTML
    items: Sequence[tuple[str, str, str]]
    marks: dict[int, bool] = field(default_factory=dict)  # item index -> knew it?
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    # ---------------------------------------------------------------- state
    def visible(self) -> list[int]:
        """Indices of the items of the selected topic, in the picker's current order."""
        return [value for _label, value in self.picker.options]

    def score(self) -> tuple[int, int]:
        """(questions marked 'I knew it', questions marked at all) among the selected topic."""
        shown = set(self.visible())
        marked = [ok for i, ok in self.marks.items() if i in shown]
        return sum(marked), len(marked)

    def _options(self, order: list[int]) -> list[tuple[str, int]]:
        def short(text: str) -> str:
            return text if len(text) <= 70 else text[:69] + "…"

        return [
            (f"{n + 1}. [{self.items[i][0]}] {short(plain(self.items[i][1]))}", i)
            for n, i in enumerate(order)
        ]

    # ---------------------------------------------------------------- display
    def box(self) -> W.VBox:
        top = W.HBox([self.topic, self.shuffle, self.score_label])
        marks = W.HBox([self.reveal, self.knew, self.missed])
        return W.VBox([top, self.picker, self.question, marks, self.answer])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if static_mode():
            topics = sorted({t for t, _, _ in self.items})
            print(
                f"(static view: {len(self.items)} questions on {len(topics)} topics; "
                "run in Jupyter to quiz yourself)"
            )
            for title, question, _ in self.items:
                print(f"- [{title}] {plain(question)}")
        else:
            display(self.box())


def _inline(markdown: str) -> str:
    """Markdown of one line -> HTML: `code` and **bold**; $...$ left for MathJax."""
    text = html.escape(markdown.strip(), quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def _html(markdown: str) -> str:
    """Minimal markdown -> HTML for answers: paragraphs, `code` and **bold**; LaTeX between
    $...$ or $$...$$ is left as it is for HTMLMath (MathJax) to render."""
    return "".join(f"<p>{_inline(p)}</p>" for p in markdown.strip().split("\n\n") if p.strip())


def quiz(
    items: Sequence[tuple[str, str, str]], seed: int = 0, titles: dict[str, str] | None = None
) -> Quiz:
    """A quiz over (topic, question, answer) items; answers stay hidden until asked.

    ``seed`` fixes the order the Shuffle button produces (reproducible in tests); ``titles``
    maps a topic to the name the topic filter shows (the topic itself where missing).
    """
    if not items:
        raise ValueError("quiz needs at least one (topic, question, answer) item.")
    for n, item in enumerate(items):
        if len(item) != 3 or not all(isinstance(x, str) for x in item):
            raise ValueError(f"item {n} must be a (topic, question, answer) triple of strings.")
    topics = list(dict.fromkeys(t for t, _, _ in items))  # first-seen order
    names = titles or {}
    q = Quiz(
        topic=W.Dropdown(
            options=[(ALL, ALL), *((names.get(t, t), t) for t in topics)],
            value=ALL,
            description="Topic",
        ),
        picker=W.Dropdown(description="Question", layout=W.Layout(width="95%")),
        shuffle=W.Button(description="Shuffle", icon="random"),
        reveal=W.ToggleButton(value=False, description="Show answer", icon="eye"),
        knew=W.Button(description="I knew it", icon="check", button_style="success"),
        missed=W.Button(description="I did not", icon="times", button_style="warning"),
        question=W.HTMLMath(),
        answer=W.HTMLMath(),
        score_label=W.HTML(),
        items=items,
        rng=random.Random(seed),
    )

    def show_score() -> None:
        known, marked = q.score()
        total = len(q.visible())
        pct = f" ({100 * known / marked:.0f} %)" if marked else ""
        q.score_label.value = (
            f"<b>Score:</b> {known} of {marked} marked known{pct} · {total} questions"
        )

    def show(_change: object = None) -> None:
        if q.picker.value is None:
            return
        title, question, answer = items[q.picker.value]
        q.question.value = f"<b>{html.escape(question, quote=False)}</b> <i>({title})</i>"
        q.answer.value = _html(answer) if q.reveal.value else THINK
        show_score()

    def set_order(order: list[int]) -> None:
        q.picker.options = q._options(order)  # selects the first option
        q.picker.value = order[0]
        q.reveal.value = False
        show()

    def filter_topic(_change: object = None) -> None:
        chosen = q.topic.value
        set_order([i for i, (t, _, _) in enumerate(items) if chosen in (ALL, t)])

    def shuffle(_button: object = None) -> None:
        order = q.visible()
        q.rng.shuffle(order)
        if len(order) > 1 and order[0] == q.picker.value:  # always show a new question
            order = order[1:] + order[:1]
        set_order(order)

    def mark(knew: bool) -> None:
        if q.picker.value is not None:
            q.marks[q.picker.value] = knew
            show_score()
            progress.record_quiz(q.marks, len(q.items))  # python -m labkit progress

    def new_question(_change: object) -> None:
        q.reveal.value = False
        show()

    q.topic.observe(filter_topic, names="value")
    q.picker.observe(new_question, names="value")
    q.reveal.observe(show, names="value")
    q.shuffle.on_click(shuffle)
    q.knew.on_click(lambda _b: mark(True))
    q.missed.on_click(lambda _b: mark(False))
    filter_topic()
    return q


# ---------------------------------------------------------------- glossary

GLOSSARY_COLUMNS = ("English", "简体", "繁體", "meaning", "notebook")


def markdown_table(terms: Sequence[dict[str, str]]) -> str:
    """The glossary as one markdown table ("—" where a term has no 繁體 yet)."""
    head = "| " + " | ".join(GLOSSARY_COLUMNS) + " |\n|" + "---|" * len(GLOSSARY_COLUMNS)
    rows = ["| " + " | ".join(t.get(c) or "—" for c in GLOSSARY_COLUMNS) + " |" for t in terms]
    return "\n".join([head, *rows])


def _matches(term: dict[str, str], words: list[str]) -> bool:
    text = " ".join(term.get(c, "") for c in GLOSSARY_COLUMNS).lower()
    return all(w in text for w in words)


@dataclass
class Glossary:
    """A filter box over the glossary: the rows that contain every typed word stay."""

    query: W.Text
    count: W.HTML
    table: W.HTMLMath
    terms: Sequence[dict[str, str]]

    def visible(self) -> list[dict[str, str]]:
        """The terms containing every word of the filter (any column, case-insensitive)."""
        return [t for t in self.terms if _matches(t, self.query.value.lower().split())]

    def box(self) -> W.VBox:
        return W.VBox([W.HBox([self.query, self.count]), self.table])

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown, display

        if static_mode():  # every term, as a table a saved notebook (and its find) shows
            display(Markdown(markdown_table(self.terms)))
        else:
            display(self.box())


def _html_table(terms: Sequence[dict[str, str]], query: str) -> str:
    if not terms:
        return f"<i>No term contains {html.escape(query)!r}.</i>"
    head = "".join(f"<th>{c}</th>" for c in GLOSSARY_COLUMNS)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_inline(t.get(c) or '—')}</td>" for c in GLOSSARY_COLUMNS) + "</tr>"
        for t in terms
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def glossary_explorer(terms: Sequence[dict[str, str]], query: str = "") -> Glossary:
    """The glossary (rows as interview.glossary() gives them) under a filter box.

    Typing in the box keeps the rows that contain every typed word, in any column (English,
    简体, 繁體, meaning, notebook; case-insensitive); the label counts them. Where widgets cannot
    render (builds, nbval) it displays the full markdown table instead.
    """
    if not terms or not all(isinstance(t, dict) and "English" in t for t in terms):
        raise ValueError("terms must be a non-empty list of glossary rows: interview.glossary().")
    g = Glossary(
        query=W.Text(
            value=query,
            description="Filter",
            placeholder="a word in English, 简体, 繁體 or the meaning",
            layout=W.Layout(width="50%"),
        ),
        count=W.HTML(),
        table=W.HTMLMath(),
        terms=list(terms),
    )

    def redraw(_change: object = None) -> None:
        rows = g.visible()
        g.count.value = f"{len(rows)} of {len(g.terms)} terms"
        g.table.value = _html_table(rows, g.query.value)

    g.query.observe(redraw, names="value")
    redraw()
    return g
