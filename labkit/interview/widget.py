"""Self-quiz: pick a question, think, then reveal the answer and score yourself.

quiz(items) takes (topic, question, answer-markdown) triples. Questions and answers are shown
in ``W.HTMLMath``, so LaTeX such as ``$T^2$`` or ``$\\sqrt{L}$`` is rendered (MathJax), not
shown raw. Controls: a topic filter ("all", "classic", "03", ...), the question picker, a
"Shuffle" button (a new random order of the filtered questions), "Show answer", and
"I knew it" / "I did not" buttons that keep a score (the last mark of each question counts).
In builds and nbval (static mode) it prints the questions only, so a saved notebook does not
give the answers away.
"""

from __future__ import annotations

import html
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import ipywidgets as W

from labkit.core.explorer import static_mode

ALL = "all topics"
THINK = "<i>Think first, then press 'Show answer'.</i>"


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
        return [
            (f"{n + 1}. [{self.items[i][0]}] {self.items[i][1][:70]}", i)
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
                print(f"- [{title}] {question}")
        else:
            display(self.box())


def _html(markdown: str) -> str:
    """Minimal markdown -> HTML for answers: paragraphs, `code` and **bold**; LaTeX between
    $...$ or $$...$$ is left as it is for HTMLMath (MathJax) to render."""
    text = html.escape(markdown.strip(), quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return "".join(f"<p>{p.strip()}</p>" for p in text.split("\n\n") if p.strip())


def quiz(items: Sequence[tuple[str, str, str]], seed: int = 0) -> Quiz:
    """A quiz over (topic, question, answer) items; answers stay hidden until asked.

    ``seed`` fixes the order the Shuffle button produces (reproducible in tests).
    """
    if not items:
        raise ValueError("quiz needs at least one (topic, question, answer) item.")
    for n, item in enumerate(items):
        if len(item) != 3 or not all(isinstance(x, str) for x in item):
            raise ValueError(f"item {n} must be a (topic, question, answer) triple of strings.")
    topics = list(dict.fromkeys(t for t, _, _ in items))  # first-seen order
    q = Quiz(
        topic=W.Dropdown(options=[ALL, *topics], value=ALL, description="Topic"),
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
