"""Notebook 06's latency comparison as ratios measured in one run: the course MLP in FP32
(PyTorch eager, ONNX Runtime) against int8 from PyTorch (torch.ao, deprecated) and ONNX
Runtime (quantize_static / quantize_dynamic), and labkit's fake-quant simulator;
batch 1 and 32, 1 thread, median after warm-up (labkit.qat.runtime_table).

    python benchmarks/bench_qat.py
"""

from __future__ import annotations

from labkit import data, deploy, env, models, qat, train


def run() -> dict[int, list[dict]]:
    env.seed_everything(0)
    env.set_threads(2)
    loaders = data.digits_loaders(batch_size=64)
    mlp = models.mlp(width=256, depth=2)
    train.fit(mlp, loaders.train, epochs=6, lr=2e-3, progress=False)
    calib = qat.calibration_batches(loaders.train, 4)
    test = data.digits()["test"]
    labkit_int8 = qat.static_ptq(mlp, calib, 8)
    return {
        batch: qat.runtime_table(mlp, calib, test.x, test.y, labkit_int8, batch=batch, repeats=200)
        for batch in (1, 32)
    }


def main() -> None:
    tables = run()
    print(f"CPU: {env.cpu_name()}; {deploy.int8_kernel_note()}")
    print("Course MLP 64-256-256-10 on digits, 1 thread; speed-up = FP32 eager ms / method ms.")
    print(
        "| method | batch | median ms | speed-up vs FP32 eager | speed-up vs ORT FP32 | size ratio | accuracy |"
    )
    print("|---|---|---|---|---|---|---|")
    for batch, rows in tables.items():
        eager = rows[0]
        ort_fp32 = next(r for r in rows if r["method"] == "ORT FP32")
        for r in rows:
            print(
                f"| {r['method']} | {batch} | {r['ms']:.3f} | {eager['ms'] / r['ms']:.2f}x "
                f"| {ort_fp32['ms'] / r['ms']:.2f}x | {eager['bytes'] / r['bytes']:.2f}x "
                f"| {100 * r['accuracy']:.1f} % |"
            )


if __name__ == "__main__":
    main()
