"""Worked solutions of notebook 06 (PTQ and QAT), written as a learner would."""

import torch
import torch.nn.functional as F


# A learner's STE, beside the library's labkit.quant.STEFakeQuant on purpose (it is Exercise 1);
# tests/test_solutions.py holds the two to the same checker (forward = torch's, gradient = STE).
class STEFakeQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        q = torch.round(x / scale) + zero_point  # torch.round: half to even
        ctx.save_for_backward((q >= qmin) & (q <= qmax))
        return (torch.clamp(q, qmin, qmax) - zero_point) * scale

    @staticmethod
    def backward(ctx, grad_out):
        (inside,) = ctx.saved_tensors
        # straight through where the value was not clamped, zero where it was
        return grad_out * inside, None, None, None, None


def ste_fake_quant(x, scale, zero_point, qmin, qmax):
    return STEFakeQuant.apply(x, scale, zero_point, qmin, qmax)


def qat_step(model, x, y, optimizer):
    model.train()  # the activation observers of a QAT model update only in train mode
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def fake_quantize_groupwise(w, bits=4, group_size=128):
    out, n = w.shape
    groups = w.reshape(out, n // group_size, group_size)  # one group per row of the last dim
    lo = groups.amin(dim=2, keepdim=True)  # each group's own range: no widening to include 0
    hi = groups.amax(dim=2, keepdim=True)
    step = (hi - lo) / (2**bits - 1)  # 2**bits levels, 2**bits - 1 steps between them
    safe = torch.where(step > 0, step, torch.ones_like(step))  # a constant group: step 0
    w_hat = lo + torch.round((groups - lo) / safe) * step
    return w_hat.reshape(out, n)


def smoothquant_scales(act_absmax, weight_absmax, alpha=0.5):
    s = act_absmax**alpha / weight_absmax ** (1 - alpha)
    # a channel with a zero range on either side has nothing to migrate
    return torch.where((act_absmax > 0) & (weight_absmax > 0), s, torch.ones_like(s))


EXERCISES = {
    "qat.ste_fake_quant": ste_fake_quant,
    "qat.qat_step": qat_step,
    "qat.fake_quantize_groupwise": fake_quantize_groupwise,
    "qat.smoothquant_scales": smoothquant_scales,
}
