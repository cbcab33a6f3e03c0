"""The ZeRO calculator widget: moving a control in Python redraws the bars correctly."""

import pytest

from labkit.distributed import zero_memory
from labkit.widgets.zero import PARTS, zero_explorer


def bars(ex) -> dict[str, list[float]]:
    return {t.name: list(t.y) for t in ex.figure.data}


def test_initial_figure_shows_the_paper_numbers() -> None:
    ex = zero_explorer()
    totals = [round(sum(bars(ex)[p][s] for p in PARTS), 1) for s in range(4)]
    assert totals == [120.0, 31.4, 16.6, 1.9]
    assert "120.0, 31.4, 16.6, 1.9 GB" in ex.figure.layout.title.text


def test_moving_the_gpu_slider_redraws() -> None:
    ex = zero_explorer()
    ex.controls["n_gpus"].value = 8
    got = bars(ex)
    for s in range(4):
        expected = zero_memory(7.5e9, 8, s)
        for p in PARTS:
            assert got[p][s] == pytest.approx(expected[p] / 1e9)
    assert got["optimizer"][1] == pytest.approx(12 * 7.5 / 8)


def test_offload_moves_the_optimizer_off_the_gpu() -> None:
    ex = zero_explorer()
    before = bars(ex)
    assert "CPU" not in ex.figure.layout.title.text
    ex.controls["offload"].value = True
    after = bars(ex)
    assert after["optimizer"] == [0.0] * 4 and after["grads"] == [0.0] * 4
    assert after["params"] == before["params"]
    # stage 2 on 64 GPUs: (2 + 12) * 7.5 / 64 = 1.6 GB of gradients + optimizer states per rank in CPU memory
    assert (
        "15.0, 15.0, 15.0, 0.2 GB per GPU (+ 105.0, 16.4, 1.6, 1.6 GB CPU)"
        in ex.figure.layout.title.text
    )
    ex.controls["k"].value = 16
    ex.controls["params_billion"].value = 1.0
    assert bars(ex)["params"][0] == pytest.approx(2.0)
