"""Self-quiz: pick a question, think, then reveal the answer.

quiz(items) takes (title, question, answer-markdown) triples. In builds and nbval (static
mode) it prints the questions only, so a saved notebook does not give the answers away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as W

from labkit.widgets import static_mode


@dataclass
class Quiz:
    picker: W.Dropdown
    reveal: W.ToggleButton
    question: W.HTML
    answer: W.HTML
    items: Sequence[tuple[str, str, str]]

    def box(self) -> W.VBox:
        return W.VBox([self.picker, self.question, self.reveal, self.answer])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if static_mode():
            print(f"(static view: {len(self.items)} questions; run in Jupyter to quiz yourself)")
            for title, question, _ in self.items:
                print(f"- [{title}] {question}")
        else:
            display(self.box())


def _html(markdown: str) -> str:
    """Minimal markdown -> HTML for answers: paragraphs and `code`."""
    import html
    import re

    text = html.escape(markdown.strip())
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return "".join(f"<p>{p.strip()}</p>" for p in text.split("\n\n") if p.strip())


def quiz(items: Sequence[tuple[str, str, str]]) -> Quiz:
    """A quiz over (title, question, answer) items; answers stay hidden until asked."""
    if not items:
        raise ValueError("quiz needs at least one (title, question, answer) item.")
    picker = W.Dropdown(
        options=[(f"{i + 1}. [{t}] {q[:70]}", i) for i, (t, q, _) in enumerate(items)],
        description="Question",
        layout=W.Layout(width="95%"),
    )
    reveal = W.ToggleButton(value=False, description="Show answer", icon="eye")
    question, answer = W.HTML(), W.HTML()

    def show(_change: object = None) -> None:
        title, q, a = items[picker.value]
        question.value = f"<b>{q}</b> <i>({title})</i>"
        answer.value = _html(a) if reveal.value else "<i>Think first, then press 'Show answer'.</i>"

    def new_question(_change: object) -> None:
        reveal.value = False
        show()

    picker.observe(new_question, names="value")
    reveal.observe(show, names="value")
    show()
    return Quiz(picker, reveal, question, answer, items)
