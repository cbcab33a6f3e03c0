"""Notebook 09's speed-ups as ratios measured in one interleaved run (labkit.bench.compare): PyTorch eager vs ONNX Runtime FP32
vs ORT INT8 (static QDQ for the CNN, dynamic for the transformer), batch 1 and 32, 1 thread.

For the CNN it also times the same INT8 file with its QDQ pairs left in float (ORT's "basic"
level: INT8 in name only), the broken path notebook 09's INT8 speed-up check must reject, and
prints whether each speed-up grew or shrank from batch 1 to 32 (deploy.speedup_trend).

    python benchmarks/bench_deploy.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from labkit import bench, data, deploy, env, models, onnx


def run(tmp: Path) -> tuple[list[tuple], list[str]]:
    env.seed_everything(0)
    x = data.digits()["test"].x
    calib = data.digits()["train"].x[:256]
    cnn = models.cnn(width=48, depth=3).eval()
    tr = deploy.digit_transformer().eval()
    rows, trends = [], []
    for name, model in (("cnn w48", cnn), ("transformer", tr)):
        fp32 = onnx.export_onnx(model, x[:2], tmp / f"{name}.onnx")
        if name == "transformer":
            int8 = onnx.quantize_dynamic_int8(fp32, tmp / f"{name}_int8.onnx")
        else:
            int8 = onnx.quantize_static_int8(fp32, tmp / f"{name}_int8.onnx", calib)
        r32 = onnx.ort_runner(onnx.ort_session(fp32, threads=1))
        r8 = onnx.ort_runner(onnx.ort_session(int8, threads=1))
        r8_float = onnx.ort_runner(onnx.ort_session(int8, threads=1, opt_level="basic"))
        by_batch = {}
        for batch in (1, 32):
            xb = x[:batch]

            def eager(xb=xb, model=model):
                with torch.no_grad():
                    return model(xb)

            fns = {
                "eager": eager,
                "ort32": lambda xb=xb, r=r32: r(xb),
                "ort8": lambda xb=xb, r=r8: r(xb),
            }
            if name != "transformer":  # static QDQ: the same file, not fused into int8 kernels
                fns["ort8 QDQ in float"] = lambda xb=xb, r=r8_float: r(xb)
            cmp = bench.compare(fns, baseline="ort32", rounds=21, repeats=20, threads=1)
            by_batch[f"batch {batch}"] = cmp
            for variant in [v for v in fns if v != "ort32"]:
                rows.append(
                    (
                        name,
                        batch,
                        variant,
                        cmp.median_ms["ort32"],
                        cmp.median_ms[variant],
                        onnx.file_size(fp32),
                        onnx.file_size(int8),
                        cmp.verdict(variant),
                    )
                )
        trends.append(f"{name}: " + deploy.speedup_trend(by_batch, "ort8"))
    return rows, trends


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows, trends = run(Path(tmp))
    print(f"CPU: {env.cpu_name()}; {env.int8_kernel_note()}")
    print(
        "| model | batch | variant | ORT fp32 ms | variant ms | vs ORT fp32 (interleaved) | size ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, batch, variant, t32, tv, s32, s8, verdict in rows:
        print(
            f"| {name} | {batch} | {variant} | {t32:.3f} | {tv:.3f} | {verdict} | {s32 / s8:.2f}x |"
        )
    print("\n" + "\n".join(trends))


if __name__ == "__main__":
    main()
