"""Worked solutions of notebook 00, written as a learner would."""

import statistics
import time

from torch import nn


def measure_latency(fn, warmup=3, repeats=20):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def model_size_bytes(model):
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def conv2d_macs(conv: nn.Conv2d, height, width, batch=1):
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    ph, pw = conv.padding
    dh, dw = conv.dilation
    h_out = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    per_output = (conv.in_channels // conv.groups) * kh * kw
    return batch * conv.out_channels * h_out * w_out * per_output


EXERCISES = {
    "bench.measure_latency": measure_latency,
    "bench.model_size_bytes": model_size_bytes,
    "bench.conv2d_macs": conv2d_macs,
}
