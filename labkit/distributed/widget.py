"""ZeRO memory calculator (notebook 12): model-state GB per GPU for stages 0-3 and ZeRO-Offload.

Built with labkit.core.explorer.explorer; the numbers come from labkit.distributed.zero_memory.
"""

from __future__ import annotations

import ipywidgets as W
import plotly.graph_objects as go

from labkit.core.errors import check_int, check_number
from labkit.core.explorer import Explorer, explorer
from labkit.distributed.lesson import zero_memory

STAGES = ["DDP (stage 0)", "ZeRO-1 (P_os)", "ZeRO-2 (P_os+g)", "ZeRO-3 (P_os+g+p)"]
PARTS = ("params", "grads", "optimizer")
# Model sizes in billions of parameters: the ZeRO papers' examples (1.5, 7.5, 13, 100, 1000 B)
# and common open models (GPT-2 XL 1.5, Llama 7/13/70, GPT-3 175 ...). A slider over this
# list reaches each size exactly (a log slider cannot land on 7.5 B).
MODEL_SIZES_B = (
    0.1, 0.35, 0.76, 1.3, 1.5, 2.7, 3, 6.7, 7, 7.5, 8, 13, 20, 30, 34, 40, 60, 65, 70, 100,
    175, 405, 530, 1000,
)  # fmt: skip


def fmt_billions(value: float) -> str:
    """One formatting for the slider and the title: up to 3 significant digits, no trailing
    zeros ('7.5 B', '13 B', '0.35 B', '1000 B')."""
    return f"{float(value):.3g} B" if value < 1000 else f"{float(value):.0f} B"


def size_options(extra: float | None = None) -> list[tuple[str, float]]:
    """(label, value) pairs for the parameter slider, ``extra`` added where it is missing."""
    sizes = set(MODEL_SIZES_B) | ({float(extra)} if extra is not None else set())
    return [(fmt_billions(v), float(v)) for v in sorted(sizes)]


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
    """Sliders for parameters (billions, over MODEL_SIZES_B), GPUs, K and offload; stacked
    bars of GB per GPU. The slider's label and the title use the same fmt_billions."""
    if not 0 < check_number(params_billion, "params_billion (billions)", low=0, high=10_000):
        raise ValueError("params_billion must be in (0, 10000] (billions of parameters), got 0.")
    check_int(n_gpus, "n_gpus", low=1, high=1024)
    check_int(k, "k (optimizer bytes per parameter)", low=0, high=24)
    controls = {
        "params_billion": W.SelectionSlider(
            options=size_options(params_billion),
            value=float(params_billion),
            description="params",
            continuous_update=False,
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
            f"{fmt_billions(values['params_billion'])} parameters on {values['n_gpus']} GPUs, "
            f"K = {values['k']}: " + ", ".join(f"{v:.1f}" for v in gb["gpu"]) + " GB per GPU" + cpu
        )

    return explorer(
        controls, fig, update, note="Model states only (activations and buffers not included)."
    )
