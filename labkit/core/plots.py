"""Plotly helpers: every axis gets a label with its unit.

Figures render in JupyterLab through plotly's MIME renderer (no internet needed) and in
Colab through plotly's Colab renderer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from labkit.core.errors import check_int


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
    _check_line(x, ys, xlabel, ylabel)
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


def histogram(
    samples: dict[str, Sequence[float] | np.ndarray | torch.Tensor],
    *,
    bins: int,
    xlabel: str,
    ylabel: str,
    title: str,
    range: tuple[float, float] | None = None,
    log_y: bool = False,
) -> go.Figure:
    """Overlaid histograms with shared bin edges, one trace per entry of ``samples``.

    The counts are computed here (numpy.histogram) and drawn as bars, so a saved notebook
    stores ``bins`` numbers per trace instead of every sample.
    """
    _check_histogram(samples, bins, xlabel, ylabel)
    arrays = {k: np.asarray(torch.as_tensor(v).detach().cpu().double()) for k, v in samples.items()}
    if range is None:
        every = np.concatenate([a.ravel() for a in arrays.values()])
        range = (float(every.min()), float(every.max()))
    edges = np.linspace(range[0], range[1], bins + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, float(edges[1] - edges[0])
    fig = go.Figure()
    for name, a in arrays.items():
        counts, _ = np.histogram(a, bins=edges)
        fig.add_bar(x=centres.tolist(), y=counts.tolist(), width=width, name=name, opacity=0.6)
    fig.update_layout(
        title=title, xaxis_title=xlabel, yaxis_title=ylabel, template="plotly_white",
        barmode="overlay", bargap=0,
    )  # fmt: skip
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def _check_line(
    x: Sequence[float], ys: dict[str, Sequence[float]], xlabel: str, ylabel: str
) -> None:
    _check_label(xlabel, "xlabel")
    _check_label(ylabel, "ylabel")
    if not ys:
        raise ValueError("ys is empty: give at least one series, e.g. {'fp32': latencies}.")
    for k, y in ys.items():
        if len(y) != len(x):
            raise ValueError(f"ys[{k!r}] has {len(y)} values but x has {len(x)}: one y per x.")


def _check_histogram(samples: dict[str, object], bins: object, xlabel: str, ylabel: str) -> None:
    _check_label(xlabel, "xlabel")
    _check_label(ylabel, "ylabel")
    check_int(bins, "bins", low=1, high=10_000)
    if not samples or any(torch.as_tensor(v).numel() == 0 for v in samples.values()):
        raise ValueError("samples is empty (or holds an empty series): pass {name: values}.")
