"""labkit.core.probes: op recorder, live/peak tensor bytes, saved-tensor bytes, each by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labkit import probes


def test_saved_tensor_bytes_of_a_tiny_mlp_by_hand() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(5, 3)
    # Linear1 saves x (5*3 floats; not W1: x needs no gradient), ReLU its output (5*4), which
    # Linear2 saves again (same tensor: once); sum saves nothing.
    assert probes.saved_tensor_bytes(lambda: model(x).sum(), exclude=model.parameters()) == 4 * (
        15 + 20
    )
    # without exclude: Linear2 also saves W2ᵀ (a view of the 4*2 weight) for its input's gradient
    assert probes.saved_tensor_bytes(lambda: model(x).sum()) == 4 * (15 + 20 + 8)


def test_saved_tensor_bytes_counts_a_view_once() -> None:
    a = torch.randn(4, 5, requires_grad=True)
    # exp saves its result y (20 floats); pow saves y.view(20): the same memory, another shape
    assert probes.saved_tensor_bytes(lambda: a.exp().view(20).pow(2)) == 80


def test_saved_tensor_bytes_counts_only_the_rows_of_a_slice() -> None:
    big = torch.randn(100, 8)
    w = torch.randn(8, 3, requires_grad=True)
    assert probes.saved_tensor_bytes(lambda: big[:10] @ w, exclude=[w]) == 10 * 8 * 4
    # two overlapping slices of one storage: rows 10..24, once
    both = probes.saved_tensor_bytes(lambda: big[10:20] @ w + big[15:25] @ w, exclude=[w])
    assert both == 15 * 8 * 4


def test_saved_tensor_bytes_sees_nothing_under_no_grad() -> None:
    w = torch.randn(8, 3, requires_grad=True)

    def fn() -> None:
        with torch.no_grad():
            (torch.randn(4, 8) @ w).relu()

    assert probes.saved_tensor_bytes(fn) == 0


def test_op_recorder_sees_autocast_casts() -> None:
    a, b = torch.randn(2, 3), torch.randn(3, 2)
    with probes.OpRecorder() as rec, torch.autocast("cpu", dtype=torch.bfloat16):
        torch.mm(a, b)
    f32, bf16 = torch.float32, torch.bfloat16
    assert rec.ops == [
        probes.OpCall("_to_copy", (f32,), (bf16,)),
        probes.OpCall("_to_copy", (f32,), (bf16,)),
        probes.OpCall("mm", (bf16, bf16), (bf16,)),
    ]
    with probes.OpRecorder() as rec:
        torch.mm(a, b)
    assert rec.ops == [probes.OpCall("mm", (f32, f32), (f32,))]


def test_peak_counts_a_temporary_that_is_freed() -> None:
    def fn() -> None:
        a = torch.ones(1000)
        (a * 2).sum()  # a * 2 lives while sum runs, then is freed

    assert probes.peak_tensor_bytes(fn) == 4000 + 4000 + 4

    def alloc_free_alloc() -> None:
        a = torch.ones(1000)
        b = torch.ones(1000)  # noqa: F841
        del a
        torch.ones(500)  # fits where a was: the peak stays at a + b

    assert probes.peak_tensor_bytes(alloc_free_alloc) == 8000
    with probes.OpRecorder() as rec:
        alloc_free_alloc()
    assert rec.live_bytes == 0 and rec.peak_bytes == 8000


def test_peak_does_not_count_views_or_in_place_results() -> None:
    def views_and_inplace() -> torch.Tensor:
        a = torch.ones(1000)
        a.add_(1)
        return a.view(10, 100).t()

    assert probes.peak_tensor_bytes(views_and_inplace) == 4000
    x = torch.ones(1000)  # made before the probe: its views and in-place updates add nothing
    assert probes.peak_tensor_bytes(lambda: x.view(10, 100).t().add_(1)) == 0


def test_peak_passes_arguments_through() -> None:
    assert probes.peak_tensor_bytes(torch.zeros, 10, dtype=torch.float64) == 80


def test_union_length() -> None:
    assert probes._union_length([(0, 4), (2, 6), (10, 12), (11, 12)]) == 8
    assert probes._union_length([(5, 9), (0, 5)]) == 9


def test_exact_cpu_memory_accounting() -> None:
    assert probes.exact_cpu_memory_accounting() in (True, False)
    with pytest.raises(ValueError, match="threshold_bytes"):
        probes.exact_cpu_memory_accounting(1.5)  # type: ignore[arg-type]
