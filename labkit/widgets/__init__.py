"""Interactive explorers: ipywidgets controls driving a plotly FigureWidget.

explorer(controls, figure, update) wires each control's ``.observe`` to
``with fig.batch_update(): update(fig, values)``. Where widgets cannot render (notebook
builds, nbval: LABKIT_QUIET=1 or LABKIT_STATIC_WIDGETS=1) the explorer displays a static
plotly figure of the current values instead, so saved notebooks stay readable.
Topic widgets live in labkit/widgets/<topic>.py and are built with this function.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from labkit.env import quiet

Update = Callable[[go.FigureWidget, dict[str, Any]], None]


def static_mode() -> bool:
    """True where live widgets cannot render: notebook builds, nbval, tests."""
    return os.environ.get("LABKIT_STATIC_WIDGETS") == "1" or quiet()


@dataclass
class Explorer:
    """Controls plus the figure they drive; display it in a notebook cell."""

    controls: dict[str, W.ValueWidget]
    figure: go.FigureWidget
    note: str = ""

    def values(self) -> dict[str, Any]:
        return {name: w.value for name, w in self.controls.items()}

    def box(self) -> W.VBox:
        items = [
            W.HBox(list(self.controls.values()), layout=W.Layout(flex_flow="row wrap")),
            self.figure,
        ]
        if self.note:
            items.insert(0, W.HTML(self.note))
        return W.VBox(items)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if static_mode():
            print(
                f"(static view at {self.values()}; run the notebook in Jupyter to move the sliders)"
            )
            display(go.Figure(self.figure))
        else:
            display(self.box())


class _CompleteFigureWidget(go.FigureWidget):
    """A FigureWidget whose comm opens only once the figure is complete.

    plotly opens the comm with an empty figure and sends traces and layout as later updates;
    anywidget applies those only after its JavaScript has loaded, so on a busy machine
    JupyterLab can draw the view first: an empty plot that never updates. Opening the comm at
    the end of __init__ puts the whole figure into the first message.
    """

    def open(self) -> None:
        if self.__dict__.get("_complete"):
            super().open()

    def __init__(self, figure: go.Figure) -> None:
        super().__init__(figure)
        self.__dict__["_complete"] = True
        self.open()


def explorer(
    controls: dict[str, W.ValueWidget], figure: go.Figure, update: Update, note: str = ""
) -> Explorer:
    """Build an Explorer: ``update(fig, values)`` redraws ``fig`` for the controls' values."""
    first = go.Figure(figure)
    update(first, {name: w.value for name, w in controls.items()})  # type: ignore[arg-type]
    fig = _CompleteFigureWidget(first)  # drawn before the widget exists: nothing to send later

    def refresh(_change: object = None) -> None:
        with fig.batch_update():
            update(fig, {name: w.value for name, w in controls.items()})

    for w in controls.values():
        w.observe(refresh, names="value")
    return Explorer(controls, fig, note)
