"""Edge deployment: fit a model into a budget (bytes, single-thread latency, memory, MACs).

Three tools, each measured on the course CNN (labkit.models.cnn) and digits:

- Low-rank factorisation. A weight matrix W (out, in) (a conv's weight reshaped to
  (C_out, C_in * kH * kW)) is replaced by its truncated SVD W_r = U_r S_r V_r^T, stored as two
  factors: left = U_r sqrt(S_r) (out, r) and right = sqrt(S_r) V_r^T (r, in). Parameters
  fall from out * in to r * (out + in). By Eckart-Young W_r is the best rank-r approximation
  and the relative error is ||W - W_r||_F / ||W||_F = sqrt(sum_{i>r} s_i^2 / sum_i s_i^2).
  A Linear becomes Linear(in, r, bias=False) -> Linear(r, out); a Conv2d(k x k) becomes
  Conv2d(C_in, r, k x k, bias=False) -> Conv2d(r, C_out, 1 x 1).
- Weight sharing (Deep Compression). Each layer's weights are clustered by 1-D k-means into
  k = 2^bits centroids; a weight is stored as a bits-wide index into the layer's codebook.
  Packed storage: ceil(n * bits / 8) bytes of indices + k * 4 bytes of fp32 centroids.
  Fine-tuning moves the centroids: dL/dc_j = sum of dL/dW_i over weights i in cluster j.
- Hardware-aware search: sample (width, depth) of the CNN, train briefly, measure accuracy
  and single-thread latency (labkit.bench.compare, one interleaved run); keep the Pareto
  front (labkit.bench.pareto_front) and the best model under a budget
  (labkit.bench.best_under_budget).
"""

from __future__ import annotations

import copy
import math
import random
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader

from labkit.core import bench, models, train
from labkit.core.data import Loaders
from labkit.core.env import threads
from labkit.core.errors import (
    check_bits,
    check_choice,
    check_finite,
    check_int,
    check_loader,
    check_model,
    check_nonempty,
    check_number,
    check_positive,
    check_tensor,
)
from labkit.edge.checks import _check_candidate, _check_shapes

PACK_BITS = (1, 2, 4, 8)
MAX_ITERS = 1000  # k-means iterations (each one pass over the weights)
MAX_BYTES = 2**30  # the (n, 2^bits) distance matrix of k-means must fit in this

# --------------------------------------------------------------------------- low rank


def low_rank_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated SVD of a 2-D weight (out, in): returns left (out, r), right (r, in).

    left = U[:, :r] * sqrt(s[:r]), right = sqrt(s[:r])[:, None] * Vh[:r]; left @ right = W_r.
    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    _check_factors(weight, rank)
    # u (out, m), s (m,), vh (m, in) with m = min(out, in); float64 for a stable SVD
    u, s, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()  # (r,)
    left = (u[:, :rank] * root).to(weight.dtype)  # (out, r)
    right = (root[:, None] * vh[:rank]).to(weight.dtype)  # (r, in)
    return left, right


def rank_error_curve(weight: torch.Tensor) -> torch.Tensor:
    """Relative Frobenius error of the best rank-r approximation for r = 1..min(out, in).

    err[r-1] = sqrt(sum_{i>r} s_i^2 / sum_i s_i^2)  (Eckart-Young); shape (min(out, in),).
    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    _check_curve(weight)
    s2 = torch.linalg.svdvals(weight.detach().double()) ** 2
    tail = s2.flip(0).cumsum(0).flip(0)  # tail[i] = sum_{j >= i} s_j^2
    rest = torch.cat([tail[1:], tail.new_zeros(1)])
    return (rest / s2.sum()).clamp_min(0).sqrt().float()


def matrix_of(layer: nn.Module) -> torch.Tensor:
    """The weight of a Linear (out, in) or a Conv2d reshaped to (C_out, C_in * kH * kW).

    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    _check_layer(layer)
    # (out, in) or (C_out, C_in, kH, kW) -> (C_out, C_in * kH * kW)
    return layer.weight.detach().flatten(1)


