"""Notebook 12: checkpointing (memory saved, time paid), all-reduce bytes, pipeline and tensor
parallelism on 2 gloo processes, torchrun cost.

    python benchmarks/bench_distributed.py [threads]

Prints markdown tables of ratios measured in this one run: peak tensor memory and
forward+backward time of a 16-layer MLP with 0/2/4/8 checkpointed segments (settings
alternated round by round, median of 5 rounds x 3 calls, fixed threads); ring all-reduce
vs parameter-server bytes counted by simulation; and one real torchrun launch (2 gloo
processes) split into start-up and work, with the pipeline (GPipe, 1F1B: bubble counted from
the schedule, activations kept, max difference to one process) and the tensor-parallel MLP
(all-reduces per direction, max difference) it ran.
"""

from __future__ import annotations

import sys

import torch

from labkit import distributed, env


def main(threads: int = 2) -> None:
    env.setup(seed=0, threads=threads)
    print("## Distributed training (12)\n")
    model = distributed.deep_mlp(depth=16, width=256)
    x = torch.randn(1024, 256)
    segments = [0, 2, 4, 8]
    rows = distributed.checkpoint_costs(model, x, segments)
    timing = distributed.checkpoint_timing(model, x, segments, rounds=9, repeats=3, threads=threads)
    base = rows[0]
    print(f"Activation checkpointing, 16 x Linear(256) + ReLU, batch 1024, {threads} threads\n")
    print("| segments | peak memory (MiB) | memory / plain | time (ms) | time / plain | verdict |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        name = distributed.segment_label(r["segments"])
        verdict = "baseline" if r["segments"] == 0 else timing.verdict(name)
        print(
            f"| {r['segments'] or 'none'} | {r['peak_bytes'] / 2**20:.1f} "
            f"| {r['peak_bytes'] / base['peak_bytes']:.2f} | {timing.median_ms[name]:.1f} "
            f"| {1 / timing.speedup[name]:.2f} | {verdict} |"
        )

    print("\nAll-reduce traffic per step (simulated, gradient of M = 256 KiB)\n")
    print("| N | ring bytes per worker / M | parameter server bytes in / M | server / ring |")
    print("|---|---|---|---|")
    m = 2**16
    for n in (2, 4, 8, 16, 32):
        _, sent = distributed.ring_allreduce([torch.ones(m) for _ in range(n)])
        ring = sum(step[0] for step in sent) / (4 * m)
        server = distributed.parameter_server_bytes(n, 1.0)["server_received"]
        print(f"| {n} | {ring:.4f} | {server:.0f} | {server / ring:.1f} |")

    res = distributed.launch(nproc=2)
    secs = res["worker_seconds"]
    work = sum(v for k, v in secs.items() if k != "start-up")
    print("\nPipeline parallelism, p = 2 stages, m = 4 micro-batches, on 2 gloo processes\n")
    print(
        "| schedule | bubble counted | (p-1)/(m+p-1) | activations kept (rank 0, rank 1) "
        "| max loss diff | max weight diff |"
    )
    print("|---|---|---|---|---|---|")
    losses, state = distributed.train_single()
    for kind in ("gpipe", "1f1b"):
        bubble = distributed.schedule_bubble(distributed.pipeline_schedule(kind, 2, 4))
        loss_diff = max(abs(a - b) for a, b in zip(losses, res[f"pp_{kind}_losses"], strict=True))
        weight_diff = distributed.state_max_diff(state, res[f"pp_{kind}_state"])
        print(
            f"| {kind} | {bubble:.3f} | {distributed.bubble_fraction(2, 4):.3f} "
            f"| {res[f'pp_{kind}_peak_kept']} | {loss_diff:.1e} | {weight_diff:.1e} |"
        )
    grads = distributed.reference_gradients()
    print("\nTensor parallelism, Megatron MLP (Linear 2 column-, Linear 4 row-parallel), 2 ranks\n")
    print("| backward all-reduce | all-reduces (forward, backward) | max gradient diff |")
    print("|---|---|---|")
    for tag, label in (("tp", "yes"), ("tp_no_backward_allreduce", "no")):
        calls = res[f"{tag}_allreduce_calls"]
        diff = distributed.state_max_diff(grads, res[f"{tag}_grads"])
        print(f"| {label} | {calls['forward']}, {calls['backward']} | {diff:.1e} |")
    print("\ntorchrun, 2 gloo processes (every experiment of the notebook in one launch)\n")
    rest = res["launch_seconds"] - secs["start-up"] - work
    print(
        "| whole launch (s) | start-up (s) | work (s) | gather, save, exit (s) | start-up / launch |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| {res['launch_seconds']:.1f} | {secs['start-up']:.1f} | {work:.1f} | {rest:.1f} "
        f"| {secs['start-up'] / res['launch_seconds']:.2f} |"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
