"""Scale / zero-point / bits explorer on a real tensor (notebook 05).

Sliders: tensor, bits, scale, zero point, symmetric. The figure shows the tensor's histogram,
the histogram after fake quantisation (every value moved to its grid point), the grid itself
and the clipping range; the title reports clipped mass, RMS rounding error and SQNR (dB).

Choosing a tensor or ticking "symmetric" resets S and Z to that tensor's MinMax values; the
zero-point slider only offers the valid codes [qmin, qmax] of the current bits and is
disabled under "symmetric" (Z = 0 there).
"""

from __future__ import annotations

import math

import ipywidgets as W
import plotly.graph_objects as go
import torch

from labkit import quant
from labkit.core.errors import check_tensor
from labkit.core.explorer import Explorer, explorer

MAX_GRID_MARKS = 300  # beyond this many grid points the marks are thinned (8+ bits)


def quant_stats(
    x: torch.Tensor, scale: float, zero_point: int, bits: int, symmetric: bool
) -> dict[str, float]:
    """What quantising x with (scale, zero_point, bits, symmetric) does to it.

    clipped: fraction of values outside the representable range [S(qmin - Z), S(qmax - Z)];
    rounding_rms: RMS error of the values inside the range (same unit as x);
    sqnr_db: 10 log10(sum x^2 / sum (x - x_hat)^2) over all values;
    lo / hi: the representable range.
    """
    qmin, qmax = quant.qrange(bits, symmetric)
    zero_point = 0 if symmetric else int(zero_point)
    if not qmin <= zero_point <= qmax:  # never clamp silently: the slider shows what is used
        raise ValueError(
            f"zero_point={zero_point} is not a {bits}-bit code; use a value in [{qmin}, {qmax}]."
        )
    x_hat = quant.fake_quantize(x, scale, zero_point, qmin, qmax)
    lo, hi = scale * (qmin - zero_point), scale * (qmax - zero_point)
    inside = (x >= lo - scale / 2) & (x <= hi + scale / 2)
    err_in = (x - x_hat)[inside]
    return {
        "clipped": float((~inside).float().mean()),
        "rounding_rms": float(err_in.pow(2).mean().sqrt()) if err_in.numel() else 0.0,
        "sqnr_db": quant.sqnr_db(x, x_hat),
        "lo": lo,
        "hi": hi,
        "zero_point": float(zero_point),
    }


def _hist(x: torch.Tensor, lo: float, hi: float, bins: int) -> tuple[list[float], list[float]]:
    counts = torch.histc(x.double(), bins, lo, hi)
    width = (hi - lo) / bins
    centres = lo + width * (torch.arange(bins, dtype=torch.float64) + 0.5)
    return centres.tolist(), counts.tolist()


