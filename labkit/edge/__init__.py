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

from labkit import bench, models, train
from labkit.core.data import Loaders
from labkit.core.env import threads
from labkit.core.errors import check_bits, check_tensor

PACK_BITS = (1, 2, 4, 8)

# --------------------------------------------------------------------------- low rank


def _check_rank(rank: object, full: int) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= full:
        raise ValueError(f"rank must be an integer from 1 to {full} (min(out, in)), got {rank!r}.")
    return rank


def low_rank_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated SVD of a 2-D weight (out, in): returns left (out, r), right (r, in).

    left = U[:, :r] * sqrt(s[:r]), right = sqrt(s[:r])[:, None] * Vh[:r]; left @ right = W_r.
    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    check_tensor(weight, "weight", ndim=2)
    _check_rank(rank, min(weight.shape))
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
    check_tensor(weight, "weight", ndim=2)
    s2 = torch.linalg.svdvals(weight.detach().double()) ** 2
    tail = s2.flip(0).cumsum(0).flip(0)  # tail[i] = sum_{j >= i} s_j^2
    rest = torch.cat([tail[1:], tail.new_zeros(1)])
    return (rest / s2.sum()).clamp_min(0).sqrt().float()


def matrix_of(layer: nn.Module) -> torch.Tensor:
    """The weight of a Linear (out, in) or a Conv2d reshaped to (C_out, C_in * kH * kW).

    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    if isinstance(layer, nn.Linear):
        return layer.weight.detach()
    if isinstance(layer, nn.Conv2d):
        return layer.weight.detach().flatten(1)
    raise ValueError(
        f"low-rank factorisation supports nn.Linear and nn.Conv2d, got {type(layer).__name__}."
    )


def factorize_linear(layer: nn.Linear, rank: int) -> nn.Sequential:
    """Linear(in, out) -> Linear(in, r, bias=False) -> Linear(r, out) holding the rank-r SVD.

    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    if not isinstance(layer, nn.Linear):
        raise ValueError(f"factorize_linear needs an nn.Linear, got {type(layer).__name__}.")
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
    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
        raise ValueError("factorize_conv needs an nn.Conv2d with groups=1.")
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

    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    return rank * (out_features + in_features)


def factorize_model(model: nn.Module, rank_fraction: float) -> nn.Module:
    """Copy of ``model`` with every Linear / groups=1 Conv2d replaced by its low-rank pair.

    rank = max(1, round(rank_fraction * min(out, in))); a layer is left alone when the pair
    would not have fewer weights than the original (r * (out + in) >= out * in).
    Taught in notebooks/10_edge_deployment.ipynb, "2. Low-rank factorisation".
    """
    if not 0 < rank_fraction <= 1:
        raise ValueError(f"rank_fraction must be in (0, 1], got {rank_fraction!r}.")
    new = copy.deepcopy(model)
    for name, layer in list(new.named_modules()):
        if not isinstance(layer, nn.Linear | nn.Conv2d) or getattr(layer, "groups", 1) != 1:
            continue
        out_f, in_f = matrix_of(layer).shape
        rank = max(1, round(rank_fraction * min(out_f, in_f)))
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


# --------------------------------------------------------------------------- k-means


class Codebook(NamedTuple):
    """One layer's shared weights: centroids (2^bits,) float32, indices (weight shape) int64.

    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
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
    check_tensor(weight, "weight")
    check_bits(bits, 1, 8)
    if weight.numel() == 0:
        raise ValueError("weight is empty: nothing to cluster.")
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
    if bits not in PACK_BITS:
        raise ValueError(f"bits must be one of {PACK_BITS} to pack into whole bytes, got {bits!r}.")
    flat = indices.flatten().to(torch.int64)
    if flat.numel() and (flat.min() < 0 or flat.max() >= 2**bits):
        raise ValueError(f"indices must be in [0, {2**bits}) for bits={bits}.")
    per = 8 // bits
    pad = (-flat.numel()) % per
    flat = torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, per)  # (n_bytes, per)
    shifts = torch.arange(per) * bits  # (per,): bit offset of each slot in its byte
    return (flat << shifts).sum(1).to(torch.uint8)  # (n_bytes,)


def unpack_indices(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """Inverse of pack_indices: the first ``n`` indices as int64.

    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
    """
    if bits not in PACK_BITS:
        raise ValueError(f"bits must be one of {PACK_BITS}, got {bits!r}.")
    per = 8 // bits
    shifts = torch.arange(per) * bits
    vals = (packed.to(torch.int64)[:, None] >> shifts) & (2**bits - 1)
    return vals.flatten()[:n]


def packed_bytes(n: int, bits: int, codebook_bytes_per_entry: int = 4) -> int:
    """Bytes of one shared layer: ceil(n * bits / 8) index bytes + 2^bits * entry bytes.

    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
    """
    return math.ceil(n * bits / 8) + (2**bits) * codebook_bytes_per_entry


def shareable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The Conv2d / Linear layers whose weights get a codebook, by module name.

    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
    """
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)}


def share_model(
    model: nn.Module, bits: int, iters: int = 20
) -> tuple[nn.Module, dict[str, Codebook]]:
    """Copy of ``model`` whose Conv2d/Linear weights are replaced by centroids[indices].

    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
    """
    check_bits(bits, 1, 8)
    new = copy.deepcopy(model)
    books = {}
    for name, layer in shareable_layers(new).items():
        book = kmeans_share(layer.weight, bits, iters)
        books[name] = book
        with torch.no_grad():
            layer.weight.copy_(book.centroids[book.indices])
    return new, books


def shared_model_bytes(model: nn.Module, books: dict[str, Codebook], bits: int) -> int:
    """Real storage: packed indices + fp32 codebooks for shared weights, plus every other
    parameter and buffer (biases, BatchNorm) at its own element size.
    Taught in notebooks/10_edge_deployment.ipynb, "3. Weight sharing with k-means codebooks".
    """
    total = 0
    shared = {f"{name}.weight" for name in books}
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if name in shared:
            total += len(pack_indices(books[name[: -len(".weight")]].indices, bits))
            total += books[name[: -len(".weight")]].centroids.numel() * 4
        else:
            total += t.numel() * t.element_size()
    return total


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
    check_tensor(example, "example")
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
    space = [(w, d) for w in WIDTHS for d in DEPTHS]
    if not 1 <= n <= len(space):
        raise ValueError(f"n must be in 1..{len(space)}, got {n!r}.")
    return sorted(random.Random(seed).sample(space, n))


def train_candidate(
    width: int, depth: int, loaders: Loaders, *, epochs: int = 3, seed: int = 0
) -> tuple[nn.Module, float]:
    """Train cnn(width, depth) for a few epochs from a fixed seed; return (model, val acc).

    Taught in notebooks/10_edge_deployment.ipynb, "4. Hardware-aware search".
    """
    torch.manual_seed(seed)
    model = models.cnn(width=width, depth=depth)
    train.fit(model, loaders.train, epochs=epochs, lr=3e-3)
    return model, train.evaluate(model, loaders.val)["accuracy"]


# The Pareto front and the best-under-budget pick are labkit.bench.pareto_front and
# labkit.bench.best_under_budget (one implementation, shared with labkit.pipeline).
