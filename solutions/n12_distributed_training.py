"""Worked solutions of notebook 12, written as a learner would."""


def ring_schedule(n):
    steps = []
    for s in range(n - 1):  # reduce-scatter: pass a chunk on and add it
        steps.append([(i, (i - s) % n) for i in range(n)])
    for s in range(n - 1):  # all-gather: pass the finished chunks round the ring
        steps.append([(i, (i + 1 - s) % n) for i in range(n)])
    return steps


def zero_memory_per_gpu(params, n_gpus, stage, k=12):
    param_bytes = 2 * params
    grad_bytes = 2 * params
    optimizer_bytes = k * params
    if stage >= 1:
        optimizer_bytes /= n_gpus
    if stage >= 2:
        grad_bytes /= n_gpus
    if stage >= 3:
        param_bytes /= n_gpus
    return param_bytes + grad_bytes + optimizer_bytes


EXERCISES = {
    "distributed.ring_schedule": ring_schedule,
    "distributed.zero_memory_per_gpu": zero_memory_per_gpu,
}
