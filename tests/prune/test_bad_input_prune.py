"""labkit.prune on bad input: one ValueError naming the parameter, before any big allocation."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from labkit import models, prune


def _cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return models.cnn(4).eval()


def _loader(n: int = 4) -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(n, 1, 8, 8), torch.zeros(n).long()), batch_size=2)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: prune.prunable_weights("model.safetensors"), "model"),
        (lambda: prune.prune_model({"0.weight": torch.zeros(3, 3)}, 0.5), "model"),
        (lambda: prune.sparsity("abc"), "model_or_tensor"),
        (lambda: prune.layer_sparsity(None), "model"),
        (lambda: prune.l1_penalty([nn.Linear(2, 2)]), "model"),
        (lambda: prune.apply_masks("model", {}), "model"),
        (lambda: prune.finetune("model", _loader()), "model"),
        (lambda: prune.recalibrate_bn(None, _loader()), "model"),
        (lambda: prune.sensitivity_scan("model", _loader(), [0.5]), "model"),
        (lambda: prune.model_storage_bytes({"w": torch.zeros(2)}), "model"),
        (lambda: prune.inference_fn("model.onnx"), "model"),
        (lambda: prune.channel_plan({"0": nn.Conv2d(1, 2, 3)}, 0.5), "model"),
        (lambda: prune.prune_channels("model", 0.5), "model"),
        (lambda: prune.masked_forward_equivalent(nn.Linear(2, 2), {}), "nn.Sequential"),
        (lambda: prune.prune_conv_pair("conv", None, nn.Conv2d(4, 2, 3), [0]), "convolutions"),
        (lambda: prune.prune_conv_pair(nn.Conv2d(1, 4, 3), None, "next", [0]), "consumer"),
        (
            lambda: prune.prune_conv_pair(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3), [0]),
            "bn",
        ),
        (lambda: prune.prunable_weights(nn.Sequential(nn.ReLU())), "no nn.Conv2d or nn.Linear"),
        (lambda: prune.l1_proximal_step("model", 0.1, 1e-3), "model"),
        (lambda: prune.fit_l1(None, _loader(), 0.1), "model"),
        (lambda: prune.channel_scores(nn.Linear(2, 2)), "nn.Sequential"),
    ],
)
def test_a_non_model_where_a_model_is_expected(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: prune.magnitude_mask(torch.zeros(0), 0.5), "weight is empty"),
        (lambda: prune.sparsity(torch.zeros(0)), "model_or_tensor is empty"),
        (lambda: prune.storage_bytes(torch.zeros(0, 4)), "weight is empty"),
        (lambda: prune.nm_mask(torch.zeros(0, 4)), "weight is empty"),
        (lambda: prune.global_masks({}, 0.5), "weights"),
        (lambda: prune.finetune(_cnn(), _loader(0)), "loader is empty"),
        (lambda: prune.recalibrate_bn(_cnn(), []), "loader is empty"),
        (lambda: prune.sensitivity_scan(_cnn(), "loader", [0.5]), "loader"),
    ],
)
def test_empty_tensors_and_loaders(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "keep, match",
    [
        ([0.5, 1.5], "channel indices"),
        ([0, 0, 1], "distinct"),
        (torch.tensor([True, False, True, False]), "channel indices"),
        ([], "non-empty"),
        ([[0, 1]], "1-D"),
        ("0, 1", "channel indices"),
    ],
)
def test_keep_must_be_distinct_integer_channels(keep: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        prune.prune_conv_pair(nn.Conv2d(1, 4, 3), None, nn.Conv2d(4, 2, 3), keep)


def test_a_plan_for_another_model_is_refused() -> None:
    model = _cnn()  # convs at 0, 3, 6 with 4, 8, 8 channels
    with pytest.raises(ValueError, match="not prunable convs"):
        prune.masked_forward_equivalent(model, {5: torch.tensor([0])})
    with pytest.raises(ValueError, match=r"plan\[0\]"):
        prune.masked_forward_equivalent(model, {0: torch.tensor([0, 99])})
    with pytest.raises(ValueError, match=r"keep\[3\]"):
        prune.prune_channels(model, 0.5, keep={3: [7, 8]})
    with pytest.raises(ValueError, match="criterion"):
        prune.channel_plan(model, 0.5, criterion="l2")
    with pytest.raises(ValueError, match="loader="):
        prune.channel_plan(model, 0.5, criterion="taylor")
    with pytest.raises(ValueError, match="loader is empty"):
        prune.channel_scores(model, "entropy", [])
    with pytest.raises(ValueError, match="seed"):
        prune.channel_scores(model, "random", seed=-1)
    no_bn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    with pytest.raises(ValueError, match="BatchNorm2d"):
        prune.channel_plan(no_bn, 0.5, criterion="bn")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: prune.finetune(_cnn(), _loader(), epochs=10**6), "epochs"),
        (lambda: prune.finetune(_cnn(), _loader(), epochs=True), "epochs"),
        (lambda: prune.finetune(_cnn(), _loader(), lr=float("nan")), "lr"),
        (lambda: prune.finetune(_cnn(), _loader(), loss_fn="ce"), "loss_fn"),
        (lambda: prune.sparsity_schedule(0.5, 10**9), "steps"),
        (lambda: prune.sparsity_schedule(0.5, 2.0), "steps"),
        (lambda: prune.iterative_prune(_cnn(), _loader(), _loader(), 0.5, steps=0), "steps"),
        (lambda: prune.recalibrate_bn(_cnn(), _loader(), batches=1.5), "batches"),
        (lambda: prune.recalibrate_bn(_cnn(), _loader(), batches=-2), "batches"),
        (lambda: prune.storage_bytes(torch.ones(4, 4), value_bytes=10**12), "value_bytes"),
        (lambda: prune.storage_bytes(torch.ones(4, 4), index_bytes=2.5), "index_bytes"),
        (lambda: prune.model_storage_bytes(_cnn(), value_bytes=0), "value_bytes"),
        (lambda: prune.nm_mask(torch.ones(4, 8), True, 4), r"n \(weights kept"),
        (lambda: prune.nm_mask(torch.ones(4, 8), 2, 10**9), r"m \(group size"),
        (lambda: prune.sparse_matmul_latency(8, 8, 2, [0.5], rounds=10**6), "rounds"),
        (lambda: prune.sparse_matmul_latency(8, 8, 2, [0.5], repeats=0), "repeats"),
        (lambda: prune.sparse_matmul_latency(8, 8, 2, [0.5], threads=0), "threads"),
        (lambda: prune.sparse_matmul_latency(8.0, 8, 2, [0.5]), "rows"),
        (lambda: prune.sparse_matmul_latency(8, 8, 2, []), "sparsities"),
        (lambda: prune.semi_structured_latency(rows=0), "rows"),
        (lambda: prune.semi_structured_latency(cols=6), "multiple of 4"),
        (lambda: prune.semi_structured_latency(10**6, 10**6, 8), "GiB"),
        (lambda: prune.semi_structured_latency(rounds=1), "rounds"),
    ],
)
def test_zero_negative_fractional_or_huge_counts(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: prune.l1_loss_fn(float("inf")), "lam"),
        (lambda: prune.l1_loss_fn(-1e-4), "lam"),
        (lambda: prune.prune_channels(_cnn(), float("nan")), "ratio"),
        (lambda: prune.sensitivity_scan(_cnn(), _loader(), "0.5"), "sparsities"),
        (lambda: prune.apply_masks(_cnn(), {"0.weight": torch.ones(3)}), "mask for 0.weight"),
        (lambda: prune.apply_masks(_cnn(), {"0.weight": 1.0}), "mask for 0.weight"),
        (lambda: prune.apply_masks(_cnn(), [torch.ones(3)]), "masks"),
    ],
)
def test_numbers_and_masks_out_of_range(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_finetune_checks_the_masks_before_training() -> None:
    model = _cnn()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="mask for"):
        prune.finetune(model, _loader(), {"0.weight": torch.ones(2, 2, dtype=torch.bool)})
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_prune_model_leaves_the_model_untouched_on_bad_input() -> None:
    model = _cnn()
    before = [p.detach().clone() for p in model.parameters()]
    for bad in ({"sparsity": 1.5}, {"sparsity": 0.5, "scope": "row"}):
        with pytest.raises(ValueError, match="sparsity|scope"):
            prune.prune_model(model, **bad)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: prune.l1_proximal_step(_cnn(), -0.1, 1e-3), "lam"),
        (lambda: prune.l1_proximal_step(_cnn(), float("nan"), 1e-3), "lam"),
        (lambda: prune.l1_proximal_step(_cnn(), 0.1, 0.0), "lr"),
        (lambda: prune.l1_proximal_step(_cnn(), 0.1, 1e-3, on="gamma"), "on"),
        (
            lambda: prune.l1_proximal_step(
                nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, affine=False)), 0.1, 1e-3, "bn"
            ),
            "affine",
        ),
        (lambda: prune.fit_l1(_cnn(), _loader(0), 0.1), "loader is empty"),
        (lambda: prune.fit_l1(_cnn(), iter([]), 0.1), "length"),
        (lambda: prune.fit_l1(_cnn(), _loader(), 0.1, proximal=1), "proximal"),
        (lambda: prune.fit_l1(_cnn(), _loader(), 0.1, proximal=False, on="bn"), "on='weights'"),
        (lambda: prune.fit_l1(_cnn(), _loader(), 0.1, epochs=0), "epochs"),
        (lambda: prune.fit_l1(_cnn(), _loader(), 0.1, on="bn", lr_bn=0.0), "lr_bn"),
    ],
)
def test_l1_training_arguments_are_named(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
