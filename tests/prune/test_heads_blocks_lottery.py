"""Head gates, block dropping and the lottery ticket (labkit/prune/heads.py, blocks.py,
lottery.py, transformer.py) against direct computations on the digit transformer."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from labkit import data, models, prune, train
from labkit.deploy.transformer import load_transformer


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return prune.load_digit_transformer()[0]


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = next(iter(data.digits_loaders(batch_size=48).val))
    return x, y


def _loader(x: torch.Tensor, y: torch.Tensor, bs: int) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=bs)


# ----------------------------------------------------------------------------- the model
def test_prune_loads_the_digit_transformer_that_notebook_09_deploys(model, batch) -> None:
    theirs, _ = load_transformer()
    assert model.state_dict().keys() == theirs.state_dict().keys()
    with torch.no_grad():
        assert torch.equal(model(batch[0]), theirs(batch[0]))


def test_hooks_work_on_notebook_09s_model_too(batch) -> None:
    theirs, _ = load_transformer()
    gates = torch.ones(2, 4)
    gates[1, 3] = 0
    with torch.no_grad(), prune.head_gates(theirs, gates):
        gated = theirs(batch[0])
    with torch.no_grad():
        assert torch.allclose(gated, prune.mask_heads(theirs, [(1, 3)])(batch[0]), atol=1e-5)


# ----------------------------------------------------------------------------- head gates
def test_gates_of_one_leave_the_output_unchanged(model, batch) -> None:
    x = batch[0]
    with torch.no_grad():
        plain = model(x)
        with prune.head_gates(model, torch.ones(2, 4)):
            gated = model(x)
        with prune.head_gates(model, torch.ones(len(x), 2, 4)):  # per-example gates
            per_example = model(x)
        after = model(x)
    assert torch.equal(plain, gated) and torch.equal(plain, per_example)
    assert torch.equal(plain, after), "the hooks must be removed after the with block"


@pytest.mark.parametrize("layer,head", [(0, 0), (0, 3), (1, 2)])
def test_a_masked_head_contributes_nothing(model, batch, layer, head) -> None:
    """Gate 0 on head h == the model with columns h*hs..(h+1)*hs-1 of proj zeroed."""
    x = batch[0]
    manual = copy.deepcopy(model)
    hs = 64 // 4
    with torch.no_grad():
        manual.blocks[layer].proj.weight[:, head * hs : (head + 1) * hs] = 0
        gates = torch.ones(2, 4)
        gates[layer, head] = 0
        with prune.head_gates(model, gates):
            gated = model(x)
        masked = prune.mask_heads(model, [(layer, head)])(x)
        full, want = model(x), manual(x)
    assert torch.allclose(gated, want, atol=1e-5) and torch.allclose(masked, want, atol=1e-5)
    assert (full - want).abs().max() > 1e-3, "switching a head off must change the logits"
    assert torch.count_nonzero(model.blocks[layer].proj.weight) == 64 * 64, "original modified"


def test_head_importance_is_the_mean_per_example_absolute_gradient(model, batch) -> None:
    x, y = batch[0][:6], batch[1][:6]
    want = torch.zeros(2, 4)
    for i in range(len(x)):  # one example at a time: |dL_i / dg|
        g = torch.ones(2, 4, requires_grad=True)
        with prune.head_gates(model, g):
            loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        want += torch.autograd.grad(loss, g)[0].abs()
    got = prune.head_importance(model, _loader(x, y, 4))  # batches of 4 and 2
    assert got.shape == (2, 4)
    assert torch.allclose(got, want / len(x), rtol=1e-4, atol=1e-6)
    # the abs of the batch's summed gradient is a different (smaller) number: not this
    g = torch.ones(2, 4, requires_grad=True)
    with prune.head_gates(model, g):
        summed = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), g)[0]
    assert not torch.allclose(got, summed.abs() / len(x), rtol=1e-3)


def test_removal_curve_and_ablation_agree_with_evaluate(model, batch) -> None:
    loader = _loader(*batch, 48)
    order = [(1, 2), (0, 1), (1, 0)]
    curve = prune.accuracy_removing_heads(model, loader, order)
    assert len(curve) == 4 and curve[0] == train.evaluate(model, loader)["accuracy"]
    two_off = prune.mask_heads(model, order[:2])
    assert curve[2] == pytest.approx(train.evaluate(two_off, loader)["accuracy"])
    drop = prune.head_ablation(model, loader)
    one = prune.accuracy_removing_heads(model, loader, [(0, 1)])
    assert drop[0, 1].item() == pytest.approx(one[0] - one[1])
    all_off = prune.accuracy_removing_heads(
        model, loader, [(i, j) for i in range(2) for j in range(4)]
    )
    assert all_off[-1] < all_off[0] - 0.2, "every head off must cost accuracy"


# ----------------------------------------------------------------------------- blocks
def test_block_influence_formula() -> None:
    torch.manual_seed(0)
    h = torch.randn(3, 5, 8)
    assert prune.block_influence(h, h).item() == pytest.approx(0.0, abs=1e-6)
    assert prune.block_influence(h, -h).item() == pytest.approx(2.0, abs=1e-6)
    assert prune.block_influence(h, 7.0 * h).item() == pytest.approx(0.0, abs=1e-6)
    out = torch.randn(3, 5, 8)
    cos = (h * out).sum(-1) / (h.norm(dim=-1) * out.norm(dim=-1))
    assert prune.block_influence(h, out).item() == pytest.approx(1 - cos.mean().item(), abs=1e-6)


def test_block_influences_use_each_blocks_own_input_and_output(model, batch) -> None:
    x = batch[0]
    with torch.no_grad():
        h0 = model.embed(x.reshape(len(x), 8, 8)) + model.pos
        h1, _ = model.blocks[0](h0)
        h2, _ = model.blocks[1](h1)
    want = torch.stack([prune.block_influence(h0, h1), prune.block_influence(h1, h2)])
    got = prune.block_influences(model, _loader(*batch, 16))
    assert torch.allclose(got, want, atol=1e-5)


def test_drop_blocks_skips_the_block_and_keeps_the_original(model, batch) -> None:
    x = batch[0]
    small = prune.drop_blocks(model, [0])
    with torch.no_grad():
        h = model.embed(x.reshape(len(x), 8, 8)) + model.pos
        h, _ = model.blocks[1](h)  # block 0 skipped
        want = model.head(model.norm(h).mean(1))
        assert torch.allclose(small(x), want, atol=1e-6)
    n_block = sum(p.numel() for p in model.blocks[0].parameters())
    assert (
        sum(p.numel() for p in small.parameters())
        == sum(p.numel() for p in model.parameters()) - n_block
    )
    assert len(prune.transformer_blocks(model)) == 2 and len(prune.transformer_blocks(small)) == 1


# ----------------------------------------------------------------------------- lottery
@pytest.fixture(scope="module")
def tiny_loader() -> DataLoader:
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    return DataLoader(TensorDataset(x, y), batch_size=16)


def test_snapshot_at_step_zero_is_the_init_and_at_the_end_is_the_trained_model(
    tiny_loader,
) -> None:
    torch.manual_seed(0)
    m = models.cnn(4)
    init = copy.deepcopy(m.state_dict())
    assert all(
        torch.equal(v, init[k])
        for k, v in prune.train_with_snapshot(
            copy.deepcopy(m), tiny_loader, epochs=1, lr=1e-2, at_step=0
        ).items()
    )
    last = prune.train_with_snapshot(m, tiny_loader, epochs=2, lr=1e-2, at_step=8)  # 2 x 4 steps
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in last.items())
    assert not torch.equal(last["0.weight"], init["0.weight"])
    one = prune.train_with_snapshot(models.cnn(4), tiny_loader, epochs=2, lr=1e-2, at_step=1)
    assert one.keys() == init.keys()


def test_lottery_ticket_runs_every_variant_with_the_mask_held(tiny_loader) -> None:
    tickets = prune.lottery_ticket(
        functools.partial(models.cnn, 4), tiny_loader, [0.8], epochs=1, rewind_step=2
    )
    assert set(tickets) == {
        ("dense", 0.0),
        ("rewind to init", 0.8),
        ("rewind to step 2", 0.8),
        ("random init", 0.8),
    }
    masks = prune.global_masks(prune.prunable_weights(tickets["dense", 0.0]), 0.8)
    for name in ("rewind to init", "rewind to step 2", "random init"):
        w = prune.prunable_weights(tickets[name, 0.8])
        assert all(bool((w[k][~masks[k]] == 0).all()) for k in w), f"{name}: mask not held"
        assert prune.sparsity(tickets[name, 0.8]) >= 0.8
    a, b = tickets["rewind to init", 0.8], tickets["random init", 0.8]
    assert not torch.equal(a[0].weight, b[0].weight), "different starting points"


# ----------------------------------------------------------------------------- bad input
def test_bad_input_gives_a_clear_error(model, tiny_loader) -> None:
    with pytest.raises(ValueError, match="gates must be a tensor of shape"):
        with prune.head_gates(model, torch.ones(4, 2)):
            pass
    with pytest.raises(ValueError, match="head must be an integer from 0 to 3"):
        prune.mask_heads(model, [(0, 4)])
    with pytest.raises(ValueError, match="twice"):
        prune.accuracy_removing_heads(model, tiny_loader, [(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="no labkit.models.TransformerBlock"):
        prune.head_importance(models.cnn(4), tiny_loader)
    with pytest.raises(ValueError, match="h_in, h_out must have the same shape"):
        prune.block_influence(torch.randn(2, 3, 4), torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="h_in must have 3 dimensions"):
        prune.block_influence(torch.randn(3, 4), torch.randn(3, 4))
    with pytest.raises(ValueError, match="drop"):
        prune.drop_blocks(model, [2])
    with pytest.raises(ValueError, match="sparsity must be in"):
        prune.lottery_ticket(functools.partial(models.cnn, 4), tiny_loader, [1.5])
    with pytest.raises(ValueError, match="rewind_step must be an integer from 0 to 4"):
        prune.lottery_ticket(
            functools.partial(models.cnn, 4), tiny_loader, [0.5], epochs=1, rewind_step=5
        )
    with pytest.raises(ValueError, match="make_model must be a function"):
        prune.lottery_ticket(models.cnn(4), tiny_loader, [0.5])
