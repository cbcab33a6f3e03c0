"""The ZeRO calculator widget: moving a control in Python redraws the bars correctly."""

import pytest

from labkit.distributed import zero_memory
from labkit.distributed.widget import (
    MODEL_SIZES_B,
    PARTS,
    fmt_billions,
    size_options,
    zero_explorer,
)


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
    ex.controls["params_billion"].value = 1.5
    assert bars(ex)["params"][0] == pytest.approx(3.0)


def test_the_papers_7_5_b_is_reachable_exactly() -> None:
    """Issue 14: the log slider snapped 7.5 B to 7.94 B; every listed size is exact now."""
    ex = zero_explorer()
    slider = ex.controls["params_billion"]
    assert slider.value == 7.5 and slider.label == "7.5 B"
    assert 7.5 in MODEL_SIZES_B and 13 in MODEL_SIZES_B
    slider.value = 100.0
    slider.value = 7.5  # back to the paper's example: exactly, not a neighbour
    assert slider.value == 7.5
    assert bars(ex)["optimizer"][0] == pytest.approx(12 * 7.5)


def test_slider_label_and_title_use_one_formatting() -> None:
    """Issue 14: the title said '13 B' beside a slider showing 12.6."""
    ex = zero_explorer()
    slider = ex.controls["params_billion"]
    for label, value in size_options():
        slider.value = value
        assert slider.label == label == fmt_billions(value)
        assert ex.figure.layout.title.text.startswith(f"{label} parameters on 64 GPUs")
    odd = zero_explorer(params_billion=12.6)  # a size that is not in the list is added, exactly
    assert odd.controls["params_billion"].label == "12.6 B"
    assert odd.figure.layout.title.text.startswith("12.6 B parameters")
    assert [fmt_billions(v) for v in (0.35, 7.5, 13, 175, 1000)] == [
        "0.35 B", "7.5 B", "13 B", "175 B", "1000 B",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [
        {"params_billion": -1},
        {"params_billion": 0},
        {"n_gpus": 0},
        {"n_gpus": 2.5},
        {"k": -1},
        {"params_billion": float("nan")},
        {"n_gpus": True},
        {"k": True},  # issue 18: NaN, bools
    ],  # fmt: skip
)
def test_bad_arguments_raise_a_clear_error(kwargs) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        zero_explorer(**kwargs)