def quant_explorer(
    tensors: dict[str, torch.Tensor],
    bits: int = 4,
    symmetric: bool = False,
    bins: int = 120,
    unit: str = "value",
) -> Explorer:
    """Explorer over named float tensors (e.g. {"conv1 weights": w, "activation": a}).

    The scale and zero point start at the MinMax values of the first tensor for ``bits`` and
    are reset to the chosen tensor's MinMax values when the tensor or the scheme changes. The
    zero-point slider spans the valid codes [qmin, qmax] of the current bits and is disabled
    when symmetric is ticked (Z = 0).
    """
    if not tensors:
        raise ValueError("quant_explorer needs at least one named tensor.")
    data = {k: check_tensor(v, k).detach().reshape(-1).float() for k, v in tensors.items()}
    if isinstance(bins, bool) or not isinstance(bins, int) or not 4 <= bins <= 10_000:
        raise ValueError(f"bins must be an int in [4, 10000] (histogram bars), got {bins!r}.")
    if any(x.numel() == 0 for x in data.values()):
        raise ValueError("every tensor needs at least one value.")

    def minmax(name: str, b: int, sym: bool) -> quant.QParams:
        x = data[name]
        return quant.compute_qparams(float(x.min()), float(x.max()), b, sym)

    first = next(iter(data))
    qp = minmax(first, bits, symmetric)
    # the scale slider spans every tensor's MinMax scale from 8 down to 2 bits, with a decade spare
    scales = [minmax(k, b, True).scale for k in data for b in (2, 8)]
    lo_exp = math.floor(math.log10(min(scales))) - 1
    hi_exp = math.ceil(math.log10(max(scales))) + 1
    qmin, qmax = quant.qrange(bits, symmetric)
    controls: dict[str, W.ValueWidget] = {
        "tensor": W.Dropdown(options=list(data), value=first, description="tensor"),
        "bits": W.IntSlider(value=bits, min=2, max=8, description="bits"),
        "scale": W.FloatLogSlider(
            value=qp.scale,
            base=10,
            min=lo_exp,
            max=hi_exp,
            step=0.01,
            description="scale S",
            readout_format=".4g",
        ),
        "zero_point": W.IntSlider(
            value=int(qp.zero_point),
            min=qmin,
            max=qmax,
            description="zero pt Z",
            disabled=symmetric,
        ),
        "symmetric": W.Checkbox(value=symmetric, description="symmetric (Z = 0)"),
    }
    zp_slider = controls["zero_point"]

    def set_zp_range(b: int, sym: bool) -> None:
        """Limit Z to the valid codes of b bits (the slider clamps its value visibly)."""
        lo, hi = quant.qrange(b, sym)
        if lo > zp_slider.max:
            zp_slider.max, zp_slider.min = hi, lo
        else:
            zp_slider.min, zp_slider.max = lo, hi
        zp_slider.disabled = sym

    def reset_to_minmax(_change: object = None) -> None:
        """A new tensor or scheme: start from its MinMax scale and zero point."""
        b, sym = int(controls["bits"].value), bool(controls["symmetric"].value)
        set_zp_range(b, sym)
        p = minmax(str(controls["tensor"].value), b, sym)
        controls["scale"].value = p.scale
        zp_slider.value = 0 if sym else int(p.zero_point)

    controls["tensor"].observe(reset_to_minmax, names="value")
    controls["symmetric"].observe(reset_to_minmax, names="value")
    controls["bits"].observe(
        lambda ch: set_zp_range(int(ch["new"]), bool(controls["symmetric"].value)), names="value"
    )
    fig = go.Figure(
        [
            go.Bar(name="x (float)", marker_color="steelblue", opacity=0.6),
            go.Bar(name="x after fake-quant", marker_color="darkorange", opacity=0.7),
            go.Scatter(
                name="grid points S(q - Z)",
                mode="markers",
                marker={"symbol": "line-ns-open", "size": 10, "color": "black"},
            ),
        ]
    )
    fig.update_layout(
        barmode="overlay",
        template="plotly_white",
        xaxis_title=f"{unit} (same unit as the tensor)",
        yaxis_title="count (values per bin, log scale)",
        yaxis_type="log",
        height=460,
        margin={"t": 90},  # room for the two-line title
        legend={"orientation": "h", "y": -0.25},
    )

    def update(f: go.FigureWidget, v: dict[str, object]) -> None:
        x = data[str(v["tensor"])]
        b, sym = int(v["bits"]), bool(v["symmetric"])  # type: ignore[call-overload]
        s = float(v["scale"])  # type: ignore[arg-type]
        st = quant_stats(x, s, int(v["zero_point"]), b, sym)  # type: ignore[call-overload]
        z = int(st["zero_point"])
        qmin, qmax = quant.qrange(b, sym)
        x_hat = quant.fake_quantize(x, s, z, qmin, qmax)
        lo = min(float(x.min()), st["lo"])
        hi = max(float(x.max()), st["hi"])
        cx, cy = _hist(x, lo, hi, bins)
        levels, counts = torch.unique(x_hat, return_counts=True)
        grid = s * (torch.arange(qmin, qmax + 1, dtype=torch.float64) - z)
        stride = max(1, len(grid) // MAX_GRID_MARKS)
        f.data[0].x, f.data[0].y = cx, cy
        f.data[0].width = (hi - lo) / bins
        f.data[1].x, f.data[1].y = levels.tolist(), counts.tolist()
        f.data[1].width = max(s * 0.6, (hi - lo) / 400)
        f.data[2].x = grid[::stride].tolist()
        f.data[2].y = [0.7] * len(grid[::stride])
        f.layout.shapes = [
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": lo,
                "x1": st["lo"],
                "y0": 0,
                "y1": 1,
                "fillcolor": "red",
                "opacity": 0.12,
                "line": {"width": 0},
            },
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": st["hi"],
                "x1": hi,
                "y0": 0,
                "y1": 1,
                "fillcolor": "red",
                "opacity": 0.12,
                "line": {"width": 0},
            },
        ]
        f.layout.title.text = (  # two short lines: one long line is cut off in narrow cells
            f"{v['tensor']}: {b}-bit {'symmetric' if sym else 'asymmetric'}, S={s:.4g}, Z={z}<br>"
            f"clipped {100 * st['clipped']:.2f} % | rounding RMS {st['rounding_rms']:.3g} | "
            f"SQNR {st['sqnr_db']:.1f} dB"
        )
        f.layout.title.font = {"size": 14}

    note = (
        "Red bands: values clipped to the end of the grid. Black ticks: the grid S(q - Z). "
        "Try: fewer bits, a smaller scale (less rounding, more clipping), symmetric on a "
        "ReLU activation (half the grid is wasted)."
    )
    return explorer(controls, fig, update, note)
