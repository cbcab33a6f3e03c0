"""Temperature explorer: softmax(logits / T) of one real output vector, with its entropy.

A slider sets the temperature T; the bars are p_i = exp(z_i / T) / sum_j exp(z_j / T) over
the given labels (classes of a classifier, or characters of a language model) and the
title reports the entropy H = -sum p log2 p in bits (max log2 C for C labels). With
``top_k`` a second slider keeps only the k largest logits (k = 0: off) before the softmax,
as in sampling: notebook 11 passes its own ``generate.next_token_probs`` as ``probs``
(this widget belongs to 03 and imports nothing taught later). Used in notebook 03 (teacher
logits) and 11 (next character).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go
import torch

from labkit import distill
from labkit.core.errors import check_tensor
from labkit.core.explorer import Explorer, explorer

T_MIN, T_MAX, T_STEP = 0.5, 20.0, 0.5
MAX_BAR_TEXT = 20  # print each bar's probability when there are at most this many labels
VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}  # whitespace characters, made visible


def display_labels(labels: list[str]) -> list[str]:
    """Labels as drawn on the axis: whitespace characters become visible symbols."""
    return [VISIBLE.get(str(lab), str(lab)) for lab in labels]


Probs = Callable[[torch.Tensor, float, int | None], torch.Tensor]


def softmax_probs(logits: torch.Tensor, T: float, top_k: int | None = None) -> torch.Tensor:
    """softmax(logits / T) (notebook 03's soft targets); no top-k: pass ``probs`` for that."""
    if top_k:
        raise ValueError(
            "top_k needs probs=<a function that masks>, e.g. generate.next_token_probs."
        )
    return distill.softmax_t(logits, T)


def temperature_probs(
    logits: torch.Tensor, T: float, top_k: int | None = None, probs: Probs = softmax_probs
) -> tuple[torch.Tensor, float]:
    """(probs(logits, T, top_k), entropy in bits) for 1-D logits (C,); top_k 0/None = off."""
    p = probs(logits, T, top_k or None)
    return p, float(distill.entropy_bits(p))


def title_text(title: str, T: float, entropy: float, n_labels: int, top_k: int | None) -> str:
    """'<title>: T = 2.0, entropy 1.23 bits (max 3.32)' (+ ', top-k 5' when masking)."""
    k = f", top-k {top_k}" if top_k else ""
    return f"{title}: T = {T:.1f}{k}, entropy {entropy:.2f} bits (max {math.log2(n_labels):.2f})"


def _check_inputs(
    logits: object, labels: list[str], top_k: int | None
) -> tuple[torch.Tensor, list[str]]:
    x = check_tensor(logits, "logits", ndim=1).detach().float()
    if not torch.isfinite(x).all():
        raise ValueError("logits must be finite (no nan or inf); pass the raw model outputs.")
    shown = display_labels(list(labels))
    if len(shown) != x.shape[0]:
        raise ValueError(
            f"labels has {len(shown)} entries but logits has {x.shape[0]}: one label per logit."
        )
    if len(set(shown)) != len(shown):
        raise ValueError("labels must be distinct (each names one bar).")
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, int) or not 0 <= top_k <= len(shown)
    ):
        raise ValueError(
            f"top_k must be an integer in 0..{len(shown)} (0 = off) or None, got {top_k!r}."
        )
    return x, shown


def temperature_figure(labels: list[str], xlabel: str) -> go.Figure:
    """The empty bar chart the explorer fills (probability axis fixed to [0, 1])."""
    fig = go.Figure(go.Bar(x=labels, y=[0.0] * len(labels), name="p"))
    fig.update_layout(
        template="plotly_white",
        xaxis_title=xlabel,
        yaxis_title="probability softmax(z / T) (fraction)",
        yaxis_range=[0, 1.05],
        xaxis_type="category",
        height=340,
    )
    return fig


def temperature_explorer(
    logits: torch.Tensor,
    labels: list[str],
    title: str = "softmax(logits / T)",
    top_k: int | None = None,
    *,
    T: float = 1.0,
    xlabel: str = "class (label)",
    probs: Probs | None = None,
) -> Explorer:
    """Slider T (0.5..20) -> bar chart of softmax(logits / T) over ``labels``, entropy in the title.

    logits: 1-D float tensor (C,); labels: C distinct names. top_k (0..C, 0 = off) adds a
    top-k slider that masks all but the k largest logits before the softmax; None: no
    slider; it needs ``probs(logits, T, k)`` that applies the mask (notebook 11 passes
    ``generate.next_token_probs``). Renders a static figure where widgets cannot.
    """
    z, shown = _check_inputs(logits, labels, top_k)
    if top_k is not None and probs is None:
        raise ValueError(
            "top_k needs probs=: a function (logits, T, k) -> probabilities that keeps the k "
            "largest logits, e.g. probs=generate.next_token_probs (notebook 11)."
        )
    probs_fn = probs or softmax_probs
    if not T_MIN <= T <= T_MAX:
        raise ValueError(f"T must be in [{T_MIN}, {T_MAX}], got {T!r}.")
    controls: dict[str, W.ValueWidget] = {
        "T": W.FloatSlider(
            value=T,
            min=T_MIN,
            max=T_MAX,
            step=T_STEP,
            description="temperature T",
            continuous_update=True,
            style={"description_width": "initial"},
        )
    }
    if top_k is not None:
        controls["top_k"] = W.IntSlider(
            value=top_k,
            min=0,
            max=len(shown),
            description="top-k (0 = off)",
            style={"description_width": "initial"},
        )

    def update(fig: go.FigureWidget, values: dict[str, Any]) -> None:
        k = int(values.get("top_k") or 0) or None
        p, entropy = temperature_probs(z, float(values["T"]), k, probs_fn)
        bar = fig.data[0]
        bar.y = p.tolist()
        bar.text = [f"{q:.2f}" for q in p.tolist()] if len(shown) <= MAX_BAR_TEXT else None
        fig.layout.title = title_text(title, float(values["T"]), entropy, len(shown), k)

    return explorer(
        controls,
        temperature_figure(shown, xlabel),
        update,
        note="Move T: small T sharpens towards the arg-max, large T flattens towards uniform.",
    )
