"""labkit.prune against torch.nn.utils.prune, torch's sparse formats and the dense model."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.utils.prune as tprune
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from labkit import models, prune
from labkit.core.errors import MissingDependency


def _random_cnn(width: int = 8, seed: int = 0) -> nn.Sequential:
    """A labkit cnn with random (not default) BN statistics, so BN slicing matters."""
    torch.manual_seed(seed)
    model = models.cnn(width)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    return model.eval()


# ----------------------------------------------------------------------------- unstructured
@pytest.mark.parametrize("shape", [(10,), (7, 9), (16, 8, 3, 3)])
@pytest.mark.parametrize("s", [0.0, 0.3, 0.5, 0.8, 0.95])
def test_mask_equals_torch_l1_unstructured(shape: tuple[int, ...], s: float) -> None:
    torch.manual_seed(1)
    lin = nn.Linear(2, 2)
    lin.weight = nn.Parameter(torch.randn(shape))
    tprune.l1_unstructured(lin, "weight", amount=s)
    ours = prune.magnitude_mask(lin.weight_orig, s)
    assert ours.dtype == torch.bool
    assert torch.equal(ours, lin.weight_mask.bool())
    assert torch.equal(lin.weight_orig * ours, lin.weight)  # same kept weights


@pytest.mark.parametrize("s", [0.2, 0.6, 0.9])
def test_global_masks_equal_torch_global_unstructured(s: float) -> None:
    model = _random_cnn(8)
    reference = copy.deepcopy(model)
    convs = [(m, "weight") for m in reference.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    tprune.global_unstructured(convs, pruning_method=tprune.L1Unstructured, amount=s)
    ours = prune.global_masks(prune.prunable_weights(model), s)
    theirs = [m.weight_mask.bool() for m, _ in convs]
    assert len(ours) == len(theirs)
    for mine, ref in zip(ours.values(), theirs, strict=True):
        assert torch.equal(mine, ref)
    prune.prune_model(model, s, "global")
    for (m, _), w in zip(convs, prune.prunable_weights(model).values(), strict=True):
        assert torch.equal(m.weight, w)


def test_layer_scope_prunes_each_layer_equally_and_global_does_not() -> None:
    model = _random_cnn(8)
    prune.prune_model(model, 0.5, "layer")
    per_layer = prune.layer_sparsity(model)
    for name, w in prune.prunable_weights(model).items():
        assert per_layer[name] == pytest.approx(round(0.5 * w.numel()) / w.numel())
    model = _random_cnn(8)
    with torch.no_grad():  # make the first conv's weights large: global pruning must spare them
        model[0].weight.mul_(100)
    prune.prune_model(model, 0.5, "global")
    assert prune.layer_sparsity(model)["0.weight"] == 0.0
    assert prune.sparsity(model) == pytest.approx(0.5, abs=1e-4)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    s=st.floats(0, 0.999, allow_nan=False),
    seed=st.integers(0, 10_000),
)
def test_mask_properties(n: int, s: float, seed: int) -> None:
    w = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    mask = prune.magnitude_mask(w, s)
    k = round(s * n)
    assert int((~mask).sum()) == k  # exactly round(s*n) pruned
    if 0 < k < n:  # every kept |w| >= every pruned |w|
        assert w[mask].abs().min() >= w[~mask].abs().max()
    higher = prune.magnitude_mask(w, min(0.999, s + 0.2))
    assert not (higher & ~mask).any()  # more sparsity only removes more (nested masks)
    assert prune.sparsity(w * mask) >= k / n - 1e-9


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "0.5", True])
def test_bad_sparsity_is_a_clear_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="sparsity must be in"):
        prune.magnitude_mask(torch.randn(10), bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sparsity must be in"):
        prune.prune_model(_random_cnn(4), bad)  # type: ignore[arg-type]


def test_other_bad_inputs_are_clear() -> None:
    with pytest.raises(ValueError, match="torch.Tensor"):
        prune.magnitude_mask([1.0, 2.0], 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scope"):
        prune.prune_model(_random_cnn(4), 0.5, scope="row")
    with pytest.raises(ValueError, match="ratio must be in"):
        prune.prune_channels(_random_cnn(4), 1.0)
    with pytest.raises(ValueError, match="nn.Sequential"):
        prune.prune_channels(nn.ModuleList([nn.Conv2d(1, 2, 3)]), 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divisible"):
        prune.nm_mask(torch.randn(4, 6), 2, 4)


def test_nm_mask_keeps_two_largest_of_every_four() -> None:
    w = torch.randn(8, 16, 3, 3, generator=torch.Generator().manual_seed(0))
    mask = prune.nm_mask(w, 2, 4)
    groups, gm = w.reshape(-1, 4).abs(), mask.reshape(-1, 4)
    assert torch.equal(gm.sum(1), torch.full((groups.shape[0],), 2))
    kept_min = torch.where(gm, groups, torch.inf).min(1).values
    dropped_max = torch.where(gm, -torch.inf, groups).max(1).values
    assert (kept_min >= dropped_max).all()


def test_finetune_keeps_pruned_weights_at_zero() -> None:
    model = _random_cnn(4)
    masks = prune.prune_model(model, 0.7)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    before = {k: v.detach().clone() for k, v in prune.prunable_weights(model).items()}
    prune.finetune(model, DataLoader(TensorDataset(x, y), batch_size=16), masks, epochs=1, lr=1e-2)
    for name, w in prune.prunable_weights(model).items():
        assert torch.all(w[~masks[name]] == 0)
        assert not torch.equal(w[masks[name]], before[name][masks[name]])  # the rest trained


def test_recalibrate_bn_gives_the_data_statistics() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3))
    x = torch.randn(64, 1, 8, 8) * 2 + 1
    loader = DataLoader(TensorDataset(x, torch.zeros(64)), batch_size=16)  # equal batches
    prune.recalibrate_bn(model, loader)
    with torch.no_grad():
        out = model[0](x)
    assert torch.allclose(model[1].running_mean, out.mean(dim=(0, 2, 3)), atol=1e-5)
    assert model[1].momentum == 0.1 and not model.training


def test_sparsity_schedule_is_cubic_and_ends_at_target() -> None:
    sched = prune.sparsity_schedule(0.9, 4)
    assert sched[-1] == pytest.approx(0.9)
    assert sched == pytest.approx([0.9 * (1 - (1 - i / 4) ** 3) for i in range(1, 5)])
    steps = [b - a for a, b in zip([0.0] + sched, sched, strict=False)]
    assert steps == sorted(steps, reverse=True)  # prunes fast first, slowly at the end


def test_l1_penalty_and_loss() -> None:
    model = _random_cnn(4)
    expected = sum(m.weight.abs().sum() for m in model if isinstance(m, nn.Conv2d | nn.Linear))
    assert torch.allclose(prune.l1_penalty(model), expected)
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    ce = nn.functional.cross_entropy(model(x), y)
    assert torch.allclose(prune.l1_loss_fn(1e-3)(model, x, y), ce + 1e-3 * expected)


def test_l1_proximal_step_is_the_soft_threshold() -> None:
    model = _random_cnn(4)
    before = {k: w.detach().clone() for k, w in prune.prunable_weights(model).items()}
    bn_before = model[1].weight.detach().clone()
    lam, lr = 0.5, 0.1  # threshold 0.05
    zeros = prune.l1_proximal_step(model, lam, lr)
    for name, w in prune.prunable_weights(model).items():
        w0 = before[name]
        expected = torch.where(w0.abs() <= 0.05, torch.zeros_like(w0), w0 - 0.05 * w0.sign())
        assert torch.allclose(w, expected, atol=1e-7)
    assert zeros == sum(int((w0.abs() <= 0.05).sum()) for w0 in before.values()) > 0
    assert torch.equal(model[1].weight, bn_before)  # on="weights" leaves BN alone


def test_l1_proximal_step_on_bn_gamma_only() -> None:
    model = _random_cnn(4)
    weights = {k: w.detach().clone() for k, w in prune.prunable_weights(model).items()}
    gammas = [m.weight.detach().clone() for m in model if isinstance(m, nn.BatchNorm2d)]
    zeros = prune.l1_proximal_step(model, 1.0, 0.5, on="bn")  # threshold 0.5
    after = [m.weight for m in model if isinstance(m, nn.BatchNorm2d)]
    for g0, g in zip(gammas, after, strict=True):
        assert torch.allclose(g, g0.sign() * (g0.abs() - 0.5).clamp_min(0))
    assert zeros == sum(int((g0.abs() <= 0.5).sum()) for g0 in gammas)
    for k, w in prune.prunable_weights(model).items():
        assert torch.equal(w, weights[k])


def test_zero_lambda_changes_nothing_and_a_zero_stays_zero() -> None:
    model = _random_cnn(4)
    before = copy.deepcopy(model.state_dict())
    prune.l1_proximal_step(model, 0.0, 0.1)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    prune.l1_proximal_step(model, 1.0, 10.0)  # a huge threshold: every weight 0
    assert prune.sparsity(model) == 1.0
    prune.l1_proximal_step(model, 1.0, 10.0)
    assert prune.sparsity(model) == 1.0  # and no -0.0 / NaN trouble: still exactly zero


def _digits_like(n: int = 64, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > 0).long()  # a learnable two-class rule
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=g)


def test_fit_l1_proximal_makes_exact_zeros_the_penalty_does_not() -> None:
    torch.manual_seed(0)
    a, b = models.cnn(4), models.cnn(4)
    b.load_state_dict(a.state_dict())
    prune.fit_l1(a, _digits_like(), 0.3, epochs=3, lr=1e-2)  # proximal
    prune.fit_l1(b, _digits_like(), 1e-3, proximal=False, epochs=3, lr=1e-2)  # in the loss
    assert prune.sparsity(a) > 0.01  # seen 0.04: real zeros
    assert prune.sparsity(b) == 0.0  # a gradient step does not land on exactly 0.0
    assert not a.training


def test_fit_l1_decays_the_learning_rate_to_zero() -> None:
    torch.manual_seed(0)
    model = models.cnn(4)
    seen = []
    real = prune.l1_proximal_step

    def spy(m, lam, lr, on="weights"):
        seen.append(lr)
        return real(m, lam, lr, on)

    prune.unstructured.l1_proximal_step, saved = spy, prune.unstructured.l1_proximal_step
    try:
        prune.fit_l1(model, _digits_like(), 0.1, epochs=2, lr=1e-2)
    finally:
        prune.unstructured.l1_proximal_step = saved
    steps = 2 * len(_digits_like())
    assert seen[0] == pytest.approx(1e-2) and len(seen) == steps
    assert seen == sorted(seen, reverse=True) and seen[-1] == pytest.approx(1e-2 / steps)


def test_fit_l1_on_bn_with_a_larger_gamma_lr_zeroes_gammas_only() -> None:
    torch.manual_seed(0)
    model = models.cnn(4)
    prune.fit_l1(model, _digits_like(), 0.5, on="bn", epochs=3, lr=1e-2, lr_bn=0.2)
    gammas = torch.cat([m.weight for m in model if isinstance(m, nn.BatchNorm2d)])
    assert int((gammas == 0).sum()) > 0  # slimming: channels switched off exactly
    assert prune.sparsity(model) == 0.0  # the conv/linear weights are not thresholded


# ----------------------------------------------------------------------------- channel scores
def test_channel_scores_l1_bn_random() -> None:
    model = _random_cnn(8)
    l1 = prune.channel_scores(model, "l1")
    assert sorted(l1) == [0, 3, 7]
    assert torch.allclose(l1[3], model[3].weight.abs().sum((1, 2, 3)))
    assert torch.equal(prune.channel_scores(model, "bn")[7], model[8].weight.abs())
    r0, r0b, r1 = (prune.channel_scores(model, "random", seed=s) for s in (0, 0, 1))
    assert all(torch.equal(r0[i], r0b[i]) for i in r0)  # seeded
    assert not torch.equal(r0[0], r1[0])


def test_bn_scale_divides_out_so_filter_norm_misleads() -> None:
    """BN(s * conv(x)) = BN(conv(x)) in train mode: scaling a filter changes its L1 score only."""
    model = _random_cnn(4).train()
    x = torch.randn(16, 1, 8, 8)
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        scaled[0].weight[0] *= 0.2
        out, out_scaled = model[:2](x), scaled[:2](x)
    l1, l1_scaled = prune.channel_scores(model, "l1")[0], prune.channel_scores(scaled, "l1")[0]
    assert float(l1_scaled[0]) == pytest.approx(0.2 * float(l1[0]))
    assert torch.allclose(out[:, 0], out_scaled[:, 0], atol=1e-3)  # the same BN output


def test_taylor_score_is_the_first_order_loss_change() -> None:
    """|sum a * dL/da| for a channel = the loss change, to first order, when it is zeroed."""
    model = _random_cnn(4).double()
    x, y = torch.randn(1, 1, 8, 8, dtype=torch.float64), torch.tensor([3])
    loader = [(x, y)]
    scores = prune.channel_scores(model, "taylor", loader)
    assert sorted(scores) == [0, 3, 7] and all(
        s.shape == (m,) for s, m in zip(scores.values(), (4, 8, 8), strict=True)
    )
    # zero channel c of the first block's output with a tiny factor: the loss change is linear
    for c in range(4):
        eps = 1e-6
        keep = torch.ones(4, dtype=torch.float64)
        keep[c] = 1 - eps
        with torch.no_grad():
            h = model[:3](x) * keep[None, :, None, None]
            loss = nn.functional.cross_entropy(model[3:](h), y, reduction="sum")
            base = nn.functional.cross_entropy(model(x), y, reduction="sum")
        change = abs(float(base - loss)) / eps
        assert float(scores[0][c]) == pytest.approx(change, rel=1e-3, abs=1e-9)
    assert all(p.grad is None for p in model.parameters())  # no .grad left behind


def test_entropy_score_is_zero_for_a_dead_channel_and_positive_otherwise() -> None:
    torch.manual_seed(0)
    model = models.cnn(4).eval()  # BN at its defaults: the block's output is ReLU(conv)
    with torch.no_grad():
        model[1].bias[2] = -100.0  # channel 2 of the first block: ReLU always 0
    loader = [(torch.randn(32, 1, 8, 8), torch.zeros(32, dtype=torch.long)) for _ in range(2)]
    ent = prune.channel_scores(model, "entropy", loader)[0]
    assert float(ent[2]) == 0.0 and bool((ent[[0, 1, 3]] > 0).all())
    assert bool((ent <= 5.0 + 1e-6).all())  # at most log2(32 bins) bits
    assert int(prune.channel_plan(model, 0.25, "entropy", loader)[0].numel()) == 3
    assert 2 not in prune.channel_plan(model, 0.25, "entropy", loader)[0].tolist()


def test_prune_channels_with_a_data_criterion() -> None:
    model = _random_cnn(8)
    loader = [(torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,)))]
    plan = prune.channel_plan(model, 0.5, "taylor", loader)
    small = prune.prune_channels(model, 0.5, criterion="taylor", loader=loader)
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(small(x), prune.masked_forward_equivalent(model, plan)(x), atol=1e-5)


# ----------------------------------------------------------------------------- storage
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("s", [0.0, 0.5, 0.9])
def test_csr_bytes_match_torch_sparse_csr(s: float) -> None:
    w = torch.randn(12, 4, 3, 3)
    w = w * prune.magnitude_mask(w, s)
    csr = w.reshape(12, -1).to_sparse_csr()
    ib = csr.col_indices().element_size()
    torch_bytes = sum(
        t.numel() * t.element_size() for t in (csr.values(), csr.col_indices(), csr.crow_indices())
    )
    assert prune.storage_bytes(w, value_bytes=4, index_bytes=ib)["csr"] == torch_bytes
    sizes = prune.storage_bytes(w)
    assert sizes["dense"] == w.numel() * 4
    nnz = int((w != 0).sum())
    assert sizes["bitmask"] == nnz * 4 + -(-w.numel() // 8)


# ----------------------------------------------------------------------------- structured
def test_prune_channels_is_physically_smaller_with_expected_shapes() -> None:
    model = _random_cnn(8)  # convs 1->8->16->16, Linear 256->10
    small = prune.prune_channels(model, 0.5)
    convs = [m for m in small if isinstance(m, nn.Conv2d)]
    bns = [m for m in small if isinstance(m, nn.BatchNorm2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 4), (4, 8), (8, 8)]
    assert [tuple(c.weight.shape) for c in convs] == [(4, 1, 3, 3), (8, 4, 3, 3), (8, 8, 3, 3)]
    assert [b.num_features for b in bns] == [4, 8, 8] and bns[0].running_mean.shape == (4,)
    assert small[-1].in_features == 8 * 16 and small[-1].weight.shape == (10, 128)
    n_params = sum(p.numel() for p in small.parameters())
    assert n_params == 4 * 9 + 8 + 8 * 4 * 9 + 16 + 8 * 8 * 9 + 16 + 128 * 10 + 10
    assert sum(p.numel() for p in model.parameters()) > 2.5 * n_params
    assert model[0].out_channels == 8  # the original is untouched
    assert small(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_prune_channels_equals_original_restricted_to_kept_channels() -> None:
    model = _random_cnn(8)
    plan = prune.channel_plan(model, 0.5)
    small = prune.prune_channels(model, 0.5, keep=plan)
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        # first block: the small model's activations are the original's at the kept channels
        assert torch.allclose(small[:3](x), model[:3](x)[:, plan[0]], atol=1e-6)
        # whole model: equal to the dense model with the removed channels cut off downstream
        reference = prune.masked_forward_equivalent(model, plan)
        assert torch.allclose(small(x), reference(x), atol=1e-5)
        # and different from the unpruned model (pruning did something)
        assert not torch.allclose(small(x), model(x), atol=1e-3)


def test_masked_reference_is_independent_of_slicing() -> None:
    """Check the reference itself by hand: zeroing the removed channels' activations."""
    model = _random_cnn(4)
    plan = prune.channel_plan(model, 0.5)
    x = torch.randn(3, 1, 8, 8)
    conv_ids = [i for i, m in enumerate(model) if isinstance(m, nn.Conv2d)]
    # hook that zeroes the dropped channels right after each conv's block (after ReLU)
    handles = []
    for i in conv_ids:
        relu = model[i + 2]
        drop = torch.ones(model[i].out_channels, dtype=torch.bool)
        drop[plan[i]] = False

        def hook(_m, _inp, out, drop=drop):
            out = out.clone()
            out[:, drop] = 0
            return out

        handles.append(relu.register_forward_hook(hook))
    with torch.no_grad():
        expected = model(x)
    for h in handles:
        h.remove()
    with torch.no_grad():
        got = prune.prune_channels(model, 0.5, keep=plan)(x)
    assert torch.allclose(got, expected, atol=1e-5)


