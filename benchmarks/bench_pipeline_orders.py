"""Notebook 13's order ablation and Pareto sweep with more seeds than the notebook can afford.

    python benchmarks/bench_pipeline_orders.py [seeds]     (default 6 seeds: 0..5)

Prints, as markdown: the accuracy of each order (prune -> quantise vs quantise -> prune at
4 bits, distil -> prune vs prune -> distil) as mean, sample std and min-max over seeds with
the paired verdicts; then, per seed, the sweep's front size, best accuracy and the choice
under 12 kB. Accuracies, not timings: nothing here depends on the CPU's speed.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("LABKIT_QUIET", "1")  # no progress bars in the report

from labkit import data, distill, env, pipeline  # noqa: E402


def main(n_seeds: int = 6) -> None:
    env.seed_everything(0)
    env.set_threads(2)
    teacher = distill.load_teachers()[0][0]
    x, y = data.digits()["test"]
    loader = data.digits_loaders(batch_size=64).train
    seeds = tuple(range(n_seeds))
    rows = pipeline.order_ablation(teacher, loader, x, y, seeds=seeds, width=16, bits=4)
    print(f"## Order ablation, {n_seeds} seeds, CPU: {env.cpu_name()}\n")
    print("| order | accuracy % (mean) | std | min-max | bytes |\n|---|---|---|---|---|")
    for t in pipeline.order_table(rows):
        print(
            f"| {t['order']} | {100 * t['mean']:.2f} | {100 * t['std']:.2f} | "
            f"{100 * t['min']:.1f}-{100 * t['max']:.1f} | {t['bytes']:,} |"
        )
    print()
    print("- " + pipeline.order_verdict(rows, *pipeline.QUANT_ORDERS))
    print("- " + pipeline.order_verdict(rows, *pipeline.DISTIL_ORDERS))
    print("\n## Sweep (3 widths x 3 ratios x 3 bits) per seed\n")
    print("| seed | front points | best accuracy % | choice under 12 kB |\n|---|---|---|---|")
    for s in seeds[:3]:
        sweep = pipeline.sweep(loader, x, y, seed=s)
        front, pick = pipeline.sweep_front(sweep), pipeline.choose_under_budget(sweep, 12_000)
        best = max(r["accuracy"] for r in sweep)
        what = (
            "none"
            if pick is None
            else (
                f"w{pick['width']} r{pick['ratio']} {pick['bits']}-bit, {pick['bytes']:,} B, "
                f"{100 * pick['accuracy']:.2f} %"
            )
        )
        print(f"| {s} | {len(front)} of {len(sweep)} | {100 * best:.2f} | {what} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
