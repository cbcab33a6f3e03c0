"""Float-format explorer: pick a format and a value, see its bits and its rounding error.

One bar per bit (height 1 = bit set), coloured by field (sign / exponent / mantissa), most
significant bit on the left; the title shows the stored value and the rounding error.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from labkit import precision
from labkit.core.explorer import Explorer, explorer

FIELD_COLOURS = {"sign": "#d62728", "exponent": "#1f77b4", "mantissa": "#2ca02c"}


def bit_fields(fmt: str) -> list[str]:
    """The field of each bit, most significant first: ['sign', 'exponent', ..., 'mantissa', ...]."""
    f = precision.get_format(fmt)
    return ["sign"] + ["exponent"] * f.exponent_bits + ["mantissa"] * f.mantissa_bits


def bit_list(value: float, fmt: str) -> list[int]:
    """The bits of ``value`` stored in ``fmt``, most significant first."""
    f = precision.get_format(fmt)
    bits = precision.float_to_bits(value, f)
    return [(bits >> (f.bits - 1 - i)) & 1 for i in range(f.bits)]


def title(info: dict[str, Any]) -> str:
    """Two lines: format, value, stored value and kind; the bits and the relative error."""
    return (
        f"{info['format']}: {info['value']:.8g} is stored as {info['stored']:.8g} ({info['kind']})"
        f"<br>bits {info['bit_string']}, relative error {info['rel_error']:.2e}"
    )


def float_format_figure() -> go.Figure:
    """The empty figure the explorer fills: one bar trace per field."""
    fig = go.Figure(
        [
            go.Bar(name=name, marker_color=colour, textposition="outside")
            for name, colour in FIELD_COLOURS.items()
        ]
    )
    fig.update_layout(
        template="plotly_white",
        xaxis_title="bit position (31 = most significant for fp32)",
        yaxis_title="bit value (0 or 1)",
        yaxis_range=[0, 1.3],
        bargap=0.1,
        height=340,
        margin=dict(t=90, b=60, l=60, r=20),  # room for the two-line title
    )
    return fig


def update_figure(fig: go.Figure, values: dict[str, Any]) -> None:
    """Redraw the bit bars and the title for values {'format', 'value'}.

    Works on a plain go.Figure and on a FigureWidget alike (it only sets trace and layout
    properties), so it fits whichever figure labkit.core.explorer.explorer redraws.
    """
    fmt, value = values["format"], float(values["value"])
    f = precision.get_format(fmt)
    bits, kinds = bit_list(value, fmt), bit_fields(fmt)
    positions = list(range(f.bits - 1, -1, -1))
    for trace in fig.data:
        idx = [i for i, k in enumerate(kinds) if k == trace.name]
        trace.x = [positions[i] for i in idx]
        trace.y = [bits[i] for i in idx]
        trace.text = [str(bits[i]) for i in idx]
    fig.layout.title = title(precision.explain(value, fmt))
    fig.layout.xaxis.title = f"bit position ({f.bits - 1} = most significant)"
    fig.layout.xaxis.autorange = "reversed"


def float_format_explorer(value: float = 0.1, fmt: str = "fp16") -> Explorer:
    """Dropdown of formats + a value box driving the bit chart (static figure in builds)."""
    precision.get_format(fmt)
    controls = {
        "format": W.Dropdown(options=list(precision.FORMATS), value=fmt, description="format"),
        "value": W.FloatText(value=value, description="value"),
    }
    return explorer(
        controls,
        float_format_figure(),
        update_figure,
        note="Type a value and pick a format: red = sign, blue = exponent, green = mantissa.",
    )
