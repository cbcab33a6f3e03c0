"""Pruning speed-ups on CPU, measured as ratios in one run (batch 32, 2 threads).

    python benchmarks/bench_prune.py

1. The course CNN (labkit.models.cnn(width=48)): dense vs 80 % unstructured mask (same dense
   kernels, zeros inside) vs 50 % of channels physically removed (prune.prune_channels).
2. Where unstructured sparsity pays: W @ X with W (1024, 1024) as a dense matrix vs CSR.
"""

from __future__ import annotations

import copy

import torch

from labkit import bench, env, models, prune

WIDTH, BATCH, THREADS = 48, 32, 2


def main() -> None:
    env.seed_everything(0)
    env.set_threads(THREADS)
    dense = models.cnn(WIDTH).eval()
    masked = copy.deepcopy(dense)
    prune.prune_model(masked, 0.8)
    small = prune.prune_channels(dense, 0.5)
    x = torch.randn(BATCH, 1, 8, 8)
    rows = prune.latency_table(
        {"dense": dense, "80 % unstructured mask": masked, "50 % channels removed": small},
        x,
        threads=THREADS,
    )
    macs = [bench.count_macs(m, x) for m in (dense, masked, small)]
    params = [bench.count_parameters(m) for m in (dense, masked, small)]
    print(f"## cnn(width={WIDTH}), batch {BATCH}, {THREADS} threads, CPU: {env.cpu_name()}\n")
    print("| model | params | MACs (M) | median latency (ms) | speed-up vs dense |")
    print("|---|---:|---:|---:|---:|")
    for row, p, m in zip(rows, params, macs, strict=True):
        print(
            f"| {row['model']} | {p:,} | {m / 1e6:.1f} | {row['median_ms']:.3f} | {row['speedup']:.2f}x |"
        )
    print(
        "\n(the masked model still stores and multiplies every zero: same MACs for the dense kernel)\n"
    )
    print("## W @ X, W 1024x1024 magnitude-pruned, X 1024x32: dense kernel vs CSR\n")
    print("| sparsity | dense (ms) | CSR (ms) | CSR speed-up |")
    print("|---:|---:|---:|---:|")
    for r in prune.sparse_matmul_latency(
        1024, 1024, BATCH, [0.0, 0.5, 0.8, 0.9, 0.95, 0.99], threads=THREADS
    ):
        print(
            f"| {r['sparsity']:.2f} | {r['dense_ms']:.3f} | {r['csr_ms']:.3f} | {r['speedup']:.2f}x |"
        )
    if torch.cuda.is_available():
        r = prune.semi_structured_latency()
        print(
            f"\n2:4 semi-structured fp16 linear on {torch.cuda.get_device_name()}: "
            f"dense {r['dense_ms']:.3f} ms, sparse {r['sparse_ms']:.3f} ms, {r['speedup']:.2f}x"
        )
    else:
        print("\nNo CUDA GPU here: skipping the 2:4 semi-structured measurement.")


if __name__ == "__main__":
    main()
