"""Mixed precision on this CPU: is bf16 autocast faster than fp32? Measured, not assumed.

    python benchmarks/bench_precision.py

Prints a markdown table of speed-ups from bench.compare (interleaved rounds, median ratio
fp32/bf16 with its interquartile range, 2 threads) and a verdict read against the CPU flags.
A CPU with avx512_bf16 / AMX has bf16 dot-product instructions that oneDNN uses for matmuls;
without them bf16 is emulated (convert to fp32, compute, convert back) and usually slower.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from labkit import bench, env, models, precision


def matmul_pair(n: int = 1024) -> tuple[Callable[[], object], Callable[[], object]]:
    """fp32 vs bf16 tensors (no autocast): a @ b with n x n matrices."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a.bfloat16(), b.bfloat16()
    return (lambda: a @ b), (lambda: a16 @ b16)


def train_step_pair(
    width: int = 1024, batch: int = 256
) -> tuple[Callable[[], object], Callable[[], object]]:
    """One forward + backward of an MLP: fp32 vs torch.autocast("cpu", bfloat16)."""
    model = models.mlp(width=width, depth=3)
    x, y = torch.randn(batch, 64), torch.randint(0, 10, (batch,))

    def fp32() -> None:  # bench.compare times under no_grad: a training step re-enables it
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            nn.functional.cross_entropy(model(x), y).backward()

    def bf16() -> None:
        model.zero_grad(set_to_none=True)
        with torch.enable_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()

    return fp32, bf16


def inference_pair(
    width: int = 32, batch: int = 256
) -> tuple[Callable[[], object], Callable[[], object]]:
    """CNN inference on digits-sized images: fp32 vs autocast bf16."""
    model = models.cnn(width=width).eval()
    x = torch.randn(batch, 1, 8, 8)

    def fp32() -> None:
        with torch.no_grad():
            model(x)

    def bf16() -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)

    return fp32, bf16


def measure(
    pair: tuple[Callable[[], object], Callable[[], object]], rounds: int = 9, repeats: int = 3
) -> bench.Comparison:
    """fp32 vs bf16 with bench.compare: interleaved rounds, the ratio's median and IQR."""
    fp32, bf16 = pair
    return bench.compare({"fp32": fp32, "bf16": bf16}, rounds=rounds, repeats=repeats)


CASES: dict[str, Callable[[], tuple[Callable[[], object], Callable[[], object]]]] = {
    "matmul 1024x1024, bf16 tensors": matmul_pair,
    "MLP(1024 x 3) train step, batch 256, autocast": train_step_pair,
    "CNN(32) inference, batch 256, autocast": inference_pair,
}


def main() -> None:
    env.setup(seed=0, threads=2)
    support = precision.bf16_support()
    print(f"## Mixed precision (01): {env.cpu_name()}")
    print(
        f"avx512_bf16={support['avx512_bf16']}, amx_tile={support['amx_tile']}, torch kernels "
        f"{support['torch_kernels']}, oneDNN bf16 usable={support['onednn_bf16']}, 2 threads\n"
    )
    print("| workload | fp32 (ms) | bf16 (ms) | speed-up fp32/bf16 | IQR | verdict |")
    print("|---|---|---|---|---|---|")
    results = {}
    for name, make in CASES.items():
        c = measure(make())
        lo, hi = c.spread["bf16"]
        results[name] = (c.speedup["bf16"], c.clear("bf16"))
        print(
            f"| {name} | {c.median_ms['fp32']:.2f} | {c.median_ms['bf16']:.2f} | "
            f"{c.speedup['bf16']:.2f}x | {lo:.2f}-{hi:.2f} | {c.verdict('bf16')} |"
        )
    print("\n" + precision.bf16_verdict(support, results))


if __name__ == "__main__":
    main()
