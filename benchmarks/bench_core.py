"""Foundation benchmarks: is bench.latency honest, and what does batching buy on this CPU?

    python benchmarks/bench_core.py

Prints markdown tables of ratios measured in this one run (warm-up, median, 2 threads).
"""

from __future__ import annotations

import timeit

import torch

from labkit import bench, env, models


def latency_vs_timeit(n: int = 256, repeats: int = 200) -> float:
    """Mean seconds per call from bench.latency / from timeit, same repeats (ideal: 1.0)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    ours = bench.latency(torch.matmul, a, b, warmup=20, repeats=repeats).mean
    theirs = timeit.timeit(lambda: torch.matmul(a, b), number=repeats) / repeats
    return ours / theirs


def batching_gain(width: int = 32, big: int = 64) -> float:
    """Throughput at batch `big` / throughput at batch 1 for labkit.models.cnn(width)."""
    model = models.cnn(width).eval()
    with torch.no_grad():
        t1 = bench.latency(model, torch.randn(1, 1, 8, 8), repeats=30).median
        tb = bench.latency(model, torch.randn(big, 1, 8, 8), repeats=30).median
    return (big / tb) / (1 / t1)


def main() -> None:
    env.setup(seed=0, threads=2)
    print("## Foundation (00)\n")
    print("| measurement | ratio |\n|---|---|")
    print(
        f"| bench.latency mean / timeit mean, 256x256 matmul, 200 calls | {latency_vs_timeit():.3f} |"
    )
    print(f"| CNN(32) throughput, batch 64 / batch 1 | {batching_gain():.1f}x |")


if __name__ == "__main__":
    main()
