"""Plotly helpers: every axis gets a label with its unit.

Figures render in JupyterLab through plotly's MIME renderer (no internet needed) and in
Colab through plotly's Colab renderer.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import plotly.io as pio

from labkit.env import in_colab


def use_notebook_renderer() -> None:
    """Pick the renderer: 'colab' on Colab, else the MIME renderer JupyterLab understands."""
    pio.renderers.default = "colab" if in_colab() else "plotly_mimetype"


def _check_label(label: str, name: str) -> None:
    if not label or not label.strip():
        raise ValueError(f"{name} must say what is plotted and its unit, e.g. 'latency (ms)'.")


def line(
    x: Sequence[float],
    ys: dict[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    log_x: bool = False,
    log_y: bool = False,
    markers: bool = True,
) -> go.Figure:
    """One line per entry of ``ys`` over the shared ``x``."""
    _check_label(xlabel, "xlabel")
    _check_label(ylabel, "ylabel")
    mode = "lines+markers" if markers else "lines"
    fig = go.Figure([go.Scatter(x=list(x), y=list(y), mode=mode, name=k) for k, y in ys.items()])
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, template="plotly_white")
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def bar(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    text: Sequence[str] | None = None,
) -> go.Figure:
    """A bar chart with a labelled value axis."""
    _check_label(xlabel, "xlabel")
    _check_label(ylabel, "ylabel")
    fig = go.Figure(go.Bar(x=list(labels), y=list(values), text=list(text) if text else None))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, template="plotly_white")
    return fig
