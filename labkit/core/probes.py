"""Probes: measure what a piece of PyTorch code does while it runs, without changing its result.

- ``OpRecorder``: a TorchDispatchMode that sees every aten op (below autograd and autocast), with
  the dtypes of its tensor inputs and outputs, and counts the bytes of the tensor storages the ops
  create while they are alive (current and peak).
- ``peak_tensor_bytes(fn, ...)``: the peak of those live bytes during one call.
- ``saved_tensor_bytes(fn)``: the bytes autograd keeps for backward, caught with saved-tensor hooks.
- ``exact_cpu_memory_accounting()``: make glibc return freed large blocks, so that
  ``labkit.bench.peak_memory`` (the process's resident memory) sees every big tensor.

The byte rule, the same in both byte probes: memory, not tensors. Tensors that share a storage (a
view, the same tensor used twice) are counted once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


@dataclass(frozen=True)
class OpCall:
    """One aten op that ran: its name (``func.overloadpacket``, e.g. "addmm", "_to_copy") and the
    dtypes of its tensor arguments and of the tensors it returned, in order."""

    name: str
    inputs: tuple[torch.dtype, ...]
    outputs: tuple[torch.dtype, ...]


class OpRecorder(TorchDispatchMode):
    """Record every aten op run inside ``with OpRecorder() as rec:`` in ``rec.ops`` (OpCall rows).

    It also counts live tensor memory: each new output storage is added to ``rec.live_bytes`` when
    an op creates it and removed when it is freed (a weak reference), ``rec.peak_bytes`` is the
    largest value seen. Views and in-place results reuse an input's storage and add nothing.

    What it sees: ops below autograd and autocast, so autocast's casts appear as ``_to_copy`` and
    backward's ops appear too. Limits: memory that existed before the ``with`` is not counted;
    tensors created outside aten (``torch.from_numpy``, storages made in C++ by a custom kernel)
    are invisible; a compiled graph (torch.compile) shows as the ops it falls back to.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[OpCall] = []
        self.live_bytes = 0
        self.peak_bytes = 0
        self._live: dict[int, tuple[int, weakref.ref]] = {}  # id(storage) -> (bytes, weak ref)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        ins = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        name = str(func.overloadpacket.__name__)
        self.ops.append(OpCall(name, tuple(t.dtype for t in ins), tuple(t.dtype for t in outs)))
        self._count_new_storages(ins, outs)
        return out

    def _count_new_storages(self, ins: list[torch.Tensor], outs: list[torch.Tensor]) -> None:
        reused = {id(t.untyped_storage()) for t in ins}  # a view or an in-place result
        for t in outs:
            if t.device.type == "meta":
                continue
            st = t.untyped_storage()
            key = id(st)
            if key in self._live or key in reused:
                continue
            self._live[key] = (st.nbytes(), weakref.ref(st, lambda _r, k=key: self._freed(k)))
            self.live_bytes += st.nbytes()
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)

    def _freed(self, key: int) -> None:
        self.live_bytes -= self._live.pop(key)[0]


def peak_tensor_bytes(fn: Callable[..., object], *args: object, **kwargs: object) -> int:
    """Peak bytes of tensor storages created by ``fn(*args, **kwargs)`` and alive at the same time.

        peak = max over time of  sum(bytes of the storages created inside fn and not yet freed)

    Counted with ``OpRecorder``: activations, gradients flowing backward, recomputed checkpoint
    segments and temporaries that are freed again. That is what a caching allocator's peak shows
    above the memory in use before the call (torch.cuda.max_memory_allocated on a GPU), but exact
    and the same on every machine. Limits: no allocator rounding or fragmentation; memory made
    outside aten ops is not seen (see OpRecorder).
    """
    if not callable(fn):
        raise ValueError(
            f"fn must be a function to call, got {type(fn).__name__}: pass it without ()."
        )
    with OpRecorder() as rec:
        fn(*args, **kwargs)
    return rec.peak_bytes


def saved_tensor_bytes(fn: Callable[[], object], exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes of memory held by the tensors autograd saves for backward while ``fn()`` runs.

    Every tensor an op saves (torch.autograd.graph.saved_tensors_hooks) spans the bytes
    [offset, offset + 1 + sum_i (size_i - 1) * stride_i) elements of its storage. Per storage the
    spans are merged, so a view or a tensor saved by two ops counts once, and a slice counts only
    its rows:
        bytes = sum over storages of |union of the saved tensors' spans| * element size
    Storages of ``exclude`` are not counted (pass ``model.parameters()``: they live anyway).

    Limits: sees what goes through autograd's saved-tensor hooks (``ctx.save_for_backward`` and
    the built-in ops), not tensors a custom Function keeps as ``ctx.attr``; nothing is saved under
    ``torch.no_grad``; ``fn`` runs once, and the saved tensors are kept alive until it returns.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    kept: list[torch.Tensor] = []  # held so that no storage is freed and its address reused

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.numel() and t.untyped_storage().data_ptr() not in skip:
            kept.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    spans: dict[int, list[tuple[int, int]]] = {}
    for t in kept:
        first = t.storage_offset()
        last = first + sum((n - 1) * s for n, s in zip(t.shape, t.stride(), strict=True))
        size = t.element_size()
        spans.setdefault(t.untyped_storage().data_ptr(), []).append(
            (first * size, (last + 1) * size)
        )
    return sum(_union_length(s) for s in spans.values())


def _union_length(spans: list[tuple[int, int]]) -> int:
    """Length of the union of half-open intervals [a, b)."""
    total, end = 0, None
    for a, b in sorted(spans):
        if end is None or a >= end:
            total, end = total + b - a, b
        elif b > end:
            total, end = total + b - end, b
    return total


def exact_cpu_memory_accounting(threshold_bytes: int = 128 * 1024) -> bool:
    """Make CPU peak-memory readings (labkit.bench.peak_memory) see every large tensor (Linux).

    glibc raises its mmap threshold after a big block is freed and then serves later blocks of a
    few MiB from heap memory that is already resident, so they do not show in the peak resident
    size. Fixing the threshold (mallopt M_MMAP_THRESHOLD) makes every block of at least
    ``threshold_bytes`` a fresh mapping that goes back to the OS on free. Returns False where this
    is not glibc (nothing changed). Process-wide and permanent: call it once, at set-up.
    """
    import ctypes
    import ctypes.util

    if (
        isinstance(threshold_bytes, bool)
        or not isinstance(threshold_bytes, int)
        or threshold_bytes < 0
    ):
        raise ValueError(f"threshold_bytes must be an int >= 0, got {threshold_bytes!r}.")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, threshold_bytes))  # -3 = M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False