def test_channel_plan_keeps_highest_l1_filters() -> None:
    model = _random_cnn(8)
    plan = prune.channel_plan(model, 0.25)
    scores = model[0].weight.abs().sum(dim=(1, 2, 3))
    assert plan[0].tolist() == sorted(torch.topk(scores, 6).indices.tolist())
    bn_plan = prune.channel_plan(model, 0.25, criterion="bn")
    assert bn_plan[0].tolist() == sorted(torch.topk(model[1].weight.abs(), 6).indices.tolist())
    assert prune.channel_plan(model, 0.0)[0].tolist() == list(range(8))


def test_prune_conv_pair_with_bias_and_no_bn() -> None:
    torch.manual_seed(0)
    a, b = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 5, 3, padding=1)
    keep = torch.tensor([0, 2, 5])
    a2, bn2, b2 = prune.prune_conv_pair(a, None, b, keep)
    assert bn2 is None and a2.out_channels == 3 and b2.in_channels == 3
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(a2(x), a(x)[:, keep], atol=1e-6)
        h = torch.zeros_like(a(x))
        h[:, keep] = a(x)[:, keep]
        assert torch.allclose(b2(a2(x)), b(h), atol=1e-5)
    with pytest.raises(ValueError, match="channel indices"):
        prune.prune_conv_pair(a, None, b, torch.tensor([6]))


