"""Attention memory and time: naive (N x N scores) vs tiled FlashAttention in PyTorch vs SDPA.

    python benchmarks/bench_attention.py

Peak extra CPU memory (labkit.bench.peak_memory, after a warm-up call) and time on one thread for
N = 512 ... 4096, d = 64, one head; the three functions of one N are timed in one interleaved
labkit.bench.compare against naive, so the ratios are per-round medians with their IQR.
"""

from __future__ import annotations

import torch.nn.functional as F

from labkit import attention, env, probes

NS = (512, 1024, 2048, 4096)


def main() -> None:
    env.setup(seed=0, threads=2)
    probes.exact_cpu_memory_accounting()
    fns = {
        "naive": attention.naive_attention,
        "tiled": lambda q, k, v: attention.tiled_attention(q, k, v, block_size=256),
        "sdpa": F.scaled_dot_product_attention,
    }
    rows = attention.memory_and_time(fns, NS, d=64, rounds=3, threads=1)
    by = {(r["N"], r["method"]): r for r in rows}
    print(
        "| N | naive MiB | tiled MiB | SDPA MiB | naive/tiled memory | naive ms | tiled ms | SDPA ms "
        "| tiled vs naive | SDPA vs naive |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for n in NS:
        a, t, s = by[(n, "naive")], by[(n, "tiled")], by[(n, "sdpa")]
        mem_ratio = a["peak_MiB"] / t["peak_MiB"] if t["peak_MiB"] > 0 else float("inf")
        print(
            f"| {n} | {a['peak_MiB']:.1f} | {t['peak_MiB']:.2f} | {s['peak_MiB']:.2f} | {mem_ratio:.0f}x "
            f"| {a['time_ms']:.1f} | {t['time_ms']:.1f} | {s['time_ms']:.1f} "
            f"| {t['verdict']} | {s['verdict']} |"
        )
    io = attention.io_complexity(4096, 64, attention.SRAM_BYTES_PER_SM["A100"])
    print(
        f"\nIO complexity N=4096, d=64, A100 SRAM: standard {io['standard']:.3g}, "
        f"flash {io['flash']:.3g} element accesses ({io['ratio']:.0f}x fewer)"
    )


if __name__ == "__main__":
    main()
