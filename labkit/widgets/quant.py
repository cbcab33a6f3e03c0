"""Scale / zero-point / bits explorer on a real tensor (notebook 05).

Sliders: tensor, bits, scale, zero point, symmetric. The figure shows the tensor's histogram,
the histogram after fake quantisation (every value moved to its grid point), the grid itself
and the clipping range; the title reports clipped mass, RMS rounding error and SQNR (dB).
"""

from __future__ import annotations

import ipywidgets as W
import plotly.graph_objects as go
import torch

from labkit import quant
from labkit.errors import check_tensor
from labkit.widgets import Explorer, explorer

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
    zero_point = 0 if symmetric else min(max(int(zero_point), qmin), qmax)
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

    The scale slider starts at the MinMax scale of the first tensor for ``bits``; the zero
    point slider is ignored (Z = 0) when symmetric is ticked.
    """
    if not tensors:
        raise ValueError("quant_explorer needs at least one named tensor.")
    data = {k: check_tensor(v, k).detach().reshape(-1).float() for k, v in tensors.items()}
    first = next(iter(data.values()))
    qp = quant.compute_qparams(float(first.min()), float(first.max()), bits, symmetric)
    controls: dict[str, W.ValueWidget] = {
        "tensor": W.Dropdown(options=list(data), value=next(iter(data)), description="tensor"),
        "bits": W.IntSlider(value=bits, min=2, max=8, description="bits"),
        "scale": W.FloatLogSlider(
            value=qp.scale,
            base=10,
            min=-4,
            max=1,
            step=0.01,
            description="scale S",
            readout_format=".4g",
        ),
        "zero_point": W.IntSlider(value=qp.zero_point, min=-128, max=255, description="zero pt Z"),
        "symmetric": W.Checkbox(value=symmetric, description="symmetric (Z = 0)"),
    }
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
        height=420,
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
        f.layout.title.text = (
            f"{v['tensor']}: {b}-bit {'symmetric' if sym else 'asymmetric'}, S={s:.4g}, Z={z} | "
            f"clipped {100 * st['clipped']:.2f} % | rounding RMS {st['rounding_rms']:.3g} | "
            f"SQNR {st['sqnr_db']:.1f} dB"
        )

    note = (
        "Red bands: values clipped to the end of the grid. Black ticks: the grid S(q - Z). "
        "Try: fewer bits, a smaller scale (less rounding, more clipping), symmetric on a "
        "ReLU activation (half the grid is wasted)."
    )
    return explorer(controls, fig, update, note)
