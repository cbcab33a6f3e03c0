"""labkit.distill on bad input: one ValueError naming the parameter, before any big allocation."""

import math

import pytest
import torch
from torch import nn

from labkit import distill

X = torch.zeros(4, 1, 8, 8)
Y = torch.tensor([0, 1, 2, 3])


def _set() -> distill.TransferSet:
    return distill.transfer_set(X, Y)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: distill.ensemble_logits("teacher.safetensors", X), r"teachers\[0\]"),
        (lambda: distill.ensemble_logits([nn.Linear(64, 10), {"w": 1}], X), r"teachers\[1\]"),
        (lambda: distill.ensemble_logits([], X), "at least one teacher"),
        (lambda: distill.transfer_set(X, Y, {"weight": torch.zeros(1)}), "teachers"),
        (lambda: distill.hint_loss(torch.zeros(4, 3), torch.zeros(4, 5), "linear"), "regressor"),
        (lambda: distill.hint_kd_loss("regressor"), "regressor"),
        (lambda: distill.split_head("model.pt"), "Sequential"),
        (lambda: distill.feature_dim(nn.Linear(4, 2)), "Sequential"),
        (lambda: distill.train_student(_set(), distill.ce_loss(), seed=0, extra="reg"), "extra"),
        (lambda: distill.train_student(list(_set()), distill.ce_loss(), seed=0), "TransferSet"),
        (lambda: distill.train_student(_set(), nn.CrossEntropyLoss(), seed=0), "loss"),
    ],
)
def test_a_non_model_where_a_model_is_expected(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_the_online_kd_loss_names_a_bad_teacher_before_the_first_batch() -> None:
    with pytest.raises(ValueError, match=r"teachers\[0\]"):
        distill.kd_loss_fn("teacher.safetensors")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: distill.student_model(width=2.5), "width"),
        (lambda: distill.student_model(width=True), "width"),
        (lambda: distill.student_model(width=-3), "width"),
        (lambda: distill.soft_loss(torch.zeros(4, 0), torch.zeros(4, 0), 2.0), "class"),
        (lambda: distill.soft_loss(torch.zeros(0, 3), torch.zeros(0, 3), 2.0), "example"),
        (
            lambda: distill.distillation_loss(
                torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 2.0, 0.5
            ),
            "example",
        ),
        (lambda: distill.softmax_t(torch.zeros(0), 2.0), "logits is empty"),
        (lambda: distill.entropy_bits(torch.zeros(0)), "probs is empty"),
        (lambda: distill.shifted_copies(torch.zeros(0, 1, 8, 8)), "x is empty"),
        (lambda: distill.transfer_set(torch.zeros(0, 1, 8, 8), Y[:0]), "x is empty"),
    ],
)
def test_degenerate_sizes(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 10**6}, "epochs"),
        ({"epochs": -1}, "epochs"),
        ({"epochs": 2.0}, "epochs"),
        ({"batch_size": 10**12}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"width": 10**9}, "GiB"),
        ({"width": 0.5}, "width"),
        ({"threads": 0}, "threads"),
        ({"lr": float("inf")}, "lr"),
    ],
)
def test_zero_negative_or_huge_training_counts(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        distill.train_student(_set(), distill.ce_loss(), seed=0, **kwargs)


def test_shifts_that_would_allocate_gigabytes_are_refused() -> None:
    with pytest.raises(ValueError, match="max_shift"):
        distill.shifted_copies(X, max_shift=10**6)
    with pytest.raises(ValueError, match="max_shift"):
        distill.shift_augment(X, max_shift=-1)
    many = torch.zeros(20_000, 1, 8, 8)  # 5 MB, but 17^2 shifted copies are 1.5 GB
    with pytest.raises(ValueError, match="GiB"):
        distill.transfer_set(many, torch.zeros(20_000, dtype=torch.long), max_shift=8)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: distill.soft_loss(torch.zeros(4, 3), torch.zeros(5, 3), 2.0), "same shape"),
        (lambda: distill.soft_grad_norm(torch.zeros(4, 3), torch.zeros(4, 2), 2.0), "same shape"),
        (lambda: distill.soft_grad_norm([[0.0] * 3] * 4, torch.zeros(4, 3), 2.0), "torch.Tensor"),
        (
            lambda: distill.hint_loss(torch.zeros(4, 3), torch.zeros(5, 2), nn.Linear(3, 2)),
            "same rows",
        ),
        (lambda: distill.hint_loss(torch.zeros(4, 3), None, nn.Linear(3, 2)), "features=True"),
        (lambda: distill.transfer_set(X, Y, nn.Linear(64, 10), features=True), "Sequential"),
    ],
)
def test_mismatched_shapes_between_arguments(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("T", [float("nan"), float("inf"), -math.inf, 0.0])
def test_nan_or_inf_temperatures(T: float) -> None:
    s, t, y = torch.zeros(4, 3), torch.zeros(4, 3), torch.tensor([0, 1, 2, 0])
    for call in (
        lambda: distill.softmax_t(s, T),
        lambda: distill.soft_loss(s, t, T),
        lambda: distill.soft_grad_norm(s, t, T),
        lambda: distill.distillation_loss(s, t, y, T, 0.5),
        lambda: distill.kd_loss(T),
        lambda: distill.hint_kd_loss(nn.Linear(3, 3), T=T),
    ):
        with pytest.raises(ValueError, match="T"):
            call()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: distill.mean_std("123"), "values"),
        (lambda: distill.mean_std([1.0, float("nan")]), r"values\[1\]"),
        (lambda: distill.difference([1.0, float("inf")], [2.0, 3.0]), r"a\[1\]"),
        (lambda: distill.difference([1.0, 2.0], [2.0, 3.0], level=1.5), "level"),
        (lambda: distill.linear_schedule(float("nan"), 0.0), "start"),
        (lambda: distill.hint_kd_loss(nn.Linear(3, 3), beta=float("nan")), "beta"),
        (lambda: distill.kd_loss(alpha=1.5), "alpha"),
    ],
)
def test_nan_and_out_of_range_numbers(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_mean_std_takes_any_iterable_of_numbers() -> None:
    assert distill.mean_std(v for v in (1.0, 2.0, 3.0)) == pytest.approx((2.0, 1.0))
    assert distill.difference(iter([88.1, 90.8, 89.2]), (82.2, 82.2, 83.3)).clear
