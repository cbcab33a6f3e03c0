"""labkit.accumulation: exact equality with the big batch, and the measured pitfalls."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from labkit import accumulation as acc
from labkit import models

CE = nn.functional.cross_entropy


def data(n: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 64, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def mlp(seed: int = 0, **kw: object) -> nn.Module:
    torch.manual_seed(seed)
    return models.mlp(width=32, **kw)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 60), st.integers(1, 70))
def test_accumulation_equals_big_batch(n: int, micro: int) -> None:
    model, (x, y) = mlp(), data(n)
    ref = acc.big_batch_gradients(model, CE, x, y)
    got = acc.accumulate_gradients(model, CE, x, y, micro)
    assert all(torch.allclose(g, r, rtol=1e-5, atol=1e-6) for g, r in zip(got, ref, strict=True))


def test_wrong_versions_and_their_errors() -> None:
    model, (x, y) = mlp(), data(48)
    ref = acc.big_batch_gradients(model, CE, x, y)
    no_div = acc.accumulate_wrong(model, CE, x, y, 12, "no_divide")  # k = 4
    assert acc.allclose(no_div, [4 * r for r in ref], rtol=1e-4, atol=1e-6)
    even = acc.accumulate_wrong(model, CE, x, y, 12, "divide_by_k")
    assert acc.allclose(even, ref)  # loss / k is right when micro-batches are equal
    uneven = acc.accumulate_wrong(model, CE, x, y, 20, "divide_by_k")  # 20, 20, 8
    assert not acc.allclose(uneven, ref)
    assert acc.max_rel_diff(uneven, ref) > 0.01
    assert acc.allclose(acc.accumulate_gradients(model, CE, x, y, 20), ref)


def test_training_with_accumulation_gives_the_same_weights() -> None:
    x, y = data(64)
    big = acc.train_accumulated(mlp(), x, y, steps=5, lr=0.5)
    small = acc.train_accumulated(mlp(), x, y, steps=5, lr=0.5, micro_batch_size=16)
    for p, q in zip(big.parameters(), small.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-6)


def test_forgetting_the_division_is_a_k_times_learning_rate() -> None:
    x, y = data(64)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    acc.accumulate_wrong(model, CE, x, y, 16, "no_divide")
    opt.step()
    reference = acc.train_accumulated(mlp(), x, y, steps=1, lr=0.4)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6)


def test_batchnorm_breaks_equality_but_eval_mode_does_not() -> None:
    torch.manual_seed(0)
    model = models.cnn(width=4)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    effect = acc.batchnorm_effect(model, x, y, 8)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "state restored"
    assert effect["grad_rel_error"] > 1e-2
    model.eval()
    ref = acc.big_batch_gradients(model, CE, x, y)
    assert acc.allclose(acc.accumulate_gradients(model, CE, x, y, 8), ref, rtol=1e-4, atol=1e-6)


def test_batchnorm_cold_running_stats_are_the_ema_formula_not_accumulation() -> None:
    """One step after init the running means differ by (1 - 0.9^k) / 0.1 - 1: an EMA artefact.

    After warm-up only the real effect is left: small, and larger for smaller micro-batches.
    """
    torch.manual_seed(0)
    x, y = torch.rand(48, 1, 8, 8), torch.randint(0, 10, (48,))  # image-like: non-zero means
    effects = {}
    for micro in (24, 4):
        torch.manual_seed(0)
        effects[micro] = acc.batchnorm_effect(models.cnn(width=4), x, y, micro)
    for micro, k in ((24, 2), (4, 12)):
        e = effects[micro]
        assert e["ema_prediction"] == pytest.approx((1 - 0.9**k) / 0.1 - 1)
        assert e["cold_mean_rel_diff"] == pytest.approx(e["ema_prediction"], rel=0.15)
        assert e["warm_mean_rel_diff"] < 0.1 * e["cold_mean_rel_diff"]
    assert 0 < effects[24]["warm_mean_rel_diff"] < effects[4]["warm_mean_rel_diff"]
    assert 0 < effects[24]["warm_var_rel_diff"] < effects[4]["warm_var_rel_diff"]


def test_dropout_masks_differ_but_eval_is_exact() -> None:
    model, (x, y) = mlp(dropout=0.3), data(48)
    effect = acc.dropout_effect(model, x, y, 12)
    assert effect["grad_rel_error"] > 1e-2
    assert effect["eval_rel_error"] < 1e-5


def test_clip_after_unscale() -> None:
    model, (x, y) = mlp(), data(48)
    out = acc.clip_order_effect(model, x, y, 16, max_norm=0.05, init_scale=2.0**10)
    assert out["true_norm"] > 0.05
    assert out["right_order"] == pytest.approx(0.05, rel=1e-3)
    assert out["wrong_order"] == pytest.approx(0.05 / 2**10, rel=1e-3)


def test_ddp_no_sync_all_reduces_once() -> None:
    model, (x, y) = mlp(), data(48)
    chunks = acc.micro_batches(x, y, 12)
    ref = acc.big_batch_gradients(model, CE, x, y)
    every = acc.count_allreduces(model, chunks, use_no_sync=False)
    once = acc.count_allreduces(model, chunks, use_no_sync=True)
    assert (every["allreduces"], once["allreduces"]) == (4, 1)
    assert acc.allclose(every["grads"], ref) and acc.allclose(once["grads"], ref)


def test_saved_activation_bytes_counts_what_autograd_keeps() -> None:
    n, width = 40, 32
    model, (x, y) = mlp(), data(n)
    # mlp(depth=2): Linear1 saves x (n*64); each ReLU's output is saved once for the ReLU
    # and the next Linear (2 x n*width); log_softmax saves its output (n*10); nll_loss the
    # int64 target (n) and a float scalar (total weight). Parameters are not counted.
    expected = 4 * n * 64 + 2 * 4 * n * width + 4 * n * 10 + 8 * n + 4
    assert acc.saved_activation_bytes(model, x, y) == expected
    # a micro-batch is a slice of the batch: only its rows count, not the whole storage
    m = 10
    micro = 4 * m * 64 + 2 * 4 * m * width + 4 * m * 10 + 8 * m + 4
    assert acc.saved_activation_bytes(model, x[:m], y[:m]) == micro


def test_peak_memory_sweep_rows() -> None:
    model, (x, y) = mlp(), data(64)
    rows = acc.peak_memory_sweep(model, x, y, [64, 16, 4])
    assert [r["micro_batch"] for r in rows] == [4, 16, 64]
    assert [r["k"] for r in rows] == [16, 4, 1]
    saved = [r["saved_activations_mib"] for r in rows]
    assert saved[0] < saved[1] < saved[2]
    assert all(r["peak_mib"] >= 0 for r in rows)


def test_bad_input_is_a_clear_error() -> None:
    model, (x, y) = mlp(), data(8)
    with pytest.raises(ValueError, match="micro_batch_size"):
        acc.accumulate_gradients(model, CE, x, y, 0)
    with pytest.raises(ValueError, match="same length"):
        acc.micro_batches(x, y[:4], 2)
    with pytest.raises(ValueError, match="BatchNorm"):
        acc.batchnorm_effect(model, x, y, 4)
    with pytest.raises(ValueError, match="mistake"):
        acc.accumulate_wrong(model, CE, x, y, 4, "typo")
    with pytest.raises(ValueError, match="warmup_updates"):
        acc.batchnorm_effect(models.cnn(width=4), torch.randn(8, 1, 8, 8), y, 4, warmup_updates=0)
    with pytest.raises(ValueError, match="momentum"):
        cnn = models.cnn(width=4)
        for m in cnn.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = None
        acc.batchnorm_effect(cnn, torch.randn(8, 1, 8, 8), y, 4)
    with pytest.raises(ValueError, match="micro_batch_size"):
        acc.peak_memory_sweep(model, x, y, [0])
    with pytest.raises(ValueError, match="max_norm"):
        acc.clip_order_effect(model, x, y, 4, max_norm=-1.0)
    with pytest.raises(ValueError, match="init_scale"):
        acc.clip_order_effect(model, x, y, 4, max_norm=1.0, init_scale=0.0)
    with pytest.raises(ValueError, match="steps"):
        acc.train_accumulated(model, x, y, steps=-1, lr=0.1)


def test_more_bad_input_names_the_parameter() -> None:
    """Issue 18: empty lists, mismatched shapes, bools and absurd counts, non-models."""
    model, (x, y) = mlp(), data(8)
    g = acc.big_batch_gradients(model, CE, x, y)
    with pytest.raises(ValueError, match="a and b must be non-empty lists"):
        acc.max_abs_diff([], [])
    with pytest.raises(ValueError, match=r"a\[0\], b\[0\]"):
        acc.max_abs_diff([torch.zeros(3)], [torch.zeros(1)])  # would broadcast silently
    with pytest.raises(ValueError, match="differ in length"):
        acc.allclose(g, g[:-1])
    with pytest.raises(ValueError, match="micro_batch_size"):
        acc.micro_batches(x, y, True)
    with pytest.raises(ValueError, match="x is empty"):
        acc.micro_batches(x[:0], y[:0], 2)
    with pytest.raises(ValueError, match="model"):
        acc.big_batch_gradients("model.safetensors", CE, x, y)
    with pytest.raises(ValueError, match="loss_fn"):
        acc.accumulate_gradients(model, "cross_entropy", x, y, 4)
    with pytest.raises(ValueError, match="steps"):
        acc.train_accumulated(model, x, y, steps=10**9, lr=0.1)
    cnn_x = torch.randn(8, 1, 8, 8)
    with pytest.raises(ValueError, match="warmup_updates"):
        acc.batchnorm_effect(models.cnn(width=4), cnn_x, y, 4, warmup_updates=10**9)
    with pytest.raises(ValueError, match="model"):
        acc.dropout_effect("mlp", x, y, 4)


def test_ddp_and_memory_bad_input_names_the_parameter() -> None:
    model, (x, y) = mlp(), data(8)
    with pytest.raises(ValueError, match="chunks is empty"):
        acc.count_allreduces(model, [], use_no_sync=True)
    with pytest.raises(ValueError, match="model"):
        acc.count_allreduces("mlp", acc.micro_batches(x, y, 4), use_no_sync=True)
    with pytest.raises(ValueError, match="model"):
        acc.saved_activation_bytes(model.state_dict(), x, y)
    with pytest.raises(ValueError, match="micro_batch_sizes is empty"):
        acc.peak_memory_sweep(model, x, y, [])
