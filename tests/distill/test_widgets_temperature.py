"""The temperature explorer: moving a slider in Python redraws the right softmax bars."""

import math

import pytest
import torch

from labkit import generate
from labkit.distill import widget as wt

LOGITS = torch.tensor([4.0, 1.0, 0.5, -1.0, 2.5])
LABELS = ["a", "b", "c", "d", "e"]


def heights(ex) -> list[float]:
    return list(ex.figure.data[0].y)


def entropy(p: torch.Tensor) -> float:
    return float(-(p[p > 0] * p[p > 0].log2()).sum())


def test_initial_bars_are_softmax_at_t1() -> None:
    ex = wt.temperature_explorer(LOGITS, LABELS, title="toy")
    assert list(ex.figure.data[0].x) == LABELS
    assert heights(ex) == pytest.approx(torch.softmax(LOGITS, -1).tolist(), abs=1e-6)
    p = torch.softmax(LOGITS, -1)
    assert f"entropy {entropy(p):.2f} bits" in ex.figure.layout.title.text
    assert "toy: T = 1.0" in ex.figure.layout.title.text
    assert f"(max {math.log2(5):.2f})" in ex.figure.layout.title.text
    assert "top_k" not in ex.controls  # no top-k slider unless asked for


@pytest.mark.parametrize("T", [0.5, 3.0, 20.0])
def test_moving_the_t_slider_redraws_softmax_over_t(T: float) -> None:
    ex = wt.temperature_explorer(LOGITS, LABELS)
    before = heights(ex)
    ex.controls["T"].value = T
    p = torch.softmax(LOGITS / T, -1)
    assert heights(ex) == pytest.approx(p.tolist(), abs=1e-6)
    assert heights(ex) != pytest.approx(before, abs=1e-3)
    assert f"T = {T:.1f}, entropy {entropy(p):.2f} bits" in ex.figure.layout.title.text
    assert list(ex.figure.data[0].text) == [f"{v:.2f}" for v in p.tolist()]


def test_higher_t_raises_the_entropy() -> None:
    ex = wt.temperature_explorer(LOGITS, LABELS)
    seen = []
    for T in (0.5, 1.0, 4.0, 20.0):
        ex.controls["T"].value = T
        seen.append(wt.temperature_probs(LOGITS, T)[1])
    assert seen == sorted(seen) and seen[-1] < math.log2(5)


def test_top_k_slider_masks_all_but_the_k_largest() -> None:
    ex = wt.temperature_explorer(LOGITS, LABELS, top_k=0, probs=generate.next_token_probs)
    assert heights(ex) == pytest.approx(torch.softmax(LOGITS, -1).tolist(), abs=1e-6)  # 0 = off
    ex.controls["top_k"].value = 2  # keeps 'a' (4.0) and 'e' (2.5)
    ex.controls["T"].value = 2.0
    kept = torch.softmax(torch.tensor([4.0, 2.5]) / 2.0, -1).tolist()
    assert heights(ex) == pytest.approx([kept[0], 0.0, 0.0, 0.0, kept[1]], abs=1e-6)
    assert "top-k 2" in ex.figure.layout.title.text
    ex.controls["top_k"].value = 1
    assert heights(ex) == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert "entropy 0.00 bits" in ex.figure.layout.title.text
    ex.controls["top_k"].value = 0
    assert heights(ex) == pytest.approx(torch.softmax(LOGITS / 2.0, -1).tolist(), abs=1e-6)


def test_character_labels_and_many_classes() -> None:
    chars = [" ", "\n", "e", "t"] + [chr(ord("A") + i) for i in range(26)]
    logits = torch.linspace(-2, 3, len(chars))
    ex = wt.temperature_explorer(
        logits, chars, top_k=5, xlabel="next character", probs=generate.next_token_probs
    )
    assert list(ex.figure.data[0].x)[:2] == ["␣", "⏎"]
    assert ex.figure.data[0].text is None  # too many bars to print each value
    assert sum(v > 0 for v in heights(ex)) == 5
    assert ex.figure.layout.xaxis.title.text == "next character"


@pytest.mark.parametrize(
    "logits, labels, kwargs, match",
    [
        (torch.zeros(2, 5), LABELS, {}, "dimensions"),
        (torch.arange(5), LABELS, {}, "floating"),
        ([1.0, 2.0], ["a", "b"], {}, "torch.Tensor"),
        (LOGITS, LABELS[:4], {}, "one label per logit"),
        (LOGITS, ["a", "a", "b", "c", "d"], {}, "distinct"),
        (torch.tensor([1.0, float("nan"), 0.0, 0.0, 0.0]), LABELS, {}, "finite"),
        (LOGITS, LABELS, {"top_k": 6}, "top_k"),
        (LOGITS, LABELS, {"top_k": -1}, "top_k"),
        (LOGITS, LABELS, {"T": 0.0}, "T must be"),
    ],
)
def test_bad_input_raises_value_error(logits, labels, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        wt.temperature_explorer(logits, labels, probs=generate.next_token_probs, **kwargs)


def test_top_k_without_a_masking_function_is_refused() -> None:
    """03 teaches only the temperature; top-k is 11's lesson, passed in as probs=."""
    with pytest.raises(ValueError, match="probs="):
        wt.temperature_explorer(LOGITS, LABELS, top_k=2)