# ----------------------------------------------------------------------------- guards
@pytest.mark.parametrize("bad", [-0.5, 1.0, 2, float("nan")])
def test_bad_sparsity_names_the_parameter_everywhere(bad: float) -> None:
    model = _random_cnn(4)
    for call in (
        lambda: prune.global_masks(prune.prunable_weights(model), bad),
        lambda: prune.sensitivity_scan(model, [], [0.5, bad]),
        lambda: prune.sparsity_schedule(bad, 3),
        lambda: prune.sparse_matmul_latency(8, 8, 2, [bad]),
    ):
        with pytest.raises(ValueError, match="sparsity must be in"):
            call()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1e-3}, "lr"),
    ],
)
def test_finetune_bad_arguments(kwargs: dict, match: str) -> None:
    loader = DataLoader(TensorDataset(torch.randn(4, 1, 8, 8), torch.zeros(4).long()), batch_size=2)
    with pytest.raises(ValueError, match=match):
        prune.finetune(_random_cnn(4), loader, **kwargs)


def test_other_guards() -> None:
    loader = DataLoader(TensorDataset(torch.randn(4, 1, 8, 8), torch.zeros(4).long()), batch_size=2)
    with pytest.raises(ValueError, match="batches"):
        prune.recalibrate_bn(_random_cnn(4), loader, batches=0)
    with pytest.raises(ValueError, match="sparsities"):
        prune.sensitivity_scan(_random_cnn(4), loader, [])
    with pytest.raises(ValueError, match="lam"):
        prune.l1_loss_fn(float("nan"))
    with pytest.raises(ValueError, match="value_bytes"):
        prune.storage_bytes(torch.randn(4, 4), value_bytes=0)
    with pytest.raises(ValueError, match="steps"):
        prune.sparsity_schedule(0.5, 0)
    with pytest.raises(ValueError, match="n < m"):
        prune.nm_mask(torch.randn(4, 8), 4, 4)


