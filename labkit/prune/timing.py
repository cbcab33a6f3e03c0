"""Notebook 04, parts 9-10 timed: dense vs sparse kernels, and the channel-pruning speed-up.

How the lesson times things, not what it teaches. Every comparison is one interleaved
``labkit.bench.compare`` run (taught in notebook 00); these functions only build the variants:
a model's inference call, W @ X dense vs CSR at several sparsities, and (CUDA only) a dense
fp16 matmul vs the same weight stored 2:4 semi-structured for the sparse tensor cores.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from labkit.core import bench
from labkit.core.errors import (
    MissingDependency,
    check_fraction,
    check_int,
    check_model,
    require_cuda,
)
from labkit.prune.formats import nm_mask
from labkit.prune.unstructured import magnitude_mask

MAX_MATMUL_BYTES = 2 * 2**30  # refuse a W or X above 2 GiB before allocating it
MAX_ROUNDS = 1000  # rounds and repeats of one comparison: more runs for many minutes


def inference_fn(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> model(x)`` in eval mode under torch.inference_mode (what we time).

    Taught in notebooks/04_pruning.ipynb, "10. Structured pruning: remove whole channels".
    """
    check_model(model)
    model.eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return run


def sparse_matmul_latency(
    rows: int,
    cols: int,
    batch: int,
    sparsities: Sequence[float],
    *,
    threads: int = 2,
    rounds: int = 9,
    repeats: int = 5,
    seed: int = 0,
) -> tuple[list[dict[str, float | str]], bench.Comparison]:
    """Time W @ X, W (rows, cols) magnitude-pruned, X (cols, batch): ONE dense baseline
    against torch's CSR kernel at each sparsity, in one interleaved ``bench.compare`` run.

    Dense cost ~ rows*cols*batch whatever the zeros (the dense kernel multiplies them
    too), so the dense matmul is timed once per shape, on the unpruned W. CSR cost ~
    nnz*batch + an overhead per non-zero (index load, irregular access), so CSR wins only
    at high sparsity. Returns (rows {"sparsity", "csr_ms", "speedup", "iqr_low",
    "iqr_high", "verdict"}, the Comparison with "dense" as baseline).
    Taught in notebooks/04_pruning.ipynb, "Where unstructured sparsity does pay: sparse kernels at high sparsity".
    """
    _check_matmul(rows, cols, batch, 4, rounds, repeats, threads, sparsities, seed)
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=gen)  # (rows, cols)
    x = torch.randn(cols, batch, generator=gen)  # (cols, batch)
    levels = [float(s) for s in sparsities]
    fns: dict[str, Callable[[], object]] = {"dense": functools.partial(torch.mm, w, x)}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        for s in levels:
            fns[f"csr {s:g}"] = _csr_matmul(w * magnitude_mask(w, s), x)
        cmp = bench.compare(fns, baseline="dense", rounds=rounds, repeats=repeats, threads=threads)
    return [_row(cmp, s) for s in levels], cmp


def semi_structured_latency(
    rows: int = 4096, cols: int = 4096, batch: int = 4096, rounds: int = 10, repeats: int = 5
) -> dict[str, float | str]:
    """CUDA only: y = x @ W.T in fp16 with W dense vs W stored 2:4 semi-structured
    (torch.sparse.to_sparse_semi_structured, sparse tensor cores, compute capability >= 8.0).

    One interleaved ``bench.compare`` run. Returns median ms of both, the speed-up, the
    verdict sentence and the max |difference| of the outputs.
    Taught in notebooks/04_pruning.ipynb, "Semi-structured 2:4 sparsity (GPUs)".
    """
    _check_matmul(rows, cols, batch, 2, rounds, repeats)
    from torch.sparse import to_sparse_semi_structured

    dev = _sparse_tensor_core_gpu()
    gen = torch.Generator(device=dev).manual_seed(0)
    w = torch.randn(rows, cols, device=dev, dtype=torch.float16, generator=gen)  # (rows, cols)
    w = w * nm_mask(w, 2, 4)
    x = torch.randn(batch, cols, device=dev, dtype=torch.float16, generator=gen)  # (batch, cols)
    w_sparse = to_sparse_semi_structured(w)

    def synced(weight: torch.Tensor) -> Callable[[], object]:
        def run() -> object:  # GPU work is asynchronous: wait for it inside the timed call
            out = F.linear(x, weight)  # (batch, rows)
            torch.cuda.synchronize()
            return out

        return run

    cmp = bench.compare(
        {"dense": synced(w), "2:4 sparse": synced(w_sparse)}, rounds=rounds, repeats=repeats
    )
    diff = (F.linear(x, w_sparse) - F.linear(x, w)).abs().max().item()
    return {
        "dense_ms": cmp.median_ms["dense"],
        "sparse_ms": cmp.median_ms["2:4 sparse"],
        "speedup": cmp.speedup["2:4 sparse"],
        "verdict": cmp.verdict("2:4 sparse"),
        "max_abs_diff": diff,
    }


