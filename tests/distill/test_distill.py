"""labkit.distill: the KD loss against a hand computation, T^2, gradients, data, training."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from labkit import distill, train

FAST = settings(max_examples=40, deadline=None)


def _logits(n: int, c: int, seed: int, scale: float = 2.0) -> torch.Tensor:
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed)) * scale


def _hand_kd(s, t, y, T, alpha) -> float:
    """The formula written out element by element in Python floats."""
    n, c = len(s), len(s[0])

    def softmax(row):
        m = max(row)
        e = [math.exp((v - m) / T) for v in row]
        return [v / sum(e) for v in e]

    ce = 0.0
    kl = 0.0
    for i in range(n):
        m = max(s[i])
        log_z = m + math.log(sum(math.exp(v - m) for v in s[i]))
        ce += log_z - s[i][y[i]]
        ps, pt = softmax(s[i]), softmax(t[i])
        kl += sum(pt[j] * (math.log(pt[j]) - math.log(ps[j])) for j in range(c))
    return (1 - alpha) * ce / n + alpha * T * T * kl / n


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.9), (8.0, 0.3), (2.0, 1.0)])
def test_loss_equals_hand_computation(T: float, alpha: float) -> None:
    s, t = _logits(5, 4, 0), _logits(5, 4, 1, scale=4.0)
    y = torch.tensor([0, 3, 1, 2, 3])
    got = distill.distillation_loss(s, t, y, T, alpha)
    expected = _hand_kd(s.tolist(), t.tolist(), y.tolist(), T, alpha)
    assert got.ndim == 0
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_soft_loss_is_kl_of_teacher_to_student() -> None:
    s, t = _logits(6, 10, 2), _logits(6, 10, 3)
    p_s, p_t = distill.softmax_t(s, 3.0), distill.softmax_t(t, 3.0)
    kl = (p_t * (p_t.log() - p_s.log())).sum(-1).mean()
    assert torch.allclose(distill.soft_loss(s, t, 3.0, scale_t2=False), kl, atol=1e-6)
    assert torch.allclose(distill.soft_loss(s, t, 3.0), 9.0 * kl, atol=1e-5)
    reverse = (p_s * (p_s.log() - p_t.log())).sum(-1).mean()
    assert not torch.allclose(kl, reverse, atol=1e-3)  # the direction matters


def test_t_squared_keeps_the_soft_gradient_size() -> None:
    s, t = _logits(64, 10, 4), _logits(64, 10, 5, scale=4.0)
    with_t2 = [distill.soft_grad_norm(s, t, T) for T in (4.0, 8.0, 16.0, 32.0)]
    without = [distill.soft_grad_norm(s, t, T, scale_t2=False) for T in (4.0, 8.0, 16.0, 32.0)]
    assert max(with_t2) / min(with_t2) < 1.6  # roughly independent of T
    # without T^2 the gradient falls like 1/T^2: x2 in T -> about /4
    for a, b in zip(without, without[1:], strict=False):
        assert 3.0 < a / b < 4.5
    for w, wo, T in zip(with_t2, without, (4.0, 8.0, 16.0, 32.0), strict=True):
        assert w == pytest.approx(wo * T * T, rel=1e-4)


def test_soft_gradient_formula() -> None:
    """d KL / d s = (p_s - p_t) / (N T), so d (T^2 KL) / d s = T (p_s - p_t) / N."""
    s, t, T = _logits(3, 5, 6).requires_grad_(True), _logits(3, 5, 7), 4.0
    distill.soft_loss(s, t, T).backward()
    expected = T * (distill.softmax_t(s.detach(), T) - distill.softmax_t(t, T)) / 3
    assert torch.allclose(s.grad, expected, atol=1e-6)


def test_teacher_gets_no_gradient() -> None:
    torch.manual_seed(0)
    teacher, student = nn.Linear(6, 4), nn.Linear(6, 4)
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    loss = distill.distillation_loss(student(x), teacher(x), y, 4.0, 0.9)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())


def test_alpha_zero_is_cross_entropy_and_alpha_one_is_soft_only() -> None:
    s, t, y = _logits(7, 3, 8), _logits(7, 3, 9), torch.randint(0, 3, (7,))
    assert torch.allclose(distill.distillation_loss(s, t, y, 5.0, 0.0), F.cross_entropy(s, y))
    assert torch.allclose(distill.distillation_loss(s, t, y, 5.0, 1), distill.soft_loss(s, t, 5.0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"student_logits": torch.zeros(4, 3), "teacher_logits": torch.zeros(4, 5)}, "same shape"),
        ({"student_logits": torch.zeros(4), "teacher_logits": torch.zeros(4)}, "dimensions"),
        ({"labels": torch.zeros(4)}, "floating|int64"),
        ({"labels": torch.zeros(3, dtype=torch.int64)}, "3 entries"),
        ({"labels": torch.tensor([0, 1, 2, 7])}, r"\[0, 3\)"),
        ({"T": 0.0}, "T"),
        ({"T": -2.0}, "T"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"student_logits": [[0.0] * 3] * 4}, "torch.Tensor"),
    ],
)
def test_bad_input_raises_a_clear_error(kwargs: dict, match: str) -> None:
    args = {
        "student_logits": torch.zeros(4, 3),
        "teacher_logits": torch.zeros(4, 3),
        "labels": torch.tensor([0, 1, 2, 0]),
        "T": 2.0,
        "alpha": 0.5,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        distill.distillation_loss(**args)


logit_rows = st.lists(
    st.lists(st.floats(-20, 20, allow_nan=False), min_size=4, max_size=4), min_size=1, max_size=6
)


@FAST
@given(s=logit_rows, t_seed=st.integers(0, 1000), T=st.floats(0.5, 30))
def test_soft_loss_is_non_negative_and_zero_on_itself(s, t_seed, T) -> None:
    s = torch.tensor(s, dtype=torch.float64)
    t = torch.randn(s.shape, generator=torch.Generator().manual_seed(t_seed), dtype=torch.float64)
    assert float(distill.soft_loss(s, t * 5, T)) >= -1e-9
    assert abs(float(distill.soft_loss(s, s, T))) < 1e-9


@FAST
@given(s=logit_rows, shift=st.floats(-50, 50), T=st.floats(0.5, 30), alpha=st.floats(0, 1))
def test_loss_ignores_a_constant_added_to_every_logit(s, shift, T, alpha) -> None:
    s = torch.tensor(s, dtype=torch.float64)
    t = s.flip(-1) * 0.5
    y = torch.zeros(len(s), dtype=torch.int64)
    a = distill.distillation_loss(s, t, y, T, alpha)
    b = distill.distillation_loss(s + shift, t - shift, y, T, alpha)
    assert float(a) == pytest.approx(float(b), abs=1e-7)


@FAST
@given(z=st.lists(st.floats(-30, 30), min_size=2, max_size=12), T=st.floats(0.5, 20))
def test_softmax_t_is_a_distribution_and_flattens_with_t(z, T) -> None:
    z = torch.tensor(z, dtype=torch.float64)
    p = distill.softmax_t(z, T)
    assert float(p.sum()) == pytest.approx(1.0) and bool((p >= 0).all())
    h, h_hot = distill.entropy_bits(p), distill.entropy_bits(distill.softmax_t(z, 2 * T))
    assert float(h) <= math.log2(len(z)) + 1e-9
    assert float(h_hot) >= float(h) - 1e-9  # higher T, flatter, more entropy


def test_entropy_bits_known_values() -> None:
    assert float(distill.entropy_bits(torch.full((8,), 1 / 8))) == pytest.approx(3.0)
    assert float(distill.entropy_bits(torch.tensor([1.0, 0.0, 0.0]))) == 0.0
    assert distill.entropy_bits(torch.tensor([[0.5, 0.5], [1.0, 0.0]])).tolist() == [1.0, 0.0]


def test_shifted_copies_are_every_shift() -> None:
    x = torch.arange(2 * 16, dtype=torch.float32).reshape(2, 1, 4, 4)
    out = distill.shifted_copies(x, max_shift=1)
    assert out.shape == (18, 1, 4, 4)
    assert torch.equal(out[4 * 2 : 5 * 2], x)  # copy 4 (of 9) is the unshifted image
    # copy 0 shifts the content down-right by one: row r, col c shows x[r-1, c-1]
    assert torch.equal(out[0, 0, 1:, 1:], x[0, 0, :-1, :-1])
    assert bool((out[0, 0, 0, :] == x.min()).all())  # the uncovered border is background
    with pytest.raises(ValueError, match="max_shift"):
        distill.shifted_copies(x, max_shift=-1)


def test_shift_augment_picks_one_of_the_shifts() -> None:
    x = torch.randn(5, 1, 8, 8)
    out = distill.shift_augment(x, torch.Generator().manual_seed(0))
    copies = distill.shifted_copies(x).reshape(9, 5, 1, 8, 8)
    for i in range(5):
        assert any(torch.equal(out[i], copies[k, i]) for k in range(9))


@pytest.fixture(scope="module")
def teachers():
    return distill.load_teachers()


def test_load_teachers_gives_accurate_frozen_teachers(teachers) -> None:
    from labkit import data

    models, meta = teachers
    test = data.digits()["test"]
    accs = [train.accuracy(t, test.x, test.y) for t in models]
    stored = [float(a) for a in meta["test_accuracy"].split(",")]
    assert accs == pytest.approx(stored, abs=1e-3)  # the checkpoint is the one trained
    assert min(accs) > 0.9
    for t in models:
        assert not t.training and not any(p.requires_grad for p in t.parameters())


def test_transfer_set_shapes_and_multi_teacher_mean(teachers) -> None:
    models, _ = teachers
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    ts = distill.transfer_set(x, y, models, features=True)
    assert ts.x.shape == (36, 1, 8, 8) and ts.y.tolist() == [0, 1, 2, 3] * 9
    with torch.no_grad():
        mean = torch.stack([t(ts.x) for t in models]).mean(0)
        feats = distill.split_head(models[0])[0](ts.x)
    assert torch.allclose(ts.teacher_logits, mean, atol=1e-5)
    assert ts.teacher_features.shape == (36, distill.feature_dim(models[0]))
    assert torch.allclose(ts.teacher_features, feats)
    plain = distill.transfer_set(x, y)
    assert plain.teacher_logits is None and plain.teacher_features is None
    part = distill.take(ts, torch.tensor([0, 5]))
    assert part.x.shape == (2, 1, 8, 8) and part.teacher_features.shape[0] == 2
    with pytest.raises(ValueError, match="same length"):
        distill.transfer_set(x, y[:3])
    with pytest.raises(ValueError, match="teacher"):
        distill.transfer_set(x, y, features=True)


def _toy_set(teacher: nn.Module | None = None) -> distill.TransferSet:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 1, 8, 8, generator=g), torch.arange(20) % 10
    return distill.transfer_set(x, y, teacher if teacher is not None else (), features=True)


def test_train_student_is_deterministic_and_learns(teachers) -> None:
    ts = _toy_set(teachers[0][0])
    a = distill.train_student(ts, distill.kd_loss(4.0, 0.9), seed=1, epochs=5, width=16)
    b = distill.train_student(ts, distill.kd_loss(4.0, 0.9), seed=1, epochs=5, width=16)
    c = distill.train_student(ts, distill.kd_loss(4.0, 0.9), seed=2, epochs=5, width=16)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))
    assert not a.training
    alone = distill.train_student(ts, distill.ce_loss(), seed=1, epochs=30, width=16)
    assert train.accuracy(alone, ts.x, ts.y) > 0.9  # fits its 180 training rows


def test_hint_loss_trains_the_regressor(teachers) -> None:
    teacher = teachers[0][0]
    ts = _toy_set(teacher)
    reg = nn.Linear(16, distill.feature_dim(teacher))
    before = reg.weight.detach().clone()
    distill.train_student(
        ts, distill.hint_kd_loss(reg, beta=0.5), seed=0, epochs=2, width=16, extra=reg
    )
    assert not torch.equal(before, reg.weight)
    with pytest.raises(ValueError, match="features=True"):
        distill.hint_kd_loss(reg)(
            distill.student_model(16), distill.take(ts, [0])._replace(teacher_features=None), 0.0
        )


def test_hint_loss_value_and_shape_check() -> None:
    f_s, f_t = torch.randn(4, 3), torch.randn(4, 5)
    reg = nn.Linear(3, 5)
    assert torch.allclose(distill.hint_loss(f_s, f_t, reg), ((reg(f_s) - f_t) ** 2).mean())
    with pytest.raises(ValueError, match="nn.Linear"):
        distill.hint_loss(f_s, f_t, nn.Linear(3, 4))


def test_alpha_schedule_is_used() -> None:
    sched = distill.linear_schedule(1.0, 0.0)
    assert sched(0.0) == 1.0 and sched(0.5) == 0.5
    seen = []
    ts = _toy_set(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))

    def spy(progress: float) -> float:
        seen.append(progress)
        return sched(progress)

    distill.train_student(ts, distill.kd_loss(2.0, spy), seed=0, epochs=2, batch_size=60)
    assert seen == [0.0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6]
    with pytest.raises(ValueError, match="start"):
        distill.linear_schedule(2.0, 0.0)


def test_kd_loss_needs_teacher_logits() -> None:
    ts = distill.transfer_set(torch.randn(2, 1, 8, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="teacher"):
        distill.kd_loss()(distill.student_model(), ts, 0.0)
    with pytest.raises(ValueError, match="T"):
        distill.kd_loss(T=0)


def test_online_kd_loss_fn_leaves_the_teacher_unchanged(teachers) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    teacher = teachers[0][1]
    before = [p.detach().clone() for p in teacher.state_dict().values()]
    g = torch.Generator().manual_seed(0)
    loader = DataLoader(
        TensorDataset(torch.randn(32, 1, 8, 8, generator=g), torch.arange(32) % 10), 16
    )
    student = distill.student_model(8)
    train.fit(student, loader, epochs=1, loss_fn=distill.kd_loss_fn(teacher, T=4.0))
    after = list(teacher.state_dict().values())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))  # BN stats too


def test_mean_std() -> None:
    assert distill.mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert distill.mean_std([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError):
        distill.mean_std([])


def test_split_head_needs_a_sequential_ending_in_linear() -> None:
    body, head = distill.split_head(distill.student_model(8))
    assert isinstance(head, nn.Linear) and head.in_features == 8 and len(body) == 3
    with pytest.raises(ValueError, match="Sequential"):
        distill.split_head(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))


def test_student_model_and_training_guards() -> None:
    with pytest.raises(ValueError, match="width must be an integer"):
        distill.student_model(width=0)
    with pytest.raises(ValueError, match="GiB"):
        distill.student_model(width=10**8)  # refused before allocating 30 GB
    ts = distill.transfer_set(torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="batch_size"):
        distill.train_student(ts, distill.ce_loss(), seed=0, batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        distill.train_student(ts, distill.ce_loss(), seed=0, lr=-1.0)
    with pytest.raises(ValueError, match="epochs"):
        distill.train_student(ts, distill.ce_loss(), seed=0, epochs=0)


def test_difference_verdicts() -> None:
    clear = distill.difference([88.1, 90.8, 89.2], [82.2, 82.2, 83.3])
    assert clear.clear and clear.diff == pytest.approx(6.8, abs=1e-3)
    assert "above" in clear.verdict("KD", "alone")
    noisy = distill.difference([88.1, 90.8, 89.2], [86.9, 88.1, 88.9])
    assert not noisy.clear and "within noise" in noisy.verdict("hint", "KD")
    # paired by seed: a constant shift under a large seed spread is clear
    paired = distill.difference([80.0, 85.0, 90.0, 95.0], [79.0, 84.1, 88.9, 94.0], paired=True)
    assert (
        paired.clear
        and not distill.difference([80.0, 85.0, 90.0, 95.0], [79.0, 84.1, 88.9, 94.0]).clear
    )
    with pytest.raises(ValueError, match="at least 2"):
        distill.difference([1.0], [2.0, 3.0])
    with pytest.raises(ValueError, match="paired"):
        distill.difference([1.0, 2.0], [2.0, 3.0, 4.0], paired=True)


def test_teachers_are_a_registered_checkpoint() -> None:
    from labkit import assets

    entry = assets.REGISTRY["kd_teachers"]
    assert entry.train is distill.train_teachers
    built = entry.build(assets.metadata("kd_teachers"))
    assert [type(m) for m in built] == [type(m) for m in distill.teacher_models()]


# ----------------------------------------------------------------------------- omitted class
def _head_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))


def test_without_class_removes_every_example_of_it() -> None:
    x, y = torch.arange(12.0).reshape(6, 2), torch.tensor([0, 1, 2, 1, 0, 1])
    xs, ys = distill.without_class(x, y, 1)
    assert ys.tolist() == [0, 2, 0] and xs[:, 0].tolist() == [0.0, 4.0, 8.0]


def test_class_bias_sweep_moves_one_logit_only() -> None:
    model = _head_model()
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    b, shifted = distill.class_bias_sweep(model, x, y, 2, [1.5])
    with torch.no_grad():
        diff = shifted(x) - model(x)
    assert b == 1.5
    assert torch.allclose(diff[:, 2], torch.full((5,), 1.5))
    assert torch.allclose(diff[:, :2], torch.zeros(5, 2))
    assert model[-1].bias[2] != shifted[-1].bias[2]  # the original is not changed


def test_class_bias_sweep_finds_the_offset_that_makes_the_class_appear() -> None:
    """A model that never predicts class 2: a large enough offset on validation fixes it."""
    model = _head_model()
    with torch.no_grad():
        model[-1].weight.zero_()
        model[-1].weight[0, 0] = model[-1].weight[1, 1] = model[-1].weight[2, 2] = 1.0
        model[-1].bias.copy_(torch.tensor([0.0, 0.0, -5.0]))  # class 2 pushed down
    x = torch.eye(3, 4).repeat(4, 1)  # rows e0, e1, e2 (4 copies): label = the hot index
    y = torch.arange(3).repeat(4)
    assert distill.recognised(model, x, y, 2) == (0, 4)
    b, shifted = distill.class_bias_sweep(model, x, y, 2, [0.0, 1.0, 2.0, 4.5, 5.5, 7.0, 20.0])
    assert b == 4.5  # the first offset that recognises every 2 without stealing 0s and 1s
    assert distill.recognised(shifted, x, y, 2) == (4, 4)
    assert distill.class_bias_sweep(model, x, y, 2, [0.0])[0] == 0.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: distill.without_class(torch.zeros(3, 2), torch.zeros(3).long(), 0), "nothing"),
        (lambda: distill.without_class(torch.zeros(3, 2), torch.zeros(2).long(), 1), "one per row"),
        (lambda: distill.without_class(torch.zeros(3, 2), torch.zeros(3), 1), "integer labels"),
        (
            lambda: distill.class_bias_sweep(
                nn.Sequential(nn.ReLU()), torch.zeros(2, 4), torch.zeros(2).long(), 0, [0.0]
            ),
            "ending in a Linear",
        ),
        (
            lambda: distill.class_bias_sweep(
                _head_model(), torch.zeros(2, 4), torch.zeros(2).long(), 3, [0.0]
            ),
            "cls",
        ),
        (
            lambda: distill.class_bias_sweep(
                _head_model(), torch.zeros(2, 4), torch.zeros(2).long(), 0, []
            ),
            "offsets",
        ),
        (
            lambda: distill.recognised(_head_model(), torch.zeros(2, 4), torch.zeros(2).long(), 1),
            "no example",
        ),
        (lambda: distill.recognised("model", torch.zeros(2, 4), torch.zeros(2).long(), 0), "model"),
    ],
)
def test_omitted_class_bad_input_is_named(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
