"""Worked solutions of notebook 02 (gradient accumulation), written as a learner would."""

import torch
import torch.nn.functional as F


def accumulate_gradients(model, x, y, micro_batch_size):
    model.zero_grad()
    for start in range(0, len(x), micro_batch_size):
        xb, yb = x[start : start + micro_batch_size], y[start : start + micro_batch_size]
        loss = F.cross_entropy(model(xb), yb) * len(xb) / len(x)
        loss.backward()
    return [p.grad.clone() for p in model.parameters()]


def clip_accumulated(model, x, y, micro_batch_size, max_norm, scaler):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    optimizer.zero_grad()
    for start in range(0, len(x), micro_batch_size):
        xb, yb = x[start : start + micro_batch_size], y[start : start + micro_batch_size]
        loss = F.cross_entropy(model(xb), yb) * len(xb) / len(x)
        scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return [p.grad.clone() for p in model.parameters()]


EXERCISES = {
    "accumulation.accumulate_gradients": accumulate_gradients,
    "accumulation.clip_accumulated": clip_accumulated,
}
