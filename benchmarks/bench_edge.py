"""Notebook 10's ratios measured in one run: single-thread latency and size of the course CNN
after low-rank factorisation, narrowing and INT8 export; where the bytes of the FP32 and INT8
files go (edge.onnx_size_breakdown); k-means storage ratios.

    python benchmarks/bench_edge.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from labkit import bench, data, edge, env, models, onnx


def main() -> None:
    env.seed_everything(0)
    x = data.digits()["test"].x
    x1 = x[:1]
    ref = models.cnn(width=32, depth=3).eval()
    variants = {
        "reference cnn(32, 3)": ref,
        "low rank 1/2": edge.factorize_model(ref, 0.5).eval(),
        "low rank 1/4": edge.factorize_model(ref, 0.25).eval(),
        "narrow cnn(16, 3)": models.cnn(width=16, depth=3).eval(),
        "narrow cnn(8, 3)": models.cnn(width=8, depth=3).eval(),
    }

    def forward(m: torch.nn.Module):
        def fn() -> None:
            with torch.no_grad():
                m(x1)

        return fn

    cmp = bench.compare(
        {n: forward(m) for n, m in variants.items()},
        baseline="reference cnn(32, 3)",
        rounds=21,
        repeats=20,
        threads=1,
    )
    print("| model (eager, 1 thread, batch 1) | params | MACs | latency ms | verdict |")
    print("|---|---|---|---|---|")
    for name, m in variants.items():
        print(
            f"| {name} | {bench.count_parameters(m)} | {bench.count_macs(m, x1)} "
            f"| {cmp.median_ms[name]:.3f} | {cmp.verdict(name) if name != cmp.baseline else 'baseline'} |"
        )

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        f_ref = onnx.export_onnx(ref, x[:2], tmp / "ref.onnx")
        f_small = onnx.export_onnx(variants["narrow cnn(16, 3)"], x[:2], tmp / "small.onnx")
        q_small = onnx.quantize_static_int8(
            f_small, tmp / "small_int8.onnx", data.digits()["train"].x[:256]
        )
        r_ref = onnx.ort_runner(onnx.ort_session(f_ref, threads=1))
        r_q = onnx.ort_runner(onnx.ort_session(q_small, threads=1))
        xb = x[:32]
        ort = bench.compare(
            {"reference FP32": lambda: r_ref(xb), "cnn(16, 3) INT8 QDQ": lambda: r_q(xb)},
            rounds=21,
            repeats=20,
            threads=1,
        )
        print()
        print("| ORT, 1 thread, batch 32 | file bytes | latency ms |")
        print("|---|---|---|")
        print(
            f"| reference FP32 | {onnx.file_size(f_ref)} | {ort.median_ms['reference FP32']:.4f} |"
        )
        print(
            f"| cnn(16, 3) INT8 QDQ | {onnx.file_size(q_small)} | {ort.median_ms['cnn(16, 3) INT8 QDQ']:.4f} |"
        )
        print(
            f"| ratio | {onnx.file_size(f_ref) / onnx.file_size(q_small):.2f}x smaller "
            f"| {ort.verdict('cnn(16, 3) INT8 QDQ')} |"
        )

    print()
    print("| k-means bits | shared model bytes | fp32 bytes | ratio |")
    print("|---|---|---|---|")
    fp32 = bench.model_size_bytes(ref)
    for bits in (2, 4, 8):
        shared, books = edge.share_model(ref, bits, iters=10)
        b = edge.shared_model_bytes(shared, books, bits)
        print(f"| {bits} | {b} | {fp32} | {fp32 / b:.2f}x |")
    torch.set_num_threads(env.DEFAULT_THREADS)


if __name__ == "__main__":
    main()
