"""Attention memory and time: naive (N x N scores) vs tiled FlashAttention in PyTorch vs SDPA,
the memory of a training step, and the fused (torch.compile) forward against naive and SDPA.

    python benchmarks/bench_attention.py            # everything (a few minutes on 2 cores)
    python benchmarks/bench_attention.py --fused    # only the torch.compile table

1. Peak extra CPU memory (labkit.bench.peak_memory, after a warm-up call) and time on one thread
   for N = 512 ... 4096, d = 64, one head; the three functions of one N are timed in one
   interleaved labkit.bench.compare against naive (ratios: per-round medians with their IQR).
2. One forward + backward at N = 4096: labkit.probes' peak tensor bytes and saved-tensor bytes,
   naive autograd vs attention.flash_attention (exact counts, the same on every CPU).
3. attention.compiled_flash_forward at N = 4096 for several key-block sizes: compile time, then
   compiled vs naive and compiled vs SDPA, each in its own interleaved comparison (one thread).
"""

from __future__ import annotations

import sys

import torch.nn.functional as F

from labkit import attention, env, probes

NS = (512, 1024, 2048, 4096)


def memory_and_time() -> None:
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


def train_step() -> None:
    with env.threads(1):
        rows = attention.train_step_memory(
            {
                "naive autograd": attention.naive_attention,
                "flash_attention (block 128)": attention.flash_attention,
                "flash_attention (block 256)": lambda q, k, v: attention.flash_attention(
                    q, k, v, block_size=256
                ),
            },
            n=4096,
            d=64,
        )
    print("\n| forward + backward, N = 4096, d = 64 | peak MiB | saved MiB | naive / this (peak) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        ratio = rows[0]["peak_MiB"] / r["peak_MiB"]
        print(f"| {r['method']} | {r['peak_MiB']:.2f} | {r['saved_MiB']:.2f} | {ratio:.1f}x |")


def fused(block_sizes: tuple[int, ...] = (256, 512, 1024)) -> None:
    print(
        "\n| compiled forward, N = 4096, d = 64, 1 thread | compile s | max err | "
        "vs naive | vs SDPA |"
    )
    print("|---|---:|---:|---|---|")
    for b in block_sizes:
        with env.threads(1):
            r = attention.time_fused_forward(n=4096, d=64, block_size=b, rounds=9)
        print(
            f"| key blocks of {b} | {r['compile_s']:.1f} | {r['max_err']:.1e} "
            f"| {r['vs_naive'].verdict('compiled')} | {r['vs_sdpa'].verdict('compiled')} |"
        )


def main() -> None:
    env.setup(seed=0, threads=2)
    probes.exact_cpu_memory_accounting()
    print(f"CPU: {env.cpu_name()}, torch threads for timing: 1\n")
    if "--fused" not in sys.argv:
        memory_and_time()
        train_step()
    fused()


if __name__ == "__main__":
    main()
