"""Notebook 10's hardware-aware NAS over several seeds: how well the per-layer latency lookup
table predicts measured latency (MAPE, rank correlation, 3 independent tables), and
regularised evolution against random search at the same budget of evaluations (3 seeds; the
notebook runs one). Prints markdown tables.

    python benchmarks/bench_edge_nas.py
"""

from __future__ import annotations

import functools
import random
import statistics

import pandas as pd

from labkit import data, edge, env


def main() -> None:
    env.setup(seed=0, threads=2)
    loaders = data.digits_loaders(batch_size=64)
    rows = []
    for rep in range(3):
        lut = edge.latency_lut(repeats=100)
        rng = random.Random(rep)
        archs = [edge.random_arch(rng) for _ in range(24)]
        meas = [edge.measure_latency(a) for a in archs]
        pred = [edge.predict_latency(a, lut) for a in archs]
        corr = pd.Series(pred).corr(pd.Series(meas), method="spearman")
        rows.append({"table": rep, "MAPE %": edge.mean_abs_pct_error(pred, meas), "Spearman": corr})
    print(pd.DataFrame(rows).round(3).to_markdown(index=False))

    lut = edge.latency_lut(repeats=100)
    acc = functools.cache(lambda a: edge.train_arch(a, loaders, epochs=2))
    lat = functools.partial(edge.predict_latency, lut=lut)
    target = lat(((16, 3), (16, 3), (16, 3)))
    runs = []
    for seed in range(3):
        evo = edge.regularized_evolution(acc, lat, target, 24, population=8, sample=3, seed=seed)
        rnd = edge.random_search(acc, lat, target, 24, seed=seed)
        runs.append({"seed": seed, "evolution": max(r["reward"] for r in evo),
                     "random": max(r["reward"] for r in rnd)})  # fmt: skip
    table = pd.DataFrame(runs)
    print(table.round(4).to_markdown(index=False))
    wins = int((table["evolution"] > table["random"]).sum())
    print(f"\nevolution better in {wins} of 3 seeds; median best reward evolution "
          f"{statistics.median(table['evolution']):.4f}, random {statistics.median(table['random']):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
