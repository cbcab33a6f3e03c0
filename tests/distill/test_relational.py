"""Attention transfer and relational KD: zero when the student copies the teacher, positive
otherwise, hand-computed values on tiny cases, invariances, gradients and bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from labkit import distill
from labkit.distill import relational as R


def _feats(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_attention_map_hand_computed() -> None:
    a = torch.tensor([[[[1.0, 0.0], [2.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]]])  # (1, 2, 2, 2)
    # sum_c A^2 = [[2, 0], [4, 0]] -> (2, 0, 4, 0) / sqrt(20)
    expected = torch.tensor([[2.0, 0.0, 4.0, 0.0]]) / math.sqrt(20.0)
    assert torch.allclose(R.attention_map(a), expected)
    assert torch.allclose(R.attention_map(-a), expected)  # |A|: the sign does not matter
    p1 = torch.tensor([[2.0, 0.0, 2.0, 0.0]]) / math.sqrt(8.0)  # p = 1: sum_c |A|
    assert torch.allclose(R.attention_map(a, p=1), p1)


def test_attention_map_rows_have_unit_norm_and_ignore_scale() -> None:
    f = _feats((5, 3, 4, 4), 0)
    q = R.attention_map(f)
    assert q.shape == (5, 16)
    assert torch.allclose(q.norm(dim=1), torch.ones(5))
    assert torch.allclose(R.attention_map(7.0 * f), q, atol=1e-6)


def test_at_loss_zero_for_equal_maps_positive_otherwise() -> None:
    f = _feats((4, 3, 4, 4), 1)
    assert float(R.at_loss(f, f)) == pytest.approx(0.0, abs=1e-6)
    # the channel count may differ: duplicating channels leaves the normalised map unchanged
    assert float(R.at_loss(f, torch.cat([f, f], 1))) == pytest.approx(0.0, abs=1e-6)
    assert float(R.at_loss(f, _feats((4, 64, 4, 4), 2))) > 0.05


def test_at_loss_hand_computed() -> None:
    s = torch.zeros(2, 1, 1, 2)
    s[:, 0, 0, 0] = 1.0  # maps (1, 0)
    t = torch.zeros(2, 1, 1, 2)
    t[0, 0, 0, 1] = 1.0  # (0, 1): distance sqrt(2)
    t[1, 0, 0, 0] = 1.0  # (1, 0): distance 0
    assert float(R.at_loss(s, t)) == pytest.approx(math.sqrt(2) / 2, rel=1e-6)


def test_at_loss_gradient_reaches_student_not_teacher() -> None:
    s = _feats((3, 2, 4, 4), 3).requires_grad_(True)
    t = _feats((3, 8, 4, 4), 4).requires_grad_(True)
    R.at_loss(s, t).backward()
    assert s.grad is not None and float(s.grad.abs().sum()) > 0
    assert t.grad is None


def test_rkd_distance_hand_computed() -> None:
    # student: points 0, 1, 3 on a line -> distances 1, 3, 2, mean 2 -> psi 0.5, 1.5, 1
    s = torch.tensor([[0.0], [1.0], [3.0]])
    # teacher: equilateral -> every psi = 1
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    # huber(x) = x^2 / 2 for |x| < 1: (0.125 + 0.125 + 0) per pair, each pair twice
    assert float(R.rkd_distance_loss(s, t)) == pytest.approx((0.125 + 0.125 + 0.0) / 3, rel=1e-5)


def test_rkd_distance_zero_when_equal_and_scale_free() -> None:
    e = _feats((6, 5), 5)
    assert float(R.rkd_distance_loss(e, e)) == pytest.approx(0.0, abs=1e-5)
    assert float(R.rkd_distance_loss(3.0 * e, e)) == pytest.approx(0.0, abs=1e-5)
    # a rotation into a wider space keeps every distance: still 0
    q, _ = torch.linalg.qr(_feats((8, 8), 6))
    wide = e @ q[:5]  # (6, 8)
    assert float(R.rkd_distance_loss(e, wide)) == pytest.approx(0.0, abs=1e-5)
    assert float(R.rkd_distance_loss(e, _feats((6, 9), 7))) > 0.01


def test_pairwise_distances_match_direct_formula() -> None:
    e = _feats((7, 4), 8)
    d = torch.cdist(e, e)
    n = len(e)
    assert torch.allclose(R.pairwise_distances(e), d / (d.sum() / (n * (n - 1))), atol=1e-5)


def test_rkd_angle_hand_computed() -> None:
    # right angle at the origin vs a straight line through it
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    a_s, a_t = R.triplet_angles(s), R.triplet_angles(t)
    assert float(a_s[0, 1, 2]) == pytest.approx(0.0, abs=1e-6)  # cos 90 degrees
    assert float(a_t[0, 1, 2]) == pytest.approx(-1.0, abs=1e-6)  # cos 180 degrees
    assert torch.allclose(R.rkd_angle_loss(s, t), F.smooth_l1_loss(a_s, a_t))


def test_rkd_angle_zero_when_equal_positive_otherwise() -> None:
    e = _feats((5, 3), 9)
    assert float(R.rkd_angle_loss(e, e)) == pytest.approx(0.0, abs=1e-6)
    assert float(R.rkd_angle_loss(2.5 * e + 1.0, e)) == pytest.approx(0.0, abs=1e-5)
    assert float(R.rkd_angle_loss(e, _feats((5, 3), 10))) > 0.01


def test_student_losses_train_and_give_gradients() -> None:
    torch.manual_seed(0)
    student = distill.student_model(width=32)
    b = distill.TransferSet(
        _feats((20, 1, 8, 8), 11), torch.arange(20) % 10, _feats((20, 10), 12),
        _feats((20, 1024), 13).relu(),
    )  # fmt: skip
    for loss in (R.at_kd_loss((64, 4, 4), (2, 4, 4)), R.rkd_kd_loss()):
        student.zero_grad()
        value = loss(student, b, 0.0)
        value.backward()
        assert value.ndim == 0 and math.isfinite(float(value.detach()))
        assert float(student[1].weight.grad.abs().sum()) > 0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: R.attention_map(torch.zeros(2, 3)), "features"),
        (lambda: R.attention_map(torch.zeros(2, 3, 4, 4), p=0), "p"),
        (lambda: R.at_loss(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 2, 2)), "same H, W"),
        (lambda: R.rkd_distance_loss(torch.zeros(3, 2), torch.zeros(4, 2)), "same rows"),
        (lambda: R.rkd_angle_loss(torch.zeros(1, 2), torch.zeros(1, 2)), "at least 2"),
        (lambda: R.at_kd_loss((64, 4, 4), (2, 2, 2)), "same H, W"),
        (lambda: R.rkd_kd_loss(T=0), "T"),
        (lambda: R.rkd_kd_loss(alpha=1.5), "alpha"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()
