"""ZeRO memory calculator (notebook 12): model-state GB per GPU for stages 0-3 and ZeRO-Offload.

Built with labkit.widgets.explorer; the numbers come from labkit.distributed.zero_memory.
"""

from __future__ import annotations

import ipywidgets as W
import plotly.graph_objects as go

from labkit.distributed import zero_memory
from labkit.widgets import Explorer, explorer

STAGES = ["DDP (stage 0)", "ZeRO-1 (P_os)", "ZeRO-2 (P_os+g)", "ZeRO-3 (P_os+g+p)"]
PARTS = ("params", "grads", "optimizer")


def stage_gb(values: dict[str, object]) -> dict[str, list[float]]:
    """GB (1e9 bytes) per GPU of each part, per stage, for the controls' values."""
    psi = float(values["params_billion"]) * 1e9  # type: ignore[arg-type]
    rows = [
        zero_memory(
            psi, int(values["n_gpus"]), s, k=float(values["k"]), offload=bool(values["offload"])
        )  # type: ignore[arg-type]
        for s in range(4)
    ]
    out = {p: [r[p] / 1e9 for r in rows] for p in PARTS}
    if values["offload"]:  # ZeRO-Offload: gradients and optimizer states live in CPU memory
        out["grads"] = [0.0] * 4
        out["optimizer"] = [0.0] * 4
    out["cpu"] = [r["cpu"] / 1e9 for r in rows]
    out["gpu"] = [r["gpu"] / 1e9 for r in rows]
    return out


def zero_explorer(
    params_billion: float = 7.5, n_gpus: int = 64, k: int = 12, offload: bool = False
) -> Explorer:
    """Sliders for parameters (billions), GPUs, K and offload; stacked bars of GB per GPU."""
    controls = {
        "params_billion": W.FloatLogSlider(
            value=params_billion, base=10, min=-1, max=3, step=0.05, description="params (B)"
        ),
        "n_gpus": W.IntSlider(value=n_gpus, min=1, max=1024, description="GPUs N_d"),
        "k": W.IntSlider(value=k, min=0, max=24, description="K bytes"),
        "offload": W.Checkbox(value=offload, description="ZeRO-Offload (grads + optimizer on CPU)"),
    }
    fig = go.Figure([go.Bar(name=p, x=STAGES, y=[0, 0, 0, 0]) for p in PARTS])
    fig.update_layout(
        barmode="stack",
        template="plotly_white",
        xaxis_title="ZeRO stage",
        yaxis_title="model-state memory per GPU (GB)",
    )

    def update(f: go.FigureWidget, values: dict[str, object]) -> None:
        gb = stage_gb(values)
        for trace, part in zip(f.data, PARTS, strict=True):
            trace.y = gb[part]
            trace.text = [f"{v:.1f}" for v in gb[part]]
        cpu = (
            " (+ " + ", ".join(f"{v:.1f}" for v in gb["cpu"]) + " GB CPU)"
            if values["offload"]
            else ""
        )
        f.layout.title = (
            f"{values['params_billion']:.2g} B parameters on {values['n_gpus']} GPUs, K = {values['k']}: "
            + ", ".join(f"{v:.1f}" for v in gb["gpu"])
            + " GB per GPU"
            + cpu
        )

    return explorer(
        controls, fig, update, note="Model states only (activations and buffers not included)."
    )
