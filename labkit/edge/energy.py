"""Energy per inference, analytic peak activation memory, and a budget that can fail.

Energy per operation, 45 nm at 0.9 V (M. Horowitz, "Computing's energy problem", ISSCC 2014;
the table Han et al. use in Deep Compression and EIE), in pJ: ENERGY_PJ. A rough estimate
of one inference:
    E = MACs * (E_mult + E_add)  +  ceil(weight bytes / 4) * E_DRAM(32 bit)
                                 +  ceil(activation bytes / 4) * 2 * E_SRAM(32 bit)
(every weight fetched once from DRAM, since it does not fit an 8 KB SRAM; every activation
written and read once in SRAM). int8 cuts the arithmetic ~20x and the DRAM words 4x.
Peak activation memory of a layer-by-layer (nn.Sequential) forward: while layer i runs its
input and its output are alive, so
    peak = max_i (bytes(input_i) + bytes(output_i)),   bytes = numel * element size.
A budget is a dict of limits {name: max}; a model's measurements fail where value > max.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from labkit.core.errors import (
    check_choice,
    check_int,
    check_model,
    check_nonempty,
    check_number,
    check_tensor,
)
from labkit.edge.checks import _check_fits

ENERGY_PJ = {
    "32-bit DRAM read": 640.0,
    "32-bit SRAM read (8 KB)": 5.0,
    "32-bit float mult": 3.7,
    "32-bit float add": 0.9,
    "32-bit int mult": 3.1,
    "32-bit int add": 0.1,
    "8-bit int mult": 0.2,
    "8-bit int add": 0.03,
}
MAC_PJ = {  # one multiply-accumulate = one mult + one add
    "float32": ENERGY_PJ["32-bit float mult"] + ENERGY_PJ["32-bit float add"],
    "int8": ENERGY_PJ["8-bit int mult"] + ENERGY_PJ["8-bit int add"],
}


def inference_energy(
    macs: int, weight_bytes: int, dtype: str = "float32", activation_bytes: int = 0
) -> dict[str, float]:
    """Energy (pJ) of one inference: arithmetic, weights from DRAM, activations through SRAM.

    Returns {"arithmetic", "weights from DRAM", "activations in SRAM", "total"} in pJ (see the
    module docstring). Taught in notebooks/10_edge_deployment.ipynb, "8. Energy, peak memory and a budget".
    """
    _check_energy(macs, weight_bytes, dtype, activation_bytes)
    parts = {
        "arithmetic": macs * MAC_PJ[dtype],
        "weights from DRAM": math.ceil(weight_bytes / 4) * ENERGY_PJ["32-bit DRAM read"],
        "activations in SRAM": math.ceil(activation_bytes / 4)
        * 2
        * ENERGY_PJ["32-bit SRAM read (8 KB)"],
    }
    return parts | {"total": sum(parts.values())}


def layer_activation_bytes(
    model: nn.Sequential, example: torch.Tensor
) -> list[tuple[str, int, int]]:
    """(layer name, input bytes, output bytes) of every top-level layer, from one forward's shapes.

    Used by peak_activation_bytes (this module).
    """
    check_model(model)
    rows: list[tuple[str, int, int]] = []
    x = example
    with torch.no_grad():
        for name, layer in model.named_children():
            y = layer(x)
            rows.append((name, x.numel() * x.element_size(), y.numel() * y.element_size()))
            x = y
    return rows


def peak_activation_bytes(model: nn.Sequential, example: torch.Tensor) -> int:
    """peak = max_i (bytes(input_i) + bytes(output_i)) over the layers of a Sequential.

    Taught in notebooks/10_edge_deployment.ipynb, "8. Energy, peak memory and a budget".
    """
    _check_peak(model, example)
    return max(i + o for _, i, o in layer_activation_bytes(model, example))


def over_budget(measured: dict[str, float], budget: dict[str, float]) -> list[str]:
    """The budget's limits that ``measured`` exceeds (value > limit), in the budget's order.

    A limit with no measurement is an error (a budget you cannot check is not met).
    Taught in notebooks/10_edge_deployment.ipynb, "8. Energy, peak memory and a budget".
    """
    _check_budget(measured, budget)
    return [name for name, limit in budget.items() if measured[name] > limit]


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_energy(
    macs: object, weight_bytes: object, dtype: object, activation_bytes: object
) -> None:
    check_int(macs, "macs", low=0)
    check_int(weight_bytes, "weight_bytes", low=0)
    check_int(activation_bytes, "activation_bytes", low=0)
    check_choice(dtype, "dtype", tuple(MAC_PJ))


def _check_budget(measured: object, budget: object) -> None:
    if not isinstance(measured, dict) or not isinstance(budget, dict):
        raise ValueError("measured and budget must be dicts {limit name: number}.")
    missing = [k for k in budget if k not in measured]
    if missing:
        raise ValueError(
            f"measured has no value for the budget's {missing}: measure them (or drop the limits)."
        )
    for name, limit in budget.items():
        check_number(measured[name], f"measured[{name!r}]")
        check_number(limit, f"budget[{name!r}] (a limit)")


def _check_peak(model: object, example: object) -> None:
    """A model with layers (a Sequential) and a non-empty batch it can take."""
    if not any(True for _ in check_model(model).children()):
        raise ValueError("model has no layers: pass the nn.Sequential whose activations to count.")
    check_nonempty(check_tensor(example, "example", floating=False), "example")
    _check_fits(model, example)  # type: ignore[arg-type]