def factorize_linear(layer: nn.Linear, rank: int) -> nn.Sequential:
    """Linear(in, out) -> Linear(in, r, bias=False) -> Linear(r, out) holding the rank-r SVD.

    Used by factorize_model (labkit/edge/lesson.py).
    """
    _check_layer(layer, "layer", (nn.Linear,))
    left, right = low_rank_factors(layer.weight, rank)
    first = nn.Linear(layer.in_features, rank, bias=False)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(right)
        second.weight.copy_(left)
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def factorize_conv(conv: nn.Conv2d, rank: int) -> nn.Sequential:
    """Conv2d(C_in, C_out, k) -> Conv2d(C_in, r, k, bias=False) -> Conv2d(r, C_out, 1).

    The first conv keeps stride, padding and dilation; only groups=1 convs are supported.
    Used by factorize_model (labkit/edge/lesson.py).
    """
    _check_layer(conv, "conv", (nn.Conv2d,))
    left, right = low_rank_factors(matrix_of(conv), rank)
    first = nn.Conv2d(
        conv.in_channels,
        rank,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        bias=False,
        padding_mode=conv.padding_mode,
    )
    second = nn.Conv2d(rank, conv.out_channels, 1, bias=conv.bias is not None)
    with torch.no_grad():
        first.weight.copy_(right.reshape(first.weight.shape))
        second.weight.copy_(left[:, :, None, None])
        if conv.bias is not None:
            second.bias.copy_(conv.bias)
    return nn.Sequential(first, second)


def factorized_params(out_features: int, in_features: int, rank: int) -> int:
    """Weights of the two factors: r * (out + in)  (vs out * in for the full matrix).

    Used by factorize_model (labkit/edge/lesson.py).
    """
    _check_params(out_features, in_features, rank)
    return rank * (out_features + in_features)


def factorize_model(
    model: nn.Module, rank_fraction: float = 1.0, *, ranks: dict[str, int] | None = None
) -> nn.Module:
    """Copy of ``model`` with every Linear / groups=1 Conv2d replaced by its low-rank pair.

    rank = max(1, round(rank_fraction * min(out, in))) for every layer, or ranks[name] per
    layer when ``ranks`` is given (layers it does not name stay whole); a layer is left alone
    when the pair would not have fewer weights than the original (r * (out + in) >= out * in).
    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    _check_factorize(model, rank_fraction, ranks)
    new = copy.deepcopy(model)
    for name, layer in list(new.named_modules()):
        if not isinstance(layer, nn.Linear | nn.Conv2d) or getattr(layer, "groups", 1) != 1:
            continue
        out_f, in_f = matrix_of(layer).shape
        rank = max(1, round(rank_fraction * min(out_f, in_f)))
        rank = rank if ranks is None else ranks.get(name, min(out_f, in_f))
        if factorized_params(out_f, in_f, rank) >= out_f * in_f:
            continue
        pair = (
            factorize_linear(layer, rank)
            if isinstance(layer, nn.Linear)
            else factorize_conv(layer, rank)
        )
        parent_name, _, child = name.rpartition(".")
        setattr(new.get_submodule(parent_name) if parent_name else new, child, pair)
    return new


def factorizable_layers(model: nn.Module) -> dict[str, tuple[int, int]]:
    """{name: (out, in)} of the layers factorize_model can split (Linear, groups=1 Conv2d).

    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    check_model(model)
    return {
        name: tuple(matrix_of(layer).shape)
        for name, layer in model.named_modules()
        if isinstance(layer, nn.Linear | nn.Conv2d) and getattr(layer, "groups", 1) == 1
    }


def uniform_ranks(model: nn.Module, rank_fraction: float) -> dict[str, int]:
    """The ranks factorize_model(model, rank_fraction) uses: round(fraction * min(out, in)),
    at least 1, the same fraction for every layer.

    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    _check_factorize(model, rank_fraction, None)
    layers = factorizable_layers(model)
    return {n: max(1, round(rank_fraction * min(shape))) for n, shape in layers.items()}


def factor_weights(shapes: dict[str, tuple[int, int]], ranks: dict[str, int]) -> int:
    """Weights of the factorised layers: r (out + in) per layer, or out * in when that is not
    fewer (the layer then stays whole, as in factorize_model).

    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    _check_factor_weights(shapes, ranks)
    return sum(min(factorized_params(o, i, ranks[n]), o * i) for n, (o, i) in shapes.items())


