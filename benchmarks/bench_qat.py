"""Notebook 06's latency comparison, from ``labkit.bench.compare``: the course MLP in FP32
(PyTorch eager, ONNX Runtime) against int8 from PyTorch (torch.ao, deprecated) and ONNX
Runtime (quantize_static / quantize_dynamic), and labkit's fake-quant simulator; batch 1 and
32, 1 thread, interleaved rounds (``labkit.qat.runtime_table``). Each verdict is "x.xx faster /
slower" or "no clear difference" when the spread of the per-round ratios covers 1.0.

Section 7's LLM weight quantisation on the shipped character LM (data/qat_char_lm.safetensors):
validation loss and size ratio of group-wise RTN, GPTQ and AWQ at 4 and 3 bits, groups of 128
and 32, and the time to quantise one layer (blocks.3.out, 128 x 512) by each method, timed in
one ``bench.compare`` against RTN.

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


def llm_rows() -> tuple[list[str], bench.Comparison]:
    """Markdown rows (bits, group, method, loss delta, size ratio) and the one-layer timing."""
    env.seed_everything(0)
    lm, _ = qat.load_char_lm()
    x_val, y_val = qat.lm_windows("val", 32)
    stats = qat.linear_stats(lm, qat.lm_windows("train", 16, seed=2)[0])
    fp32 = float(qat.lm_loss(lm, x_val, y_val).mean())
    rows = []
    for bits in (4, 3):
        for g in (128, 32):
            ratio = qat.groupwise_size_bytes(lm) / qat.groupwise_size_bytes(lm, bits, g)
            for method in qat.llm.METHODS:
                q = qat.quantize_linears(lm, method, bits, g, stats)
                d = float(qat.lm_loss(q, x_val, y_val).mean()) - fp32
                rows.append(f"| {bits} | {g} | {method} | {d:+.4f} | {ratio:.2f}x |")
    w, st = lm.blocks[3].out.weight.detach(), stats["blocks.3.out"]
    timing = bench.compare(
        {
            "rtn": lambda: qat.fake_quantize_groupwise(w, 4, 128),
            "gptq": lambda: qat.gptq_quantize(w, st.h, 4, 128),
            "awq": lambda: qat.awq_scales(w, st.h, st.act_mean, 4, 128),
        },
        baseline="rtn",
        rounds=5,
        repeats=1,
        threads=2,
    )
    return rows, timing


def main() -> None:
    rows, timing = llm_rows()
    print("Character LM (4 blocks, d = 128), 16 block Linear layers quantised, loss in nats/char:")
    print("| bits | group | method | loss - FP32 | size ratio |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nTime to quantise blocks.3.out (128 x 512), 4 bits, group 128:")
    print(timing.report())
    print()
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
