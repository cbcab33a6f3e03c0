"""Planted wrong answers to notebook 00's exercises must be rejected."""

import statistics
import time

from labkit import checks


def test_timing_the_warmup_is_rejected() -> None:
    def times_everything(fn, warmup=3, repeats=20):
        ts = []
        for _ in range(warmup + repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    assert not checks.check("bench.measure_latency", times_everything).passed


def test_mean_instead_of_median_is_rejected() -> None:
    def mean_latency(fn, warmup=3, repeats=20):
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - t0) / repeats

    res = checks.check("bench.measure_latency", mean_latency)
    assert not res.passed and "median" in res.message


def test_milliseconds_instead_of_seconds_is_rejected() -> None:
    def in_ms(fn, warmup=3, repeats=20):
        for _ in range(warmup):
            fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(ts)

    assert not checks.check("bench.measure_latency", in_ms).passed


def test_size_without_buffers_is_rejected() -> None:
    def params_only(model):
        return sum(p.numel() * p.element_size() for p in model.parameters())

    res = checks.check("bench.model_size_bytes", params_only)
    assert not res.passed and "BatchNorm" in res.message


def test_size_assuming_four_bytes_is_rejected() -> None:
    def four_bytes(model):
        return 4 * sum(t.numel() for t in list(model.parameters()) + list(model.buffers()))

    assert not checks.check("bench.model_size_bytes", four_bytes).passed


def test_macs_ignoring_stride_or_groups_is_rejected() -> None:
    def no_stride(conv, height, width, batch=1):
        kh, kw = conv.kernel_size
        ph, pw = conv.padding
        h = height + 2 * ph - kh + 1
        w = width + 2 * pw - kw + 1
        return batch * conv.out_channels * h * w * (conv.in_channels // conv.groups) * kh * kw

    def no_groups(conv, height, width, batch=1):
        kh, kw = conv.kernel_size
        (sh, sw), (ph, pw) = conv.stride, conv.padding
        h = (height + 2 * ph - kh) // sh + 1
        w = (width + 2 * pw - kw) // sw + 1
        return batch * conv.out_channels * h * w * conv.in_channels * kh * kw

    assert "stride" in checks.check("bench.conv2d_macs", no_stride).message
    assert "groups" in checks.check("bench.conv2d_macs", no_groups).message
