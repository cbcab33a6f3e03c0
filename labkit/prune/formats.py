"""Notebook 04, part 9: where zeros do pay, as sparse storage formats and the 2:4 pattern.

A mask alone (zeros in a dense tensor) saves neither time nor memory: the dense kernel
multiplies the zeros too. The zeros pay once they are stored in a sparse format (CSR, or a
bitmask beside the non-zero values) or run on sparse hardware: NVIDIA's sparse tensor cores
run the semi-structured N:M = 2:4 pattern (two non-zeros in every four weights).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from labkit.core.errors import check_int, check_nonempty, check_tensor
from labkit.prune.unstructured import prunable_weights

MAX_ELEMENT_BYTES = 16  # no number format is wider (complex128)


def storage_bytes(
    weight: torch.Tensor, value_bytes: int = 4, index_bytes: int = 4
) -> dict[str, int]:
    """Bytes to store ``weight`` densely, as CSR and as a bitmask (viewed as (rows, cols)).

    rows = weight.shape[0], cols = numel / rows, nnz = number of non-zeros:
      dense   = numel * value_bytes
      csr     = nnz * (value_bytes + index_bytes) + (rows + 1) * index_bytes
      bitmask = nnz * value_bytes + ceil(numel / 8)
    Used by model_storage_bytes (this module).
    """
    _check_storage(weight, value_bytes, index_bytes)
    rows = weight.shape[0] if weight.ndim else 1
    nnz = int((weight != 0).sum())
    return {
        "dense": weight.numel() * value_bytes,
        "csr": nnz * (value_bytes + index_bytes) + (rows + 1) * index_bytes,  # values, cols, rows
        "bitmask": nnz * value_bytes + math.ceil(weight.numel() / 8),  # values + 1 bit per weight
    }


def model_storage_bytes(
    model: nn.Module, value_bytes: int = 4, index_bytes: int = 4
) -> dict[str, int]:
    """``storage_bytes`` summed over every Conv2d/Linear weight of ``model``.

    Taught in notebooks/04_pruning.ipynb, "Where unstructured sparsity does pay: storage".
    """
    sizes = [storage_bytes(w, value_bytes, index_bytes) for w in prunable_weights(model).values()]
    return {k: sum(s[k] for s in sizes) for k in ("dense", "csr", "bitmask")}


def nm_mask(weight: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Semi-structured N:M mask: in every group of m consecutive weights along the input
    dimension keep the n largest |w| (2:4 is what NVIDIA sparse tensor cores run).

    weight: (out, in, ...) with in*prod(...) divisible by m. Returns a bool mask, same shape.
    Taught in notebooks/04_pruning.ipynb, "Semi-structured 2:4 sparsity (GPUs)".
    """
    _check_nm(weight, n, m)
    groups = weight.detach().reshape(-1, m).abs()  # (out * in / m, m): rows never share a group
    keep = torch.topk(groups, k=n, dim=1).indices  # (groups, n)
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, keep, True)
    return mask.reshape(weight.shape)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_storage(weight: object, value_bytes: object, index_bytes: object) -> None:
    check_nonempty(check_tensor(weight, "weight", floating=False), "weight")
    check_int(value_bytes, "value_bytes (bytes per value)", low=1, high=MAX_ELEMENT_BYTES)
    check_int(index_bytes, "index_bytes (bytes per index)", low=1, high=MAX_ELEMENT_BYTES)


def _check_nm(weight: object, n: object, m: object) -> None:
    w = check_tensor(weight, "weight", ndim=(2, 3, 4))
    check_nonempty(w, "weight")
    check_int(m, "m (group size)", low=2, high=max(2, w[0].numel()))
    check_int(n, "n (weights kept per group, need 0 < n < m)", low=1, high=m - 1)  # type: ignore[operator]
    if w[0].numel() % m:  # type: ignore[operator]
        raise ValueError(f"each row has {w[0].numel()} weights, not divisible by m={m}.")
