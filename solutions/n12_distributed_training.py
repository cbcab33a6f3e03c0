"""Worked solutions of notebook 12, written as a learner would."""

import torch


def ring_schedule(n):
    steps = []
    for s in range(n - 1):  # reduce-scatter: pass a chunk on and add it
        steps.append([(i, (i - s) % n) for i in range(n)])
    for s in range(n - 1):  # all-gather: pass the finished chunks round the ring
        steps.append([(i, (i + 1 - s) % n) for i in range(n)])
    return steps


def zero_memory(params, n_gpus, stage, k=12):
    param_bytes = 2 * params
    grad_bytes = 2 * params
    optimizer_bytes = k * params
    if stage >= 1:  # P_os: the optimizer states first
        optimizer_bytes /= n_gpus
    if stage >= 2:  # P_os+g: then the gradients
        grad_bytes /= n_gpus
    if stage >= 3:  # P_os+g+p: then the parameters
        param_bytes /= n_gpus
    return {"params": param_bytes, "grads": grad_bytes, "optimizer": optimizer_bytes}


def bubble_fraction(stages, microbatches):
    total_steps = 2 * (microbatches + stages - 1)  # one step per forward and per backward
    busy_steps = 2 * microbatches  # each stage does m forwards and m backwards
    return (total_steps - busy_steps) / total_steps


def megatron_mlp_partials(x, w1, b1, w2, world):
    h = w1.shape[0] // world  # hidden features per rank
    partials = []
    for r in range(world):
        rows = slice(r * h, (r + 1) * h)
        hidden = torch.relu(x @ w1[rows].T + b1[rows])  # column-parallel: whole hidden features
        partials.append(hidden @ w2[:, rows].T)  # row-parallel: a partial sum of the output
    return partials


EXERCISES = {
    "distributed.ring_schedule": ring_schedule,
    "distributed.zero_memory": zero_memory,
    "distributed.bubble_fraction": bubble_fraction,
    "distributed.megatron_mlp_partials": megatron_mlp_partials,
}
