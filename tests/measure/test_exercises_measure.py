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


def _timed(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def test_minimum_instead_of_median_is_rejected() -> None:
    res = checks.check(
        "bench.measure_latency", lambda fn, warmup=3, repeats=20: min(_timed(fn, warmup, repeats))
    )
    assert not res.passed and "median is 8 ms" in res.message


def test_off_by_one_repeat_count_is_rejected() -> None:
    res = checks.check(
        "bench.measure_latency",
        lambda fn, warmup=3, repeats=20: statistics.median(_timed(fn, warmup, repeats - 1)),
    )
    assert not res.passed and "called fn 9 times" in res.message


def test_total_instead_of_per_call_is_rejected() -> None:
    res = checks.check(
        "bench.measure_latency", lambda fn, warmup=3, repeats=20: sum(_timed(fn, warmup, repeats))
    )
    assert not res.passed


def test_correct_measure_latency_passes() -> None:
    res = checks.check(
        "bench.measure_latency",
        lambda fn, warmup=3, repeats=20: statistics.median(_timed(fn, warmup, repeats)),
    )
    assert res.passed, res.message


def test_size_in_elements_not_bytes_is_rejected() -> None:
    def elements(model):
        return sum(t.numel() for t in list(model.parameters()) + list(model.buffers()))

    assert not checks.check("bench.model_size_bytes", elements).passed


def test_size_counting_nested_modules_twice_is_rejected() -> None:
    def per_module(model):  # parameters() recurses, so a Sequential counts its children twice
        return sum(
            t.numel() * t.element_size()
            for m in model.modules()
            for t in list(m.parameters()) + list(m.buffers())
        )

    res = checks.check("bench.model_size_bytes", per_module)
    assert not res.passed and "Sequential" in res.message


def test_size_from_state_dict_counts_tied_weights_twice() -> None:
    def from_state_dict(model):
        return sum(t.numel() * t.element_size() for t in model.state_dict().values())

    res = checks.check("bench.model_size_bytes", from_state_dict)
    assert not res.passed and "tied" in res.message


def test_size_of_the_checkpoint_file_is_rejected() -> None:
    import io

    import torch

    def checkpoint(model):
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        return buf.getbuffer().nbytes

    assert not checks.check("bench.model_size_bytes", checkpoint).passed


def _macs(conv, height, width, batch=1, *, mistake=None):
    kh, kw = conv.kernel_size
    (sh, sw), (ph, pw) = conv.stride, conv.padding
    if mistake == "no_padding":
        ph = pw = 0
    if mistake == "swapped":
        kh, kw = kw, kh
    h = (height + 2 * ph - kh) // sh + 1
    w = (width + 2 * pw - kw) // sw + 1
    per = (conv.out_channels if mistake == "c_out" else conv.in_channels) // conv.groups
    macs = (1 if mistake == "no_batch" else batch) * conv.out_channels * h * w * per * kh * kw
    return 2 * macs if mistake == "flops" else macs


def test_macs_planted_mistakes_are_rejected() -> None:
    expected_case = {
        "no_padding": "padding=1",
        "no_batch": "batch 3",
        "flops": "Conv2d(3, 8, 3)",
        "c_out": "Conv2d(3, 8, 3)",
        "swapped": "1x3 kernel",
    }
    for mistake, label in expected_case.items():
        res = checks.check(
            "bench.conv2d_macs", lambda *a, m=mistake, **k: _macs(*a, **k, mistake=m)
        )
        assert not res.passed and label in res.message, (mistake, res.message)
    assert checks.check("bench.conv2d_macs", _macs).passed


def test_rounding_the_output_size_up_is_rejected() -> None:
    import math

    def ceil_macs(conv, height, width, batch=1):
        kh, kw = conv.kernel_size
        sh, sw = conv.stride
        ph, pw = conv.padding
        h_out = math.ceil((height + 2 * ph - kh) / sh) + 1
        w_out = math.ceil((width + 2 * pw - kw) / sw) + 1
        per_output = (conv.in_channels // conv.groups) * kh * kw
        return batch * conv.out_channels * h_out * w_out * per_output

    res = checks.check("bench.conv2d_macs", ceil_macs)
    assert not res.passed and "not whole" in res.message
