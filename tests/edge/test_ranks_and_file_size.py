"""labkit.edge: per-layer ranks under a weight budget, and where an ONNX file's bytes go."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import labkit
from labkit import bench, data, edge, models


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return models.cnn(width=8, depth=3)


def test_uniform_ranks_are_what_factorize_model_uses() -> None:
    model = _model()
    ranks = edge.uniform_ranks(model, 0.25)
    # conv1 (8 x 9) -> 2, conv2 (16 x 72) -> 4, conv3 (16 x 144) -> 4, linear (10 x 256) -> 2
    assert ranks == {"0": 2, "3": 4, "7": 4, "11": 2}
    a = edge.factorize_model(model, 0.25)
    b = edge.factorize_model(model, ranks=ranks)
    assert bench.count_parameters(a) == bench.count_parameters(b)
    x = torch.randn(3, 1, 8, 8)
    a.eval(), b.eval()
    torch.testing.assert_close(a(x), b(x))


def test_factor_weights_counts_whole_layers_at_full_rank() -> None:
    shapes = {"a": (8, 9), "b": (10, 256)}
    assert edge.factor_weights(shapes, {"a": 2, "b": 2}) == 2 * 17 + 2 * 266
    # rank 5 of an 8 x 9 matrix would need 85 > 72 weights: the layer stays whole
    assert edge.factor_weights(shapes, {"a": 5, "b": 10}) == 72 + 2560


def test_ranks_dict_leaves_unnamed_layers_whole() -> None:
    model = _model()
    small = edge.factorize_model(model, ranks={"7": 2})
    assert isinstance(small[7], nn.Sequential) and small[7][0].out_channels == 2
    assert isinstance(small[0], nn.Conv2d) and isinstance(small[11], nn.Linear)


def test_energy_ranks_respect_the_budget_and_maximise_energy_per_weight() -> None:
    model = _model()
    shapes = edge.factorizable_layers(model)
    budget = edge.factor_weights(shapes, edge.uniform_ranks(model, 0.25))
    ranks = edge.energy_ranks(model, budget)
    assert edge.factor_weights(shapes, ranks) <= budget
    # nothing more fits: one more rank anywhere (or making a layer whole) breaks the budget
    for name, (o, i) in shapes.items():
        if ranks[name] < min(o, i) and ranks[name] * (o + i) < o * i:
            assert edge.factor_weights(shapes, {**ranks, name: ranks[name] + 1}) > budget
    # a huge budget gives every layer its full rank (no factorisation at all)
    full = edge.energy_ranks(model, 10**9)
    assert all(full[n] == min(s) or full[n] * sum(s) >= s[0] * s[1] for n, s in shapes.items())
    # the smallest possible budget: rank 1 everywhere
    least = edge.factor_weights(shapes, dict.fromkeys(shapes, 1))
    assert edge.energy_ranks(model, least) == dict.fromkeys(shapes, 1)


def test_energy_ranks_prefer_the_layer_with_a_decaying_spectrum() -> None:
    """Two equal layers, one nearly rank 2, one a flat random matrix: ranks go to the flat
    one only after the low-rank one has its energy."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 32), nn.Linear(32, 32))
    with torch.no_grad():
        u, v = torch.randn(32, 2), torch.randn(2, 32)
        model[0].weight.copy_(u @ v + 1e-4 * torch.randn(32, 32))
    ranks = edge.energy_ranks(model, max_weights=10 * 64)
    assert ranks["0"] == 2 and ranks["1"] == 8


def test_energy_ranks_beat_one_fraction_on_reconstruction_energy() -> None:
    model = _model(1)
    shapes = edge.factorizable_layers(model)
    uniform = edge.uniform_ranks(model, 0.25)
    chosen = edge.energy_ranks(model, edge.factor_weights(shapes, uniform))
    layers = dict(model.named_modules())

    def kept(ranks):
        total = 0.0
        for n in shapes:
            s2 = torch.linalg.svdvals(edge.matrix_of(layers[n]).double()) ** 2
            total += float(s2[: ranks[n]].sum() / s2.sum())
        return total

    assert kept(chosen) > kept(uniform)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: edge.energy_ranks(_model(), 10), "rank 1"),
        (lambda: edge.energy_ranks("model.pt", 1000), "model"),
        (lambda: edge.energy_ranks(_model(), float("nan")), "max_weights"),
        (lambda: edge.factorize_model(_model(), ranks={"99": 2}), "ranks"),
        (lambda: edge.factorize_model(_model(), ranks={"0": 0}), "ranks\\['0'\\]"),
        (lambda: edge.factorize_model(_model(), ranks={"0": 10}), "ranks\\['0'\\]"),
        (lambda: edge.factorize_model(_model(), ranks=[2, 4]), "ranks"),
        (lambda: edge.uniform_ranks(_model(), 0), "rank_fraction"),
        (lambda: edge.onnx_size_breakdown("missing.onnx"), "missing.onnx"),
    ],
)
def test_bad_input_gets_a_clear_error(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_onnx_size_breakdown_adds_up_and_int8_weights_are_a_quarter(tmp_path) -> None:
    torch.manual_seed(0)
    model = models.cnn(width=8, depth=3).eval()
    digits = data.digits()
    fp32 = labkit.onnx.export_onnx(model, digits["test"].x[:2], tmp_path / "m.onnx")
    int8 = labkit.onnx.quantize_static_int8(fp32, tmp_path / "m_int8.onnx", digits["train"].x[:64])
    a, b = edge.onnx_size_breakdown(fp32), edge.onnx_size_breakdown(int8)
    assert sum(a.values()) == labkit.onnx.file_size(fp32)
    assert sum(b.values()) == labkit.onnx.file_size(int8)
    assert 4 * b["weights"] == a["weights"]  # every weight tensor: 4 bytes -> 1 byte
    assert a["scales and zero points"] == 0 < b["scales and zero points"]
    assert b["graph and names"] > a["graph and names"] > 0  # the QDQ nodes and their names
    # so the file shrinks less than 4x
    assert labkit.onnx.file_size(fp32) / labkit.onnx.file_size(int8) < 4