def _csr_matmul(wm: torch.Tensor, x: torch.Tensor) -> Callable[[], object]:
    """``csr(wm) @ x`` as a call to time, after checking it equals the dense product."""
    csr = wm.to_sparse_csr()
    if not torch.allclose(torch.mm(csr, x), wm @ x, atol=1e-3, rtol=1e-4):
        raise RuntimeError("CSR and dense products differ; the sparse kernel is broken here.")
    return functools.partial(torch.mm, csr, x)


def _row(cmp: bench.Comparison, s: float) -> dict[str, float | str]:
    """One table row: CSR at sparsity s against the dense baseline, with its verdict."""
    name = f"csr {s:g}"
    lo, hi = cmp.spread[name]
    faster = cmp.speedup[name] > 1
    verdict = ("CSR faster" if faster else "dense faster") if cmp.clear(name) else None
    return {
        "sparsity": s,
        "csr_ms": cmp.median_ms[name],
        "speedup": cmp.speedup[name],
        "iqr_low": lo,
        "iqr_high": hi,
        "verdict": verdict or "no clear difference",
    }


def _sparse_tensor_core_gpu() -> torch.device:
    """The CUDA device if it has 2:4 sparse tensor cores, else MissingDependency."""
    dev = require_cuda("2:4 semi-structured sparse matmul")
    if torch.cuda.get_device_capability(dev) < (8, 0):
        raise MissingDependency(
            "2:4 sparse tensor cores need an Ampere or newer GPU (compute capability >= 8.0)."
        )
    return dev


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_matmul(
    rows: object,
    cols: object,
    batch: object,
    item_bytes: int,
    rounds: object,
    repeats: object,
    threads: object = 1,
    sparsities: object = (0.5,),
    seed: object = 0,
) -> None:
    sizes = [check_int(v, n, low=1) for n, v in (("rows", rows), ("cols", cols), ("batch", batch))]
    r, c, b = sizes
    biggest = max(r * c, c * b, r * b) * item_bytes
    if biggest > MAX_MATMUL_BYTES:
        raise ValueError(
            f"rows={r}, cols={c}, batch={b} needs a {biggest / 2**30:.1f} GiB tensor "
            f"(limit {MAX_MATMUL_BYTES / 2**30:.0f} GiB); use sizes around 1024."
        )
    if item_bytes == 2 and c % 4:
        raise ValueError(f"cols={c} must be a multiple of 4 for the 2:4 pattern.")
    check_int(rounds, "rounds", low=3, high=MAX_ROUNDS)
    check_int(repeats, "repeats", low=1, high=MAX_ROUNDS)
    check_int(threads, "threads", low=1, high=256)
    if (
        isinstance(sparsities, (str, bytes))
        or not isinstance(sparsities, Sequence)
        or not sparsities
    ):
        raise ValueError("sparsities must name at least one sparsity, e.g. [0.5, 0.9].")
    for i, s in enumerate(sparsities):
        check_fraction(s, f"sparsities[{i}]: sparsity")
    check_int(seed, "seed")
