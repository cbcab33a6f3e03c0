"""Teacher-assistant chains, confidence weights, the weighted multi-teacher loss, and the
fair-comparison helpers (choice on validation, the winner verdict)."""

import math

import pytest
import torch
import torch.nn.functional as F

from labkit import distill
from labkit.distill import multi_teacher as MT


def _t(shape, seed, scale=1.0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def test_confidence_weights_hand_computed() -> None:
    # one example, two teachers, 2 classes, label 0: teacher 0 logits (0, 0) -> CE ln 2;
    # teacher 1 logits (ln 3, 0) -> p = (3/4, 1/4), CE ln(4/3). softmax(-CE) = (1/2, 3/4) / (5/4)
    t = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])
    y = torch.tensor([0])
    w = MT.confidence_weights(t, y)
    assert torch.allclose(w, torch.tensor([[0.4, 0.6]]), atol=1e-6)
    # max-prob: (1/2, 3/4) normalised -> (0.4, 0.6) as well on this case; equal -> (0.5, 0.5)
    assert torch.allclose(MT.confidence_weights(t, y, "max-prob"), torch.tensor([[0.4, 0.6]]))
    assert torch.allclose(MT.confidence_weights(t, y, "equal"), torch.tensor([[0.5, 0.5]]))


def test_confidence_weights_favour_the_right_teacher() -> None:
    y = torch.tensor([0, 1])
    right = torch.tensor([[5.0, 0.0], [0.0, 5.0]])  # (2, 2) right and sure
    wrong = torch.tensor([[0.0, 5.0], [5.0, 0.0]])  # (2, 2) wrong and sure
    t = torch.stack([right, wrong], dim=1)  # (N=2, K=2, C=2)
    w = MT.confidence_weights(t, y)
    assert torch.allclose(w.sum(1), torch.ones(2))
    assert bool((w[:, 0] > 0.99).all())
    # max-prob cannot tell them apart: both are equally sure
    assert torch.allclose(MT.confidence_weights(t, y, "max-prob"), torch.full((2, 2), 0.5))


def test_multi_teacher_loss_equals_kd_when_teachers_agree() -> None:
    s = _t((6, 5), 0).requires_grad_(True)
    t = _t((6, 5), 1, 3.0)
    y = torch.arange(6) % 5
    b = distill.TransferSet(torch.zeros(6, 1, 8, 8), y, torch.stack([t, t, t], dim=1))
    student = lambda x: s  # noqa: E731 (the loss only calls student(b.x))
    for weighting in MT.WEIGHTINGS:
        got = MT.multi_teacher_loss(4.0, 0.7, weighting)(student, b, 0.0)
        assert torch.allclose(got, distill.distillation_loss(s, t, y, 4.0, 0.7), atol=1e-5)


def test_multi_teacher_loss_zero_soft_term_when_student_is_teacher() -> None:
    t = _t((4, 3), 2, 2.0)
    y = torch.tensor([0, 1, 2, 0])
    b = distill.TransferSet(torch.zeros(4, 1, 8, 8), y, torch.stack([t, t], dim=1))
    soft = MT.multi_teacher_loss(2.0, 1.0, "confidence")(lambda x: t, b, 0.0)
    assert float(soft) == pytest.approx(0.0, abs=1e-6)
    other = torch.stack([t, _t((4, 3), 3, 2.0)], dim=1)
    b2 = distill.TransferSet(b.x, y, other)
    assert float(MT.multi_teacher_loss(2.0, 1.0, "equal")(lambda x: t, b2, 0.0)) > 0.01


def test_multi_transfer_set_keeps_each_teacher() -> None:
    teachers = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)) for _ in range(3)]
    x, y = _t((4, 1, 8, 8), 4), torch.arange(4)
    ts = MT.multi_transfer_set(x, y, teachers)
    assert ts.teacher_logits.shape == (36, 3, 10)
    with torch.no_grad():
        mean = ts.teacher_logits.mean(1)
        assert torch.allclose(mean, distill.transfer_set(x, y, teachers).teacher_logits, atol=1e-6)


def test_assistant_chain_returns_each_step() -> None:
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    x, y = _t((20, 1, 8, 8), 5), torch.arange(20) % 10
    chain = MT.assistant_chain(x, y, teacher, [16, 4], distill.kd_loss(4.0, 0.9), seed=0, epochs=2)
    assert [m[1].out_features for m in chain] == [16, 4]


def test_winner_verdict_only_with_a_clear_gap() -> None:
    clear = {"A": [90.0, 90.5, 91.0], "B": [80.0, 80.4, 79.8], "C": [70.0, 70.3, 69.9]}
    assert distill.winner_verdict(clear).startswith("A wins")
    noisy = {"A": [90.0, 80.0, 85.0], "B": [84.0, 86.0, 83.0]}
    assert distill.winner_verdict(noisy).startswith(
        "no clear winner"
    ) and "B" in distill.winner_verdict(noisy)


def test_choose_on_validation_picks_the_best_pair() -> None:
    xv = _t((10, 1, 8, 8), 6)
    yv = torch.zeros(10, dtype=torch.long)

    def fit(T, a):  # a "model" that is right on every row only for T = 8, alpha = 0.5
        good = T == 8 and a == 0.5
        return lambda x: F.one_hot(torch.full((len(x),), 0 if good else 1), 10).float()

    best, accs = distill.choose_on_validation(fit, [(2, 0.5), (8, 0.5), (8, 0.9)], xv, yv)
    assert best == (8, 0.5) and accs[(8, 0.5)] == 100.0 and accs[(2, 0.5)] == 0.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: MT.confidence_weights(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)),
            "teacher_logits",
        ),
        (
            lambda: MT.confidence_weights(
                torch.zeros(2, 2, 3), torch.zeros(2, dtype=torch.long), "mean"
            ),
            "mode",
        ),
        (
            lambda: MT.confidence_weights(torch.zeros(2, 2, 3), torch.tensor([0, 3])),
            "class indices",
        ),
        (lambda: MT.multi_teacher_loss(T=-1), "T"),
        (lambda: MT.assistant_chain(None, None, None, [], distill.ce_loss(), seed=0), "widths"),
        (lambda: distill.train_variant("FitNets", None, 4.0, 0.9, seed=0), "variant"),
        (lambda: distill.winner_verdict({"A": [1.0, 2.0]}), "at least 2 variants"),
        (lambda: distill.choose_on_validation(lambda T, a: None, [], None, None), "grid"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()