def energy_ranks(model: nn.Module, max_weights: int) -> dict[str, int]:
    """Per-layer ranks that keep the most spectral energy for a weight budget (greedy).

    Every layer starts at rank 1. Each step gives one more rank to the layer whose next
    singular value buys the most relative energy per added weight,
        gain = s_{r+1}^2 / sum_i s_i^2  per  (out + in) weights,
    (the step past the last rank that saves weights restores the whole layer, at the cost of
    out * in - r (out + in) weights, for all its remaining energy) while factor_weights stays
    <= max_weights. Small layers (few weights per rank) end near full rank; big layers with
    a flat spectrum give ranks up first.
    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    _check_energy(model, max_weights)
    shapes = factorizable_layers(model)
    layers = dict(model.named_modules())
    energy = {  # relative energy of each singular value, largest first: (min(out, in),)
        n: (s2 := torch.linalg.svdvals(matrix_of(layers[n]).double()) ** 2) / s2.sum()
        for n in shapes
    }
    ranks = dict.fromkeys(shapes, 1)
    while True:
        best, best_gain = None, 0.0
        for n, (o, i) in shapes.items():
            r, full = ranks[n], min(o, i)
            if r >= full or factorized_params(o, i, r) >= o * i:
                continue  # already whole
            step_to = r + 1 if factorized_params(o, i, r + 1) < o * i else full
            cost = min(factorized_params(o, i, step_to), o * i) - factorized_params(o, i, r)
            gain = float(energy[n][r:step_to].sum()) / cost
            if gain > best_gain and factor_weights(shapes, {**ranks, n: step_to}) <= max_weights:
                best, best_gain = (n, step_to), gain
        if best is None:
            return ranks
        ranks[best[0]] = best[1]


# --------------------------------------------------------------------------- k-means


class Codebook(NamedTuple):
    """One layer's shared weights: centroids (2^bits,) float32, indices (weight shape) int64.

    Used by kmeans_share, share_model and finetune_centroids (labkit/edge/lesson.py).
    """

    centroids: torch.Tensor
    indices: torch.Tensor


def kmeans_share(weight: torch.Tensor, bits: int, iters: int = 20) -> Codebook:
    """1-D k-means of a weight tensor into k = 2^bits centroids (Lloyd's algorithm).

    Init: k centroids evenly spaced over [min, max] (linear init keeps the rare large
    weights, Han et al. 2016). Each iteration: assign every weight to its nearest centroid
    (ties go to the lower index), move each centroid to the mean of its weights; a centroid
    with no weights stays where it is.
    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
    """
    _check_kmeans(weight, bits, iters)
    w = weight.detach().flatten().float()  # (n,)
    k = 2**bits
    centroids = torch.linspace(float(w.min()), float(w.max()), k)  # (k,)
    idx = torch.zeros_like(w, dtype=torch.int64)
    for _ in range(iters):
        idx = (w[:, None] - centroids[None, :]).abs().argmin(1)  # distances (n, k) -> (n,)
        sums = torch.zeros(k).index_add_(0, idx, w)
        counts = torch.zeros(k).index_add_(0, idx, torch.ones_like(w))
        centroids = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)
    idx = (w[:, None] - centroids[None, :]).abs().argmin(1)
    return Codebook(centroids, idx.reshape(weight.shape))


def pack_indices(indices: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack integer indices in [0, 2^bits) into a uint8 tensor, 8 / bits indices per byte.

    Index i goes to byte i // (8 / bits), at bit offset (i % (8 / bits)) * bits (low bits
    first); the last byte is zero-padded. Length = ceil(n * bits / 8).
    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
    """
    _check_pack(indices, bits)
    flat = indices.flatten().to(torch.int64)  # (n,)
    per = 8 // bits
    pad = (-flat.numel()) % per
    flat = torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, per)  # (n_bytes, per)
    shifts = torch.arange(per) * bits  # (per,): bit offset of each slot in its byte
    return (flat << shifts).sum(1).to(torch.uint8)  # (n_bytes,)