def test_sparse_matmul_refuses_huge_sizes_before_allocating() -> None:
    with pytest.raises(ValueError, match="GiB"):
        prune.sparse_matmul_latency(1_000_000, 1_000_000, 32, [0.9])
    with pytest.raises(ValueError, match="rows must be an integer"):
        prune.sparse_matmul_latency(0, 8, 2, [0.5])


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_sparse_matmul_times_one_dense_baseline() -> None:
    rows, cmp = prune.sparse_matmul_latency(64, 64, 4, [0.5, 0.9], rounds=3, repeats=1)
    assert cmp.baseline == "dense"
    assert list(cmp.median_ms) == ["dense", "csr 0.5", "csr 0.9"]  # dense timed once
    assert [r["sparsity"] for r in rows] == [0.5, 0.9]
    for r in rows:
        assert r["iqr_low"] <= r["speedup"] <= r["iqr_high"] or r["iqr_low"] <= r["iqr_high"]
        assert r["verdict"] in {"CSR faster", "dense faster", "no clear difference"}


def test_semi_structured_latency_takes_what_gpu_check_passes() -> None:
    """labkit.course.gpu_check calls it with rounds/repeats keywords; a CPU run checks the names."""
    import inspect

    sig = inspect.signature(prune.semi_structured_latency)
    sig.bind(rows=2048, cols=2048, batch=2048, rounds=10, repeats=20)
    if not torch.cuda.is_available():
        with pytest.raises(MissingDependency):
            prune.semi_structured_latency(rows=8, cols=8, batch=8, repeats=1)
