"""Energy per inference, analytic peak activation memory, and the budget check."""

import pytest
import torch

from labkit import edge, probes
from labkit.core import models


def test_horowitz_table_and_energy_formula() -> None:
    assert edge.ENERGY_PJ["32-bit DRAM read"] == 640.0 and edge.ENERGY_PJ["8-bit int add"] == 0.03
    e = edge.inference_energy(1000, 400, "float32", activation_bytes=40)
    assert e["arithmetic"] == pytest.approx(1000 * 4.6)
    assert e["weights from DRAM"] == pytest.approx(100 * 640)
    assert e["activations in SRAM"] == pytest.approx(10 * 2 * 5)
    assert e["total"] == pytest.approx(4600 + 64000 + 100)
    i8 = edge.inference_energy(1000, 100, "int8")
    assert i8["arithmetic"] == pytest.approx(230) and i8["weights from DRAM"] == pytest.approx(
        25 * 640
    )
    with pytest.raises(ValueError, match="dtype"):
        edge.inference_energy(1, 1, "fp16")


def test_peak_activation_bytes_of_the_reference_cnn() -> None:
    model = models.cnn(width=32, depth=3).eval()
    # the largest pair: a (1, 64, 8, 8) activation in and out of BN or ReLU: 2 * 16 KiB
    assert edge.peak_activation_bytes(model, torch.zeros(1, 1, 8, 8)) == 2 * 64 * 8 * 8 * 4


def test_analytic_peak_is_close_to_the_tensor_probe() -> None:
    model = models.cnn(width=16, depth=3).eval()
    x = torch.zeros(4, 1, 8, 8)

    def fwd():
        with torch.no_grad():
            model(x)

    analytic, probed = edge.peak_activation_bytes(model, x), probes.peak_tensor_bytes(fwd)
    assert 0.5 * probed <= analytic <= 2 * probed


def test_over_budget_names_the_limits_that_fail() -> None:
    budget = {"bytes": 100, "latency_ms": 1.0, "energy_uj": 5.0}
    assert edge.over_budget({"bytes": 100, "latency_ms": 0.5, "energy_uj": 5.0}, budget) == []
    assert edge.over_budget({"bytes": 101, "latency_ms": 2.0, "energy_uj": 1.0}, budget) == [
        "bytes",
        "latency_ms",
    ]
    with pytest.raises(ValueError, match="energy_uj"):
        edge.over_budget({"bytes": 1, "latency_ms": 1.0}, budget)