def unpack_indices(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """Inverse of pack_indices: the first ``n`` indices as int64.

    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
    """
    _check_unpack(packed, bits, n)
    per = 8 // bits
    shifts = torch.arange(per) * bits  # (per,)
    vals = (packed.to(torch.int64)[:, None] >> shifts) & (2**bits - 1)  # (n_bytes, per)
    return vals.flatten()[:n]


def packed_bytes(n: int, bits: int, codebook_bytes_per_entry: int = 4) -> int:
    """Bytes of one shared layer: ceil(n * bits / 8) index bytes + 2^bits * entry bytes.

    Used by shared_model_bytes (labkit/edge/lesson.py).
    """
    _check_packed_bytes(n, bits, codebook_bytes_per_entry)
    return math.ceil(n * bits / 8) + (2**bits) * codebook_bytes_per_entry


def shareable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The Conv2d / Linear layers whose weights get a codebook, by module name.

    Used by share_model and finetune_centroids (labkit/edge/lesson.py).
    """
    check_model(model)
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)}


def share_model(
    model: nn.Module, bits: int, iters: int = 20
) -> tuple[nn.Module, dict[str, Codebook]]:
    """Copy of ``model`` whose Conv2d/Linear weights are replaced by centroids[indices].

    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
    """
    check_model(model)
    new = copy.deepcopy(model)
    books = {}
    for name, layer in shareable_layers(new).items():
        book = kmeans_share(layer.weight, bits, iters)
        books[name] = book
        with torch.no_grad():
            layer.weight.copy_(book.centroids[book.indices])
    return new, books


def shared_model_bytes(model: nn.Module, books: dict[str, Codebook], bits: int) -> int:
    """Real storage: packed indices + fp32 codebooks for shared weights (packed_bytes: what
    pack_indices writes plus 2^bits centroids), plus every other parameter and buffer
    (biases, BatchNorm) at its own element size.
    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
    """
    _check_books(model, books, bits)
    shared = {f"{name}.weight": book.indices.numel() for name, book in books.items()}
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    return sum(
        packed_bytes(shared[name], bits) if name in shared else t.numel() * t.element_size()
        for name, t in tensors
    )


def finetune_centroids(
    model: nn.Module,
    books: dict[str, Codebook],
    loader: DataLoader,
    *,
    epochs: int = 2,
    lr: float = 1e-3,
) -> tuple[nn.Module, dict[str, Codebook]]:
    """Train only the centroids (indices fixed): W = c[idx] inside the forward pass.

    Autograd of the gather c[idx] is a scatter-add, so dL/dc_j = sum_{i: idx_i = j} dL/dW_i,
    exactly Deep Compression's centroid update. BatchNorm runs in eval mode (its statistics
    stay fixed), so only the codebooks change. Returns a new model and the new codebooks.
    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
    """
    _check_finetune(model, books, loader, epochs, lr)
    cents = {n: b.centroids.clone().requires_grad_(True) for n, b in books.items()}
    opt = torch.optim.Adam(cents.values(), lr=lr)
    model = copy.deepcopy(model).eval()
    for _ in range(epochs):
        for x, y in loader:
            params = {f"{n}.weight": cents[n][b.indices] for n, b in books.items()}
            loss = F.cross_entropy(functional_call(model, params, (x,), strict=False), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    new_books = {n: Codebook(cents[n].detach().clone(), b.indices) for n, b in books.items()}
    with torch.no_grad():
        for name, layer in shareable_layers(model).items():
            layer.weight.copy_(new_books[name].centroids[new_books[name].indices])
    return model, new_books


# --------------------------------------------------------------------------- budgets


def budgets(model: nn.Module, example: torch.Tensor) -> dict[str, float]:
    """The size budgets an edge engineer checks, at batch example.shape[0]:

    params, fp32 bytes (parameters + buffers), MACs (labkit.bench.count_macs),
    peak_mem_kib (extra resident memory during one forward, on one thread).
    Latency is not here: time it against a baseline with labkit.bench.compare, once.
    Taught in notebooks/10_edge_deployment.ipynb, "1. Budgets, as an edge engineer sees them".
    """
    _check_budgets(model, example)
    model = model.eval()

    def fwd() -> None:
        with torch.no_grad():
            model(example)

    with threads(1):
        peak = bench.peak_memory(fwd)
    return {
        "params": bench.count_parameters(model),
        "bytes": bench.model_size_bytes(model),
        "macs": bench.count_macs(model, example),
        "peak_mem_kib": peak / 1024,
    }


# --------------------------------------------------------------------------- search

WIDTHS = (4, 8, 12, 16, 24, 32)
DEPTHS = (2, 3, 4)


def sample_architectures(n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` distinct (width, depth) pairs drawn without replacement from WIDTHS x DEPTHS.

    Taught in notebooks/10_edge_deployment.ipynb, "4. Hardware-aware search".
    """
    check_int(n, "n (architectures to sample)", low=1, high=len(WIDTHS) * len(DEPTHS))
    space = [(w, d) for w in WIDTHS for d in DEPTHS]
    return sorted(random.Random(seed).sample(space, n))


