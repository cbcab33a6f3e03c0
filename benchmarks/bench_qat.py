"""Notebook 06's latency comparison, from ``labkit.bench.compare``: the course MLP in FP32
(PyTorch eager, ONNX Runtime) against int8 from PyTorch (torch.ao, deprecated) and ONNX
Runtime (quantize_static / quantize_dynamic), and labkit's fake-quant simulator; batch 1 and
32, 1 thread, interleaved rounds (``labkit.qat.runtime_table``). Each verdict is "x.xx faster /
slower" or "no clear difference" when the spread of the per-round ratios covers 1.0.

    python benchmarks/bench_qat.py
"""

from __future__ import annotations

from typing import Any

from labkit import bench, data, env, models, qat, train


def run() -> dict[int, tuple[list[dict[str, Any]], dict[str, bench.Comparison]]]:
    env.seed_everything(0)
    env.set_threads(2)
    loaders = data.digits_loaders(batch_size=64)
    mlp = models.mlp(width=256, depth=2)
    train.fit(mlp, loaders.train, epochs=6, lr=2e-3, progress=False)
    calib = qat.calibration_batches(loaders.train, 4)
    test = data.digits()["test"]
    labkit_int8 = qat.static_ptq(mlp, calib, 8)
    return {
        batch: qat.runtime_table(mlp, calib, test.x, test.y, labkit_int8, batch=batch, rounds=21)
        for batch in (1, 32)
    }


def main() -> None:
    tables = run()
    print(f"CPU: {env.cpu_name()}; {env.int8_kernel_note()}")
    print("Course MLP 64-256-256-10 on digits, 1 thread; speed-up = baseline ms / method ms.")
    print("| batch | method | accuracy | size ratio | median ms | verdict |")
    print("|---|---|---|---|---|---|")
    for batch, (rows, comparisons) in tables.items():
        fp32_bytes = rows[0]["bytes"]
        for r in rows:
            cmp = next(c for c in comparisons.values() if r["method"] in c.median_ms)
            verdict = "baseline" if r["method"] == cmp.baseline else cmp.verdict(r["method"])
            print(
                f"| {batch} | {r['method']} | {100 * r['accuracy']:.1f} % "
                f"| {fp32_bytes / r['bytes']:.2f}x | {cmp.median_ms[r['method']]:.3f} | {verdict} |"
            )


if __name__ == "__main__":
    main()
