"""Pruning speed-ups on CPU, measured as ratios in one run (batch 32, 2 threads).

    python benchmarks/bench_prune.py

1. The course CNN (labkit.models.cnn, width 48 as in the notebook, then width 16): dense vs
   80 % unstructured mask (same dense kernels, zeros inside) vs 50 % of channels physically
   removed (prune.prune_channels), one interleaved labkit.bench.compare run per width: the
   smaller the model, the larger the share of per-call costs that do not shrink.
2. Where unstructured sparsity pays: W @ X with W (1024, 1024), one dense baseline vs CSR
   at each sparsity (prune.sparse_matmul_latency, also one bench.compare run).
"""

from __future__ import annotations

import copy
import functools

import torch

from labkit import bench, env, models, prune

WIDTHS, BATCH, THREADS = (48, 16), 32, 2  # 48: the notebook's; 16: the course default


def model_table(width: int) -> None:
    """Dense vs 80 % mask vs 50 % channels removed, for cnn(width), one bench.compare run."""
    dense = models.cnn(width).eval()
    masked = copy.deepcopy(dense)
    prune.prune_model(masked, 0.8)
    small = prune.prune_channels(dense, 0.5)
    x = torch.randn(BATCH, 1, 8, 8)
    variants = {"dense": dense, "80 % unstructured mask": masked, "50 % channels removed": small}
    cmp = bench.compare(
        {n: functools.partial(prune.inference_fn(m), x) for n, m in variants.items()},
        baseline="dense",
        threads=THREADS,
    )
    print(f"## cnn(width={width}), batch {BATCH}, {THREADS} threads, CPU: {env.cpu_name()}\n")
    print("| model | params | MACs (M) | median latency (ms) | speed-up vs dense (IQR) |")
    print("|---|---:|---:|---:|---:|")
    for name, m in variants.items():
        lo, hi = cmp.spread[name]
        print(
            f"| {name} | {bench.count_parameters(m):,} | {bench.count_macs(m, x) / 1e6:.1f} | "
            f"{cmp.median_ms[name]:.3f} | {cmp.speedup[name]:.2f}x ({lo:.2f}-{hi:.2f}) |"
        )
    for name in list(variants)[1:]:
        print(f"\n{cmp.verdict(name)}")
    macs_cut = bench.count_macs(dense, x) / bench.count_macs(small, x)
    print(
        f"\nchannels removed: MACs cut {macs_cut:.1f}x, latency cut "
        f"{cmp.speedup['50 % channels removed']:.2f}x (a gap is likely per-call costs that do not shrink)"
    )
    print(
        "\n(the masked model still stores and multiplies every zero: same MACs for the dense kernel)\n"
    )


def main() -> None:
    env.seed_everything(0)
    env.set_threads(THREADS)
    for width in WIDTHS:
        model_table(width)
    print("## W @ X, W 1024x1024 magnitude-pruned, X 1024x32: one dense baseline vs CSR\n")
    rows, mm = prune.sparse_matmul_latency(
        1024, 1024, BATCH, [0.0, 0.5, 0.8, 0.9, 0.95, 0.99], threads=THREADS
    )
    print(f"dense: {mm.median_ms['dense']:.3f} ms (timed once, the zeros cost the same)\n")
    print("| sparsity | CSR (ms) | CSR speed-up (IQR) | verdict |")
    print("|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['sparsity']:.2f} | {r['csr_ms']:.3f} | {r['speedup']:.2f}x "
            f"({r['iqr_low']:.2f}-{r['iqr_high']:.2f}) | {r['verdict']} |"
        )
    if torch.cuda.is_available():
        r = prune.semi_structured_latency()
        print(
            f"\n2:4 semi-structured fp16 linear on {torch.cuda.get_device_name()}: {r['verdict']}"
        )
    else:
        print("\nNo CUDA GPU here: skipping the 2:4 semi-structured measurement.")


if __name__ == "__main__":
    main()
