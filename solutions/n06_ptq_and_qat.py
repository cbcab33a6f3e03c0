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


EXERCISES = {
    "qat.ste_fake_quant": ste_fake_quant,
    "qat.qat_step": qat_step,
}
