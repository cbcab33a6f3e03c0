"""What do labkit's real guards cost where they run most often? Each hot function, guarded and
with its `_check_...` swapped for a no-op (the same code object, other globals), timed in one run.

    python benchmarks/bench_guards.py

The functions are the inner steps the issue names (issue 18: tile updates, decode steps) and the
per-batch steps of QAT and distillation, at the sizes the notebooks use. The table reports the
guarded time over the unguarded one: the median of per-round ratios and its interquartile range
(labkit.bench.compare); 1.00x means the guard costs nothing measurable.

Recorded on a 2-core AMD EPYC (AVX-512), torch 2.14.1, 2 threads:
| hot function | guarded / no guard (median, IQR) | no guard, µs per call |
|---|---|---|
| attention.tile_update, decode tile (1, 1, 16) | 1.08x (1.08-1.08) | 32.8 |
| attention.tile_update, 64x64 tile, d = 32 | 1.05x (1.04-1.05) | 69.8 |
| generate.kv_attention_step, cache of 64 | 1.11x (1.11-1.12) | 24.9 |
| generate.sample_next, greedy, V = 65 | 0.99x (0.98-0.99) | 4.7 |
| distill.distillation_loss, batch 64 | 1.19x (1.19-1.20) | 61.6 |
| qat.weight_qparams, 128x64 | 1.14x (1.13-1.14) | 29.3 |
| qat.lsq_fake_quantize, 128x64 | 1.04x (1.04-1.04) | 36.0 |
The distillation loss's guard (shapes, label range, NaN, T, alpha) is about 11 µs, the largest
here: about 2 % of one whole training step of notebook 03's small student (MLP of width 32,
batch 64, Adam: 580 µs per step, timed the same day with timeit).
"""

from __future__ import annotations

import types
from collections.abc import Callable

import torch

from labkit import attention, distill, generate, qat
from labkit.core import bench, env


def unguarded(fn: Callable, check: str) -> Callable:
    """``fn`` with the global ``check`` (its one guard) replaced by a no-op."""
    assert check in fn.__code__.co_names, f"{fn.__name__} does not call {check}"
    scope = {**fn.__globals__, check: lambda *a, **k: None}
    return types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)


def cases() -> list[tuple[str, Callable, str, tuple]]:
    """(label, function, its guard's name, arguments) at the notebooks' sizes."""
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    tile = (torch.zeros(1, 1, 16), torch.full((1, 1), -torch.inf), torch.zeros(1, 1))
    return [
        ("attention.tile_update, decode tile (1, 1, 16)", attention.tile_update, "_check_tile",
         (*tile, r(1, 1, 16), r(1, 16, 16))),
        ("attention.tile_update, 64x64 tile, d = 32", attention.tile_update, "_check_tile",
         (torch.zeros(4, 64, 32), torch.full((4, 64), -torch.inf), torch.zeros(4, 64),
          r(4, 64, 64), r(4, 64, 32))),
        ("generate.kv_attention_step, cache of 64", generate.kv_attention_step, "_check_kv_step",
         (r(1, 4, 1, 16), r(1, 4, 1, 16), r(1, 4, 1, 16), r(1, 4, 64, 16), r(1, 4, 64, 16))),
        ("generate.sample_next, greedy, V = 65", generate.sample_next, "_check_generator",
         (r(1, 65),)),
        ("distill.distillation_loss, batch 64", distill.distillation_loss,
         "_check_distillation_loss", (r(64, 10), r(64, 10), torch.arange(64) % 10, 4.0, 0.7)),
        ("qat.weight_qparams, 128x64", qat.weight_qparams, "_check_weight_qparams",
         (r(128, 64), 4)),
        ("qat.lsq_fake_quantize, 128x64", qat.lsq_fake_quantize, "_check_lsq_fake_quantize",
         (r(128, 64), torch.full((128, 1), 0.05), 0.0, -8, 7)),
    ]  # fmt: skip


def main() -> None:
    env.setup(seed=0, threads=2)
    print("| hot function | guarded / no guard (median, IQR) | no guard, µs per call |")
    print("|---|---|---|")
    for label, fn, check, args in cases():
        bare = unguarded(fn, check)
        res = bench.compare(
            {"no guard": lambda b=bare, a=args: b(*a), "guarded": lambda f=fn, a=args: f(*a)},
            baseline="no guard", rounds=15, repeats=200,
        )  # fmt: skip
        lo, hi = res.spread["guarded"]  # speed-ups t(no guard) / t(guarded): invert for the cost
        cost = f"{1 / res.speedup['guarded']:.2f}x ({1 / hi:.2f}-{1 / lo:.2f})"
        print(f"| {label} | {cost} | {res.median_ms['no guard'] * 1e3:.1f} |")


if __name__ == "__main__":
    main()
