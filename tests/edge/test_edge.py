"""labkit.edge: SVD factorisation maths, k-means sharing and packed storage, search helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from labkit import bench, data, edge, models


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 10**6), st.data())
def test_low_rank_factors_match_numpy_svd_and_eckart_young(out_f, in_f, seed, draw) -> None:
    rank = draw.draw(st.integers(1, min(out_f, in_f)))
    w = torch.randn(out_f, in_f, generator=torch.Generator().manual_seed(seed))
    left, right = edge.low_rank_factors(w, rank)
    assert left.shape == (out_f, rank) and right.shape == (rank, in_f)
    u, s, vh = np.linalg.svd(w.double().numpy(), full_matrices=False)
    best = (u[:, :rank] * s[:rank]) @ vh[:rank]
    np.testing.assert_allclose((left @ right).double().numpy(), best, atol=1e-4)
    err = np.linalg.norm(w.double().numpy() - best) / np.linalg.norm(w.double().numpy())
    assert edge.rank_error_curve(w)[rank - 1].item() == pytest.approx(err, abs=1e-5)


def test_rank_error_curve_ends_at_zero_and_decreases() -> None:
    w = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    curve = edge.rank_error_curve(w)
    assert curve.shape == (5,) and curve[-1].item() == pytest.approx(0.0, abs=1e-6)
    assert torch.all(curve[1:] <= curve[:-1])


def test_factorized_linear_equals_rank_r_layer_and_full_rank_is_exact() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(12, 7)
    x = torch.randn(5, 12)
    pair = edge.factorize_linear(layer, 3)
    left, right = edge.low_rank_factors(layer.weight, 3)
    torch.testing.assert_close(pair(x), F.linear(x, left @ right, layer.bias), atol=1e-5, rtol=1e-5)
    assert bench.count_parameters(pair) == edge.factorized_params(7, 12, 3) + 7
    torch.testing.assert_close(edge.factorize_linear(layer, 7)(x), layer(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("stride,padding,bias", [(1, 1, False), (2, 0, True), (1, 2, True)])
def test_factorized_conv_equals_conv_with_rank_r_weight(stride, padding, bias) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=stride, padding=padding, bias=bias)
    x = torch.randn(2, 4, 9, 9)
    pair = edge.factorize_conv(conv, 2)
    left, right = edge.low_rank_factors(conv.weight.flatten(1), 2)
    w_r = (left @ right).reshape(conv.weight.shape)
    want = F.conv2d(x, w_r, conv.bias, stride=stride, padding=padding)
    torch.testing.assert_close(pair(x), want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(edge.factorize_conv(conv, 6)(x), conv(x), atol=1e-5, rtol=1e-4)


def test_factorize_model_replaces_only_layers_that_shrink() -> None:
    torch.manual_seed(0)
    model = models.cnn(width=8, depth=3)
    small = edge.factorize_model(model, 0.25)
    # conv1 (8 x 9): rank 2 -> 2*(8+9)=34 < 72: replaced; conv2 (16 x 72): rank 4 -> 352 < 1152;
    # conv3 (16 x 144): rank 4 -> 640 < 2304; linear (10 x 256): rank 2 -> 532 < 2560
    expected = 34 + 352 + 640 + 532 + 10 + 2 * (8 + 16 + 16)  # + linear bias + BN weight/bias
    assert bench.count_parameters(small) == expected
    assert bench.count_parameters(model) == 72 + 1152 + 2304 + 2560 + 10 + 2 * 40
    with pytest.raises(ValueError, match="rank_fraction"):
        edge.factorize_model(model, 0)
    with pytest.raises(ValueError, match="rank"):
        edge.low_rank_factors(torch.zeros(3, 4), 4)


def test_kmeans_matches_scikit_learn_lloyd() -> None:
    from sklearn.cluster import KMeans

    # uniform weights: no cluster ever empties (scikit-learn would relocate an empty one)
    w = torch.rand(500, generator=torch.Generator().manual_seed(0)) ** 2
    for bits in (2, 3, 4):
        book = edge.kmeans_share(w, bits, iters=50)
        init = np.linspace(w.min().item(), w.max().item(), 2**bits)[:, None]
        km = KMeans(2**bits, init=init, n_init=1, max_iter=50, tol=0, algorithm="lloyd").fit(
            w.double().numpy()[:, None]
        )
        np.testing.assert_allclose(
            np.sort(book.centroids.numpy()), np.sort(km.cluster_centers_[:, 0]), atol=1e-4
        )
        assert book.indices.shape == w.shape and int(book.indices.max()) < 2**bits


def test_kmeans_is_exact_when_values_fit_in_the_codebook() -> None:
    w = torch.tensor([-1.0, 0.1, 0.1, 2.0, -1.0, 2.0, 0.9, 0.9]).reshape(2, 4)
    book = edge.kmeans_share(w, bits=2)
    torch.testing.assert_close(book.centroids[book.indices], w)
    with pytest.raises(ValueError, match="bits"):
        edge.kmeans_share(w, bits=9)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(edge.PACK_BITS), st.integers(0, 100), st.integers(0, 10**6))
def test_pack_unpack_round_trip_and_size(bits, n, seed) -> None:
    idx = torch.randint(0, 2**bits, (n,), generator=torch.Generator().manual_seed(seed))
    packed = edge.pack_indices(idx, bits)
    assert packed.dtype == torch.uint8 and len(packed) == math.ceil(n * bits / 8)
    torch.testing.assert_close(edge.unpack_indices(packed, bits, n), idx)


def test_pack_layout_matches_numpy_packbits_and_hand_example() -> None:
    bits1 = torch.tensor([1, 0, 1, 1, 0, 0, 0, 1, 1, 1])
    expected = np.packbits(bits1.numpy().astype(np.uint8), bitorder="little")
    np.testing.assert_array_equal(edge.pack_indices(bits1, 1).numpy(), expected)
    # 2-bit indices [1, 2, 3, 0] -> 1 + 2*4 + 3*16 + 0*64 = 57 in one byte
    assert edge.pack_indices(torch.tensor([1, 2, 3, 0]), 2).tolist() == [57]
    assert edge.pack_indices(torch.tensor([15, 1]), 4).tolist() == [31]
    with pytest.raises(ValueError, match="indices"):
        edge.pack_indices(torch.tensor([4]), 2)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_shared_model_storage_is_packed_indices_plus_codebooks(bits) -> None:
    torch.manual_seed(0)
    model = models.cnn(width=8, depth=2)
    shared, books = edge.share_model(model, bits, iters=5)
    layers = edge.shareable_layers(model)
    weights = sum(m.weight.numel() for m in layers.values())
    other = bench.model_size_bytes(model) - 4 * weights
    # what pack_indices really writes, plus 2^bits fp32 centroids per layer
    packed = sum(len(edge.pack_indices(books[n].indices, bits)) for n in layers)
    expected = packed + 4 * 2**bits * len(layers) + other
    assert edge.shared_model_bytes(shared, books, bits) == expected
    for name, layer in edge.shareable_layers(shared).items():
        assert layer.weight.unique().numel() <= 2**bits
        torch.testing.assert_close(layer.weight, books[name].centroids[books[name].indices])
    # the weights themselves shrink 32 / bits times, less the codebooks
    assert edge.packed_bytes(10_000, bits) == 10_000 * bits // 8 + 4 * 2**bits


def test_finetune_centroids_keeps_indices_and_lowers_loss() -> None:
    torch.manual_seed(0)
    d = data.digits()
    model = models.cnn(width=8, depth=2)
    loader = data.digits_loaders(64).train
    shared, books = edge.share_model(model, 2, iters=5)
    x, y = d["train"]

    def loss(m):
        with torch.no_grad():
            return F.cross_entropy(m.eval()(x), y).item()

    tuned, new_books = edge.finetune_centroids(shared, books, loader, epochs=1, lr=1e-2)
    assert loss(tuned) < loss(shared)
    for name, layer in edge.shareable_layers(tuned).items():
        assert torch.equal(new_books[name].indices, books[name].indices)
        torch.testing.assert_close(layer.weight, new_books[name].centroids[books[name].indices])


def test_sample_architectures() -> None:
    # the Pareto front and budget pick of the search: tests/core/test_bench.py
    archs = edge.sample_architectures(6, seed=1)
    assert len(set(archs)) == 6 and archs == edge.sample_architectures(6, seed=1)
    assert all(w in edge.WIDTHS and d in edge.DEPTHS for w, d in archs)
    with pytest.raises(ValueError):
        edge.sample_architectures(0)


def test_budgets_report_macs_and_bytes() -> None:
    model = models.cnn(width=4, depth=2)
    x = torch.zeros(1, 1, 8, 8)
    b = edge.budgets(model, x)
    assert b["macs"] == bench.count_macs(model, x) == 4 * 64 * 9 + 8 * 64 * 4 * 9 + 10 * 128
    assert b["bytes"] == bench.model_size_bytes(model)
    assert b["peak_mem_kib"] >= 0
    assert "latency_ms" not in b  # latency is timed once, with bench.compare, in the notebook
    with pytest.raises(ValueError, match="example"):
        edge.budgets(model, [[0.0]])


def test_edge_has_no_timing_helper_of_its_own() -> None:
    """Every speed comparison goes through labkit.bench.compare (issue 11)."""
    assert not hasattr(edge, "single_thread_latency_ms")


def _shared():
    torch.manual_seed(0)
    return edge.share_model(models.cnn(width=4, depth=2), 2, iters=2)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        # NaN/inf and empty tensors
        (lambda: edge.low_rank_factors(torch.full((3, 3), float("nan")), 1), "NaN"),
        (lambda: edge.low_rank_factors(torch.zeros(0, 4), 1), "weight is empty"),
        (lambda: edge.rank_error_curve(torch.zeros(3, 0)), "weight is empty"),
        (lambda: edge.rank_error_curve([[1.0, 2.0]]), "torch.Tensor"),
        (lambda: edge.kmeans_share(torch.tensor([float("inf"), 1.0]), 2), "NaN or inf"),
        # zero, negative, absurd or bool counts: k-means iterations, bit widths, n, rank
        (lambda: edge.low_rank_factors(torch.ones(3, 3), True), "rank"),
        (lambda: edge.kmeans_share(torch.ones(8), 2, iters=0), "iters"),
        (lambda: edge.kmeans_share(torch.ones(8), 2, iters=-3), "iters"),
        (lambda: edge.kmeans_share(torch.ones(8), 2, iters=10**7), "iters"),  # minutes
        (lambda: edge.kmeans_share(torch.ones(8), 2, iters=True), "iters"),
        (lambda: edge.kmeans_share(torch.zeros(2**21), 8), "GiB"),  # a 2 GiB distance matrix
        (lambda: edge.pack_indices(torch.tensor([1, 0]), True), "bits"),
        (lambda: edge.pack_indices(torch.tensor([1, 0]), 3), "bits"),
        (lambda: edge.pack_indices(torch.tensor([0.5]), 2), "integer"),
        (lambda: edge.unpack_indices(torch.tensor([57], dtype=torch.uint8), 2, -1), "n "),
        (lambda: edge.unpack_indices(torch.tensor([57], dtype=torch.uint8), 2, 5), "n "),
        (lambda: edge.unpack_indices(torch.tensor([57]), 2, 4), "uint8"),
        (lambda: edge.sample_architectures(True), "n "),
        (lambda: edge.sample_architectures(10**6), "n "),
        (lambda: edge.factorize_model(models.cnn(4), float("nan")), "rank_fraction"),
        # a non-model (or a non-factorisable layer) where a model is expected
        (lambda: edge.matrix_of(nn.ReLU()), "nn.Linear"),
        (lambda: edge.matrix_of(nn.Conv2d(4, 4, 3, groups=2)), "groups"),
        (lambda: edge.factorize_model("model.pt", 0.5), "model"),
        (lambda: edge.share_model("model.pt", 2), "model"),
        (lambda: edge.budgets({"w": torch.ones(1)}, torch.zeros(1, 1, 8, 8)), "model"),
        (lambda: edge.budgets(models.cnn(4), torch.zeros(0, 1, 8, 8)), "example"),
        # codebooks that do not belong to the model or to the bit width
        (lambda: edge.shared_model_bytes(*_shared(), 4), "bits=4"),
        (lambda: edge.shared_model_bytes(_shared()[0], {}, 2), "books"),
        (lambda: edge.finetune_centroids(*_shared(), [], epochs=0), "epochs"),
        (lambda: edge.finetune_centroids(*_shared(), [], lr=float("nan")), "lr"),
    ],
)
def test_bad_input_gets_a_clear_error(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()