def train_candidate(
    width: int, depth: int, loaders: Loaders, *, epochs: int = 3, seed: int = 0
) -> tuple[nn.Module, float]:
    """Train cnn(width, depth) for a few epochs from a fixed seed; return (model, val acc).

    Taught in notebooks/10_edge_deployment.ipynb, "4. Hardware-aware search".
    """
    _check_candidate(width, depth, loaders, epochs)
    torch.manual_seed(seed)
    model = models.cnn(width=width, depth=depth)
    train.fit(model, loaders.train, epochs=epochs, lr=3e-3)
    return model, train.evaluate(model, loaders.val)["accuracy"]


# The Pareto front and the best-under-budget pick are labkit.bench.pareto_front and
# labkit.bench.best_under_budget (one implementation, shared with labkit.pipeline).


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_matrix(weight: object) -> None:
    check_finite(check_tensor(weight, "weight", ndim=2), "weight")


def _check_factors(weight: object, rank: object) -> None:
    _check_matrix(weight)
    check_int(rank, "rank (at most min(out, in))", low=1, high=min(weight.shape))


def _check_curve(weight: object) -> None:
    _check_matrix(weight)
    if not bool(weight.any()):  # type: ignore[union-attr]
        raise ValueError("weight is all zeros: its relative error (0 / 0) is undefined.")


def _check_layer(layer: object, name: str = "layer", kinds: tuple = (nn.Linear, nn.Conv2d)) -> None:
    """An nn.Linear or groups=1 nn.Conv2d (or only ``kinds``): what low-rank factorisation splits."""
    if not isinstance(layer, kinds) or getattr(layer, "groups", 1) != 1:
        want = " or ".join(f"nn.{k.__name__}" for k in kinds)
        raise ValueError(
            f"{name} must be an {want} (Conv2d with groups=1) for low-rank factorisation, got "
            f"{type(layer).__name__}{' with groups != 1' if isinstance(layer, nn.Conv2d) else ''}."
        )


def _check_params(out_features: object, in_features: object, rank: object) -> None:
    check_int(out_features, "out_features", low=1)
    check_int(in_features, "in_features", low=1)
    check_int(rank, "rank", low=1)


def _check_factor_weights(shapes: object, ranks: object) -> None:
    """{name: (out, in)} of factorizable_layers and a rank >= 1 for each of those names."""
    ok = isinstance(shapes, dict) and all(isinstance(s, tuple | list) for s in shapes.values())
    if not ok or any(len(s) != 2 for s in shapes.values()):  # type: ignore[union-attr]
        raise ValueError(f"shapes must be {{name: (out, in)}} of factorizable_layers: {shapes!r}.")
    if not isinstance(ranks, dict) or set(shapes) - set(ranks):
        raise ValueError(f"ranks must be a dict giving a rank to every layer of {list(shapes)}.")
    for name in shapes:
        check_int(ranks[name], f"ranks[{name!r}]", low=1)


