"""Notebook 09's speed-ups as ratios measured in one interleaved run (labkit.bench.compare): PyTorch eager vs ONNX Runtime FP32
vs ORT INT8 (static QDQ for the CNN, dynamic for the transformer), batch 1 and 32, 1 thread.

    python benchmarks/bench_deploy.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from labkit import bench, data, deploy, env, models, onnx


def run(tmp: Path) -> list[tuple[str, int, float, float, float, int, int, str]]:
    env.seed_everything(0)
    x = data.digits()["test"].x
    calib = data.digits()["train"].x[:256]
    cnn = models.cnn(width=48, depth=3).eval()
    tr = deploy.digit_transformer().eval()
    rows = []
    for name, model in (("cnn w48", cnn), ("transformer", tr)):
        fp32 = onnx.export_onnx(model, x[:2], tmp / f"{name}.onnx")
        if name == "transformer":
            int8 = onnx.quantize_dynamic_int8(fp32, tmp / f"{name}_int8.onnx")
        else:
            int8 = onnx.quantize_static_int8(fp32, tmp / f"{name}_int8.onnx", calib)
        r32 = onnx.ort_runner(onnx.ort_session(fp32, threads=1))
        r8 = onnx.ort_runner(onnx.ort_session(int8, threads=1))
        for batch in (1, 32):
            xb = x[:batch]

            def eager(xb=xb, model=model):
                with torch.no_grad():
                    return model(xb)

            cmp = bench.compare(
                {
                    "eager": eager,
                    "ort32": lambda xb=xb, r=r32: r(xb),
                    "ort8": lambda xb=xb, r=r8: r(xb),
                },
                baseline="ort32",
                rounds=21,
                repeats=20,
                threads=1,
            )
            rows.append(
                (
                    name,
                    batch,
                    cmp.median_ms["eager"],
                    cmp.median_ms["ort32"],
                    cmp.median_ms["ort8"],
                    onnx.file_size(fp32),
                    onnx.file_size(int8),
                    cmp.verdict("ort8"),
                )
            )
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(Path(tmp))
    print(f"CPU: {env.cpu_name()}; {env.int8_kernel_note()}")
    print(
        "| model | batch | eager ms | ORT fp32 ms | ORT int8 ms | int8 vs fp32 (interleaved) | size ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, batch, te, t32, t8, s32, s8, verdict in rows:
        print(
            f"| {name} | {batch} | {te:.3f} | {t32:.3f} | {t8:.3f} | {verdict} | {s32 / s8:.2f}x |"
        )


if __name__ == "__main__":
    main()
