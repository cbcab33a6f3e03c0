"""Interactive explorers: ipywidgets controls redrawing a plain plotly figure.

explorer(controls, figure, update) wires each control's ``.observe`` to ``update(fig, values)``
followed by a redraw: the figure is put, as ordinary display data, into an ipywidgets
``Output`` (its ``outputs`` trait is replaced in one state update). No front-end code has to
load for the figure to appear, so it works the same in JupyterLab >= 4 and Notebook 7 (both
tested in a browser) and should in Colab and VS Code (not tried: CONTRIBUTING, "Front ends"),
on a busy machine too; with JupyterLab's widget-state saving on (``python3 -m
labkit setup`` turns it on), a reopened notebook shows the last figure.
Where widgets cannot render (notebook builds, nbval: LABKIT_QUIET=1 or LABKIT_STATIC_WIDGETS=1)
the explorer shows a static figure of the current values, with a one-line caption.
Topic widgets live in labkit/<topic>/widget.py and use this function.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from labkit.core.env import quiet

Update = Callable[[go.Figure, dict[str, Any]], None]


def static_mode() -> bool:
    """True where live widgets cannot render: notebook builds, nbval, tests."""
    return os.environ.get("LABKIT_STATIC_WIDGETS") == "1" or quiet()


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """The display data of a plain figure: plotly's MIME type (JupyterLab, Notebook 7, VS Code),
    or HTML with plotly.js from its CDN on Colab, which has no plotly MIME renderer."""
    import json

    import plotly.io as pio

    from labkit.core.env import in_colab

    title = fig.layout.title.text or "figure"
    if in_colab():
        return {
            "text/html": fig.to_html(include_plotlyjs="cdn", full_html=False),
            "text/plain": title,
        }
    spec = json.loads(pio.to_json(fig, validate=False))
    spec.setdefault("config", {})
    return {"application/vnd.plotly.v1+json": spec, "text/plain": f"<plotly figure: {title}>"}


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


@dataclass
class Explorer:
    """Controls plus the figure they drive; display it in a notebook cell."""

    controls: dict[str, W.ValueWidget]
    figure: go.Figure
    update: Update
    note: str = ""
    output: W.Output = field(default_factory=W.Output)

    def values(self) -> dict[str, Any]:
        return {name: w.value for name, w in self.controls.items()}

    def caption(self) -> str:
        """'bits = 8 · symmetric = off': the controls' current values, for the static view."""
        shown = [
            f"{getattr(w, 'description', '') or name} = {_show(w.value)}"
            for name, w in self.controls.items()
            if not isinstance(w, W.Button)
        ]
        return " · ".join(s.replace(": =", " =").replace(":=", " =") for s in shown)

    def redraw(self, _change: object = None) -> None:
        """Apply the controls to the figure and replace the Output's content in one update."""
        self.update(self.figure, self.values())
        self.output.outputs = (
            {"output_type": "display_data", "data": figure_bundle(self.figure), "metadata": {}},
        )

    def box(self) -> W.VBox:
        items: list[W.Widget] = [
            W.HBox(list(self.controls.values()), layout=W.Layout(flex_flow="row wrap")),
            self.output,
        ]
        if self.note:
            items.insert(0, W.HTMLMath(self.note))
        return W.VBox(items)

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown, display

        if static_mode():
            display(
                Markdown(f"*Saved view at {self.caption()}. Run the cell to move the controls.*")
            )
            display(go.Figure(self.figure))
        else:
            self.redraw()
            display(self.box())


def explorer(
    controls: dict[str, W.ValueWidget], figure: go.Figure, update: Update, note: str = ""
) -> Explorer:
    """Build an Explorer: ``update(fig, values)`` redraws ``fig`` for the controls' values."""
    fig = go.Figure(figure)
    ex = Explorer(controls, fig, update, note)
    update(fig, ex.values())
    for w in controls.values():
        w.observe(ex.redraw, names="value")
    return ex
