"""Operator fusion speed-ups, measured as ratios in one run.

    python benchmarks/bench_fusion.py [threads]

Each pair is timed with labkit.bench.compare: warm-up, median of repeats, the candidates
alternating round by round, a fixed number of torch threads (default 1); the speed-up is the
median of the per-round ratios, with its interquartile range and the verdict.
Rows: BN folded into convs vs conv->BN; three Q/K/V linears vs one fused linear; an
elementwise chain and a small CNN eager vs torch.compile (Inductor); ONNX Runtime graph
optimisation levels. Prints a markdown table.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from labkit import bench, env, fusion, models
from labkit import onnx as lk_onnx


def main(threads: int = 1) -> None:
    env.setup(seed=0, threads=2)
    rows: list[tuple[str, str, str, float, float, float, str]] = []

    def pair(what: str, a: str, fa, b: str, fb) -> None:
        c = bench.compare({a: fa, b: fb}, baseline=a, threads=threads)
        lo, hi = c.spread[b]
        iqr = f"{lo:.2f}-{hi:.2f}" + ("" if c.clear(b) else " (no clear difference)")
        rows.append((what, a, b, c.median_ms[a], c.median_ms[b], c.speedup[b], iqr))

    model = models.cnn(width=16, depth=3).eval()
    folded = fusion.fold_model(model)
    x = torch.randn(64, 1, 8, 8)
    pair(
        "fold BN (cnn w16 d3, batch 64)",
        "conv->BN->ReLU",
        lambda: model(x),
        "folded conv->ReLU",
        lambda: folded(x),
    )

    d, tokens = 512, 128
    q, k, v = (nn.Linear(d, d) for _ in range(3))
    qkv = fusion.fuse_qkv(q, k, v)
    h = torch.randn(tokens, d)
    pair(
        "QKV projection (128 x 512)",
        "3 linears",
        lambda: (q(h), k(h), v(h)),
        "1 fused linear",
        lambda: qkv(h),
    )

    big = torch.randn(1 << 21)
    for ops in ("gelu", "cheap"):
        chain, t_chain = fusion.compile_timed(
            lambda t, o=ops: fusion.elementwise_chain(t, 8, ops=o), big
        )
        pair(
            f"{ops} chain x8, 2M floats (compile {t_chain:.1f} s)",
            "eager",
            lambda o=ops: fusion.elementwise_chain(big, 8, ops=o),
            "torch.compile",
            lambda c=chain: c(big),
        )

    cm, t_model = fusion.compile_timed(folded, x)
    pair(
        f"folded cnn, batch 64 (compile {t_model:.1f} s)",
        "eager",
        lambda: folded(x),
        "torch.compile",
        lambda: cm(x),
    )

    with tempfile.TemporaryDirectory() as tmp:
        # no exporter optimisation, so ORT's levels have the BatchNormalization nodes to fuse
        path = lk_onnx.export_onnx(
            model, x, Path(tmp) / "cnn.onnx", dynamic_batch=False, exporter_optimize=False
        )
        levels = fusion.ort_levels(path, x, threads=threads)
    base = levels[0]
    for r in levels[1:]:
        lo, hi = r["iqr"]
        rows.append(
            (
                f"ORT {r['level']} ({base['nodes']} -> {r['nodes']} nodes)",
                "disable_all",
                r["level"],
                base["latency_ms"],
                r["latency_ms"],
                r["speedup"],
                f"{lo:.2f}-{hi:.2f}"
                + ("" if "no clear" not in r["verdict"] else " (no clear difference)"),
            )
        )

    print(f"threads: {threads}\n")
    print("| what | baseline | fused | baseline ms | fused ms | speed-up | IQR |")
    print("|---|---|---|---:|---:|---:|---|")
    for what, a, b, ta, tb, sp, iqr in rows:
        print(f"| {what} | {a} | {b} | {ta:.3f} | {tb:.3f} | {sp:.2f}x | {iqr} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
