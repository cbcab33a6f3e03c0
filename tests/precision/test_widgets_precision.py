"""The float-format explorer: changing a control in Python redraws the right bits."""

import struct

import torch

from labkit.precision import widget as wp


def bars(explorer) -> dict[str, tuple[list[int], list[int]]]:
    return {t.name: (list(t.x), list(t.y)) for t in explorer.figure.data}


def bits_msb_first(explorer) -> list[int]:
    """Read the bit bars back as a list, most significant bit first."""
    pos_to_bit = {}
    for x, y in bars(explorer).values():
        pos_to_bit.update(zip(x, y, strict=True))
    return [pos_to_bit[p] for p in sorted(pos_to_bit, reverse=True)]


def test_initial_figure_shows_fp16_bits_of_the_value() -> None:
    ex = wp.float_format_explorer(value=-2.0, fmt="fp16")
    assert bits_msb_first(ex) == [int(c) for c in f"{0xC000:016b}"]
    assert [len(x) for x, _ in bars(ex).values()] == [1, 5, 10]


def test_changing_the_format_redraws_with_its_layout() -> None:
    ex = wp.float_format_explorer(value=0.1, fmt="fp16")
    ex.controls["format"].value = "fp32"
    fp32_bits = struct.unpack(">I", struct.pack(">f", 0.1))[0]  # Python's own float32 packing
    assert bits_msb_first(ex) == [int(c) for c in f"{fp32_bits:032b}"]
    assert [len(x) for x, _ in bars(ex).values()] == [1, 8, 23]
    ex.controls["format"].value = "bf16"
    bf16 = int(torch.tensor(0.1).to(torch.bfloat16).view(torch.int16)) & 0xFFFF
    assert bits_msb_first(ex) == [int(c) for c in f"{bf16:016b}"]
    assert "bf16" in ex.figure.layout.title.text


def test_changing_the_value_updates_bits_and_error() -> None:
    ex = wp.float_format_explorer(value=1.0, fmt="fp16")
    assert "relative error 0.00e+00" in ex.figure.layout.title.text
    ex.controls["value"].value = 1e-8  # underflows in fp16
    assert sum(bits_msb_first(ex)) == 0
    assert "zero" in ex.figure.layout.title.text
    assert "relative error 1.00e+00" in ex.figure.layout.title.text
    ex.controls["value"].value = 70000.0  # overflows
    assert bits_msb_first(ex) == [int(c) for c in f"{0x7C00:016b}"]
    assert "inf" in ex.figure.layout.title.text


def test_update_figure_works_on_a_plain_figure_too() -> None:
    """The explorer may redraw a go.Figure (not a FigureWidget): the update is the same."""
    import plotly.graph_objects as go

    fig = go.Figure(wp.float_format_figure())
    wp.update_figure(fig, {"format": "bf16", "value": 1.0})
    pos_to_bit = {}
    for t in fig.data:
        pos_to_bit.update(zip(t.x, t.y, strict=True))
    assert [pos_to_bit[p] for p in sorted(pos_to_bit, reverse=True)] == [
        int(c) for c in f"{0x3F80:016b}"
    ]
    assert fig.layout.margin.t >= 80  # the two-line title is not cut off


def test_non_finite_and_saturating_values_have_a_title() -> None:
    ex = wp.float_format_explorer(value=500.0, fmt="fp8_e4m3")
    assert "stored as 448" in ex.figure.layout.title.text  # torch's cast saturates
    for value in (float("nan"), float("inf")):
        ex.controls["value"].value = value
        assert "relative error nan" not in ex.figure.layout.title.text
    ex.controls["format"].value = "fp16"
    assert "inf" in ex.figure.layout.title.text


def test_unknown_format_is_a_clear_error() -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown float format"):
        wp.float_format_explorer(fmt="fp12")
