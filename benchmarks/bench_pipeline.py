"""Notebook 13's capstone as ratios measured in one run: every pipeline stage against the FP32
teacher (PyTorch eager), one thread, batch 1 and batch 32.

    python benchmarks/bench_pipeline.py

Stages: FP32 teacher (eager and ONNX Runtime) -> distilled student -> pruned + fine-tuned ->
QAT INT8 (fake-quant simulator) -> ONNX FP32 -> ONNX INT8 QDQ, trained as in the notebook.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("LABKIT_QUIET", "1")  # no progress bars in the report

from labkit import data, distill, env, pipeline  # noqa: E402

ROUNDS, REPEATS = 15, 10


def main() -> None:
    env.seed_everything(0)
    env.set_threads(2)  # training; every latency below is on 1 thread
    teacher = distill.load_teachers()[0][0]
    digits = data.digits()
    x, y = digits["test"]
    loader = data.digits_loaders(batch_size=64).train
    with tempfile.TemporaryDirectory() as tmp:
        stages = pipeline.run_pipeline(
            teacher, loader, digits["train"].x[:256], Path(tmp), teacher_onnx=True
        )
        rows = pipeline.accuracy_rows(stages, x, y)
        comps = pipeline.compare_stages(stages, x, rounds=ROUNDS, repeats=REPEATS)
        rows = pipeline.with_latency(rows, comps)
    base = rows[0]
    print(f"## Capstone pipeline vs the FP32 teacher (1 thread), CPU: {env.cpu_name()}\n")
    print(env.int8_kernel_note() + "\n")
    print(
        "| stage | runtime | accuracy % | file bytes | smaller | MACs | ms b1 | ms b32 "
        "| faster b1 | faster b32 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        b1 = pipeline.compression_summary(base, r, "ms_b1")
        b32 = pipeline.compression_summary(base, r, "ms_b32")
        print(
            f"| {r['stage']} | {r['note']} | {100 * r['accuracy']:.2f} | {r['bytes']:,} "
            f"| {b1['smaller']:.2f}x | {r['MACs']:,} | {r['ms_b1']:.3f} | {r['ms_b32']:.3f} "
            f"| {b1['faster']:.2f}x | {b32['faster']:.2f}x |"
        )
    for key, comp in comps.items():
        print(f"\n{key} (bench.compare, {comp.rounds} interleaved rounds):")
        print(comp.report())
    final = pipeline.compression_summary(base, rows[-1])
    print(
        f"\nTarget (>= 8x smaller, >= 2x faster at batch 1, <= 1.5 points lost): "
        f"{pipeline.meets_target(final)}"
    )


if __name__ == "__main__":
    main()
