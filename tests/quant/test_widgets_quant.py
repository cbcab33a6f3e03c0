"""The scale/zero-point explorer: moving a control in Python redraws the right figure."""

import math

import pytest
import torch

from labkit import quant
from labkit.quant import widget as wq


@pytest.fixture
def tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2000, generator=g) * 0.2
    a = torch.randn(5000, generator=g).relu()
    a[:5] = 25.0  # a few outliers
    return {"weights": w, "activation": a}


def grid(ex) -> list[float]:
    return list(ex.figure.data[2].x)


def test_initial_grid_is_the_minmax_grid(tensors) -> None:
    ex = wq.quant_explorer(tensors, bits=4, symmetric=False)
    w = tensors["weights"]
    qp = quant.compute_qparams(float(w.min()), float(w.max()), 4, False)
    expected = [qp.scale * (q - qp.zero_point) for q in range(16)]
    assert grid(ex) == pytest.approx(expected)
    assert sum(ex.figure.data[0].y) == w.numel()  # the histogram counts every value
    assert sum(ex.figure.data[1].y) == w.numel()


def test_bits_slider_changes_the_number_of_grid_points(tensors) -> None:
    ex = wq.quant_explorer(tensors, bits=4)
    ex.controls["bits"].value = 3
    assert len(grid(ex)) == 8
    ex.controls["bits"].value = 6
    assert len(grid(ex)) == 64
    assert len(ex.figure.data[1].x) <= 64  # at most one bar per level


def test_scale_and_zero_point_sliders_move_the_grid(tensors) -> None:
    ex = wq.quant_explorer(tensors, bits=4, symmetric=False)
    ex.controls["scale"].value = 0.05
    ex.controls["zero_point"].value = 3
    assert grid(ex) == pytest.approx([0.05 * (q - 3) for q in range(16)], rel=1e-3)
    assert "Z=3" in ex.figure.layout.title.text


def test_symmetric_forces_zero_point_zero_and_signed_range(tensors) -> None:
    ex = wq.quant_explorer(tensors, bits=4, symmetric=False)
    ex.controls["zero_point"].value = 5
    ex.controls["symmetric"].value = True
    s = ex.controls["scale"].value
    assert grid(ex) == pytest.approx([s * q for q in range(-8, 8)])
    assert "Z=0" in ex.figure.layout.title.text


def test_title_reports_the_measured_sqnr_and_clipping(tensors) -> None:
    ex = wq.quant_explorer(tensors, bits=4)
    ex.controls["tensor"].value = "activation"
    ex.controls["scale"].value = 0.1
    ex.controls["zero_point"].value = 0
    a = tensors["activation"]
    x_hat = quant.fake_quantize(a, ex.controls["scale"].value, 0, 0, 15)
    sqnr = quant.sqnr_db(a, x_hat)
    title = ex.figure.layout.title.text
    assert f"SQNR {sqnr:.1f} dB" in title
    hi = ex.controls["scale"].value * 15
    clipped = float((a > hi + ex.controls["scale"].value / 2).float().mean())
    assert f"clipped {100 * clipped:.2f} %" in title
    assert clipped > 0 and len(ex.figure.layout.shapes) == 2


def test_quant_stats_against_direct_computation(tensors) -> None:
    w = tensors["weights"]
    st = wq.quant_stats(w, 0.02, 0, 4, True)
    x_hat = quant.fake_quantize(w, 0.02, 0, -8, 7)
    assert st["sqnr_db"] == pytest.approx(quant.sqnr_db(w, x_hat))
    assert (st["lo"], st["hi"]) == pytest.approx((-0.16, 0.14))
    inside = (w >= -0.17) & (w <= 0.15)
    assert st["clipped"] == pytest.approx(1 - float(inside.float().mean()))
    assert st["rounding_rms"] <= 0.02 / 2 and not math.isnan(st["rounding_rms"])


def test_empty_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        wq.quant_explorer({})


# --- issue 14: tensor switch, zero-point slider, title


def test_switching_tensor_resets_scale_and_zero_point_to_its_minmax(tensors) -> None:
    ex = wq.quant_explorer(tensors, bits=4, symmetric=False)
    ex.controls["tensor"].value = "activation"
    a = tensors["activation"]
    qp = quant.compute_qparams(float(a.min()), float(a.max()), 4, False)
    assert ex.controls["scale"].value == pytest.approx(qp.scale, rel=1e-6)
    assert ex.controls["zero_point"].value == qp.zero_point
    assert "clipped 0.00 %" in ex.figure.layout.title.text  # MinMax clips nothing
    ex.controls["tensor"].value = "weights"  # and back: the weights' own range again
    w = tensors["weights"]
    qp = quant.compute_qparams(float(w.min()), float(w.max()), 4, False)
    assert ex.controls["scale"].value == pytest.approx(qp.scale, rel=1e-6)
    assert grid(ex) == pytest.approx([qp.scale * (q - qp.zero_point) for q in range(16)])


def test_zero_point_slider_offers_only_valid_codes_for_the_bits(tensors) -> None:
    ex = wq.quant_explorer(tensors, bits=4, symmetric=False)
    zp = ex.controls["zero_point"]
    assert (zp.min, zp.max) == (0, 15)
    ex.controls["bits"].value = 8
    assert (zp.min, zp.max) == (0, 255)
    zp.value = 253
    ex.controls["bits"].value = 6  # the slider itself shows the clamped value: no hidden clamp
    assert (zp.min, zp.max, zp.value) == (0, 63, 63)
    assert f"Z={zp.value}" in ex.figure.layout.title.text


def test_zero_point_slider_is_disabled_under_symmetric(tensors) -> None:
    ex = wq.quant_explorer(tensors, bits=4, symmetric=False)
    zp = ex.controls["zero_point"]
    assert not zp.disabled
    ex.controls["symmetric"].value = True
    assert zp.disabled and zp.value == 0 and (zp.min, zp.max) == (-8, 7)
    ex.controls["symmetric"].value = False
    assert not zp.disabled
    assert wq.quant_explorer(tensors, symmetric=True).controls["zero_point"].disabled


def test_quant_stats_refuses_a_zero_point_outside_the_codes(tensors) -> None:
    with pytest.raises(ValueError, match="zero_point"):
        wq.quant_stats(tensors["weights"], 0.02, 253, 6, False)


def test_scale_slider_reaches_every_tensors_minmax_scale() -> None:
    big = torch.linspace(0, 170, 1000)  # a post-ReLU activation with outliers: S = 11.3 at 4 bits
    ex = wq.quant_explorer({"small": torch.randn(100) * 0.01, "big": big}, bits=4)
    ex.controls["tensor"].value = "big"
    assert ex.controls["scale"].value == pytest.approx(170 / 15, rel=1e-6)


def test_title_is_two_short_lines_with_room_above_the_plot(tensors) -> None:
    ex = wq.quant_explorer(tensors, bits=4)
    lines = ex.figure.layout.title.text.split("<br>")
    assert len(lines) == 2 and all(len(line) <= 70 for line in lines), lines
    assert ex.figure.layout.margin.t >= 80


def test_bad_bins_and_empty_tensors_are_rejected(tensors) -> None:
    with pytest.raises(ValueError, match="bins"):
        wq.quant_explorer(tensors, bins=10**9)
    with pytest.raises(ValueError, match="at least one value"):
        wq.quant_explorer({"empty": torch.zeros(0)})