def _check_factorize(model: object, rank_fraction: object, ranks: object) -> None:
    check_model(model)
    if check_number(rank_fraction, "rank_fraction", low=0, high=1) == 0:
        raise ValueError("rank_fraction must be in (0, 1], got 0 (keep at least one rank).")
    if ranks is None:
        return
    shapes = factorizable_layers(model)
    if not isinstance(ranks, dict) or not set(ranks) <= set(shapes):
        raise ValueError(
            f"ranks must be a dict {{layer name: rank}} naming layers of {sorted(shapes)}, "
            f"got {ranks!r}."
        )
    for name, r in ranks.items():
        check_int(r, f"ranks[{name!r}]", low=1, high=min(shapes[name]))


def _check_energy(model: object, max_weights: object) -> None:
    check_model(model)
    shapes = factorizable_layers(model)
    least = factor_weights(shapes, dict.fromkeys(shapes, 1))
    if check_number(max_weights, "max_weights") < least:
        raise ValueError(
            f"max_weights={max_weights} is below {least}, the weights at rank 1 in every layer."
        )


def _check_kmeans(weight: object, bits: object, iters: object) -> None:
    check_finite(check_tensor(weight, "weight"), "weight")
    check_bits(bits, 1, 8)
    check_int(iters, "iters (k-means iterations)", low=1, high=MAX_ITERS)
    need = 4 * weight.numel() * 2**bits  # the (n, k) float32 distance matrix
    if need > MAX_BYTES:
        raise ValueError(
            f"weight has {weight.numel():,} elements: k-means with 2^{bits} centroids needs a "
            f"{need / 2**30:.1f} GiB distance matrix; cluster a smaller tensor or use fewer bits."
        )


def _check_packed_bytes(n: object, bits: object, codebook_bytes_per_entry: object) -> None:
    check_int(n, "n (weights)", low=0)
    check_bits(bits, 1, 16)
    check_int(codebook_bytes_per_entry, "codebook_bytes_per_entry", low=0)


def _check_pack_bits(bits: object) -> None:
    check_choice(check_int(bits, "bits"), "bits (to pack into whole bytes)", PACK_BITS)


def _check_pack(indices: object, bits: object) -> None:
    _check_pack_bits(bits)
    check_tensor(indices, "indices", floating=False)
    if indices.is_floating_point() or indices.dtype == torch.bool:
        raise ValueError(f"indices must be an integer tensor, got {indices.dtype}.")
    if indices.numel() and (indices.min() < 0 or indices.max() >= 2**bits):
        raise ValueError(f"indices must be in [0, {2**bits}) for bits={bits}.")


def _check_unpack(packed: object, bits: object, n: object) -> None:
    _check_pack_bits(bits)
    check_tensor(packed, "packed", floating=False, ndim=1)
    if packed.dtype != torch.uint8:
        raise ValueError(f"packed must be the uint8 tensor of pack_indices, got {packed.dtype}.")
    check_int(n, "n (indices to unpack)", low=0, high=len(packed) * (8 // bits))


def _check_books(model: object, books: object, bits: object = None) -> None:
    """Codebooks of share_model for this model (and made with ``bits``, when given)."""
    check_model(model)
    if not isinstance(books, dict) or not books:
        raise ValueError("books must be the non-empty dict of Codebooks that share_model returns.")
    layers = shareable_layers(model)
    for name, book in books.items():
        if name not in layers or not isinstance(book, Codebook):
            raise ValueError(f"books[{name!r}] is not a Codebook of a Conv2d/Linear of model.")
        if book.indices.shape != layers[name].weight.shape:
            raise ValueError(f"books[{name!r}].indices must have the shape of {name}.weight.")
        if bits is not None and book.centroids.numel() != 2 ** check_bits(bits, 1, 8):
            raise ValueError(
                f"bits={bits} but books[{name!r}] has {book.centroids.numel()} centroids: "
                "pass the bits given to share_model."
            )


def _check_finetune(
    model: object, books: object, loader: object, epochs: object, lr: object
) -> None:
    _check_books(model, books)
    check_int(epochs, "epochs", low=1, high=1000)
    check_positive(lr, "lr (learning rate)")
    check_loader(loader)


def _check_budgets(model: object, example: object) -> None:
    check_model(model)
    check_nonempty(check_tensor(example, "example"), "example")
    _check_shapes(model, example)  # no forward: budgets measures peak memory next
