"""Distributed training: ring all-reduce, DDP = single process, ZeRO memory, checkpointing.

Ring all-reduce of a gradient of M bytes over N workers: the gradient is cut into N chunks;
N-1 reduce-scatter steps (each worker sends one chunk to its right neighbour, who adds it)
and N-1 all-gather steps (the finished chunks travel round the ring). Each worker sends

    2 (N - 1) / N * M  bytes  (-> 2M as N grows: constant per worker),

while a parameter server receives N*M and sends N*M bytes every step (grows with N).

ZeRO (Rajbhandari et al., 2020) memory per GPU, Psi parameters, N_d GPUs, mixed-precision
Adam (2 bytes fp16 params, 2 bytes fp16 grads, K = 12 bytes of fp32 optimizer state):

    baseline   (2 + 2 + K) Psi
    stage 1    2 Psi + 2 Psi + K Psi / N_d          (P_os: optimizer states partitioned)
    stage 2    2 Psi + (2 + K) Psi / N_d            (P_os+g: + gradients)
    stage 3    (2 + 2 + K) Psi / N_d                (P_os+g+p: + parameters)

ZeRO-Offload (Ren et al., 2021) keeps the fp16 parameters on the GPU and moves the gradients
and the optimizer states (and the optimizer step) to CPU memory: 16 Psi -> 2 Psi on the GPU.

Real DDP / ZeroRedundancyOptimizer / FSDP run in ``labkit.distributed.worker`` on CPU
processes (gloo backend) launched with torchrun; ``launch`` starts it and reads the results.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from labkit import bench, data
from labkit.core.errors import check_tensor

MAX_BYTES = 4 * 2**30  # refuse demos that would allocate more than this on a laptop
MAX_WORKERS = 4096  # a simulated ring larger than this is only a formula: use ring_bytes_per_worker


def _check_count(value: object, name: str, low: int = 1, high: int | None = None) -> int:
    """An integer in [low, high], else a ValueError naming the parameter."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        upper = f" and <= {high:,}" if high is not None else ""
        raise ValueError(f"{name} must be an integer >= {low}{upper}, got {value!r}.")
    return value


def _check_size(value: object, name: str) -> float:
    """A finite real number >= 0 (a byte count, a parameter count)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value < float("inf")
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return float(value)


# ----------------------------------------------------------------------------- ring all-reduce


def ring_schedule(n: int) -> list[list[tuple[int, int]]]:
    """The ring all-reduce schedule for n workers: 2(n-1) steps of n (sender, chunk) pairs.

    In every step worker i sends one chunk to worker (i + 1) % n, all at the same time.
    Steps 0 .. n-2 (reduce-scatter): worker i sends chunk (i - s) % n; the receiver ADDS it.
    Steps n-1 .. 2n-3 (all-gather): worker i sends chunk (i + 1 - s) % n; the receiver COPIES.
    After reduce-scatter worker i owns the full sum of chunk (i + 1) % n.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_WORKERS:
        raise ValueError(
            f"a ring needs n workers with 2 <= n <= {MAX_WORKERS}, got {n!r} "
            "(for larger n use the formula ring_bytes_per_worker)."
        )
    reduce = [[(i, (i - s) % n) for i in range(n)] for s in range(n - 1)]
    gather = [[(i, (i + 1 - s) % n) for i in range(n)] for s in range(n - 1)]
    return reduce + gather


def ring_allreduce(
    tensors: list[torch.Tensor], schedule: list[list[tuple[int, int]]] | None = None
) -> tuple[list[torch.Tensor], list[list[int]]]:
    """Run the ring schedule on real tensors (one per worker, same shape).

    Returns (every worker's result, bytes sent per step per worker [step][worker]). The
    result equals sum(tensors) on every worker; the tensor is cut into n near-equal chunks.
    """
    n = len(tensors)
    if n < 2:
        raise ValueError(f"ring_allreduce needs 2+ tensors (one per worker), got {n}.")
    for i, t in enumerate(tensors):
        check_tensor(t, f"tensors[{i}]")
        if t.shape != tensors[0].shape:
            raise ValueError(
                f"every worker's tensor must have the same shape: tensors[0] is "
                f"{tuple(tensors[0].shape)}, tensors[{i}] is {tuple(t.shape)}."
            )
    schedule = schedule or ring_schedule(n)
    bufs = [list(t.detach().flatten().clone().tensor_split(n)) for t in tensors]
    sent: list[list[int]] = []
    for s, step in enumerate(schedule):
        msgs = [(src, c, bufs[src][c].clone()) for src, c in step]  # simultaneous sends
        sent.append([0] * n)
        for src, c, payload in msgs:
            dst = (src + 1) % n
            if s < n - 1:
                bufs[dst][c] = bufs[dst][c] + payload
            else:
                bufs[dst][c] = payload
            sent[-1][src] += payload.numel() * payload.element_size()
    shape = tensors[0].shape
    return [torch.cat(b).view(shape) for b in bufs], sent


def ring_bytes_per_worker(n: int, size_bytes: float) -> float:
    """Bytes each worker sends (and receives) in one ring all-reduce: 2 (n-1)/n * size."""
    _check_count(n, "n (workers)")
    _check_size(size_bytes, "size_bytes")
    return 2 * (n - 1) / n * size_bytes


def parameter_server_bytes(n: int, size_bytes: float) -> dict[str, float]:
    """Per step: every worker sends its gradient and receives the parameters (size each);
    the server receives n * size and sends n * size."""
    _check_count(n, "n (workers)")
    _check_size(size_bytes, "size_bytes")
    return {
        "worker_sent": size_bytes,
        "server_received": n * size_bytes,
        "server_sent": n * size_bytes,
    }


# ----------------------------------------------------------------------------- ZeRO memory


def zero_memory(
    params: float,
    n_gpus: int,
    stage: int,
    k: float = 12,
    bytes_param: float = 2,
    bytes_grad: float = 2,
    offload: bool = False,
) -> dict[str, float]:
    """Model-state bytes per GPU under ZeRO ``stage`` (0 = plain data parallel, 1, 2, 3).

    params Psi, K bytes of optimizer state per parameter (12 for mixed-precision Adam:
    fp32 master weights + momentum + variance). Stage 1 divides the optimizer term by
    n_gpus, stage 2 also the gradients, stage 3 also the parameters. offload=True is
    ZeRO-Offload: the (partitioned) gradients and optimizer states live in CPU memory, so
    they leave 'gpu' and appear in 'cpu'; only the parameters stay on the GPU.
    Returns {'params', 'grads', 'optimizer', 'gpu', 'cpu'} in bytes (per GPU / per rank).
    """
    if isinstance(stage, bool) or stage not in (0, 1, 2, 3):
        raise ValueError(f"ZeRO stage must be 0, 1, 2 or 3, got {stage!r}.")
    _check_count(n_gpus, "n_gpus")
    if _check_size(params, "params (number of parameters)") == 0:
        raise ValueError("params (number of parameters) must be > 0, got 0.")
    _check_size(k, "k (optimizer bytes per parameter)")
    _check_size(bytes_param, "bytes_param")
    _check_size(bytes_grad, "bytes_grad")
    p = bytes_param * params / (n_gpus if stage >= 3 else 1)
    g = bytes_grad * params / (n_gpus if stage >= 2 else 1)
    o = k * params / (n_gpus if stage >= 1 else 1)
    if offload:
        return {"params": p, "grads": g, "optimizer": o, "gpu": p, "cpu": g + o}
    return {"params": p, "grads": g, "optimizer": o, "gpu": p + g + o, "cpu": 0.0}


# ----------------------------------------------------------------------------- DDP reference

WORLD = 2
GLOBAL_BATCH = 32
STEPS = 8
LR = 0.1


def make_model(seed: int = 0) -> nn.Sequential:
    """The small MLP every rank builds (same seed -> same initial weights on every rank)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
    )


def global_batches(
    steps: int, batch: int, seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` fixed (x, y) batches of ``batch`` digits (x flattened to 64 features)."""
    split = data.digits(seed)["train"]
    order = torch.randperm(len(split.y), generator=torch.Generator().manual_seed(seed))
    out = []
    for s in range(steps):
        idx = order[(s * batch) % len(order) :][:batch]
        out.append((split.x[idx].flatten(1), split.y[idx]))
    return out


def train_single(
    steps: int = STEPS, batch: int = GLOBAL_BATCH, lr: float = LR, seed: int = 0
) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Single-process SGD on the global batches: (loss per step, final state_dict)."""
    model = make_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for x, y in global_batches(steps, batch, seed):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}


def launch(
    nproc: int = WORLD, timeout: float = 240, extra_args: list[str] | None = None
) -> dict[str, object]:
    """Run ``labkit.distributed.worker`` under torchrun on ``nproc`` CPU processes (gloo).

    Equivalent shell command:
        torchrun --standalone --nproc_per_node=2 -m labkit.distributed.worker --out results.pt
    Returns the dict rank 0 saved (rank 0's 'worker_seconds' per phase, start-up included),
    plus 'launch_seconds' (wall time of the whole launch).
    """
    if not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be a positive integer (processes to start), got {nproc!r}.")
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.pt"
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "labkit.distributed.worker",
            "--out",
            str(out),
            *(extra_args or []),
        ]
        env = dict(
            os.environ,
            OMP_NUM_THREADS="1",
            PYTHONPATH=str(root),
            LABKIT_LAUNCH_TIME=str(time.time()),
        )
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=root
        )
        seconds = time.perf_counter() - t0
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout)[-2000:]
            raise RuntimeError(f"torchrun failed (exit {proc.returncode}):\n{tail}")
        results = torch.load(out, weights_only=True)
    results["launch_seconds"] = seconds
    return results


def state_max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between two state_dicts with the same keys."""
    if set(a) != set(b):
        raise ValueError(f"state_dicts differ in keys: {sorted(set(a) ^ set(b))}")
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


# ----------------------------------------------------------------------------- optimizer / param bytes


def tensor_bytes(tensors: object) -> int:
    """Bytes of every tensor found in a (nested) dict/list/tuple (DTensors: local shard)."""
    if isinstance(tensors, torch.Tensor):
        t = tensors.to_local() if hasattr(tensors, "to_local") else tensors
        return t.numel() * t.element_size()
    if isinstance(tensors, dict):
        return sum(tensor_bytes(v) for v in tensors.values())
    if isinstance(tensors, list | tuple):
        return sum(tensor_bytes(v) for v in tensors)
    return 0


def optimizer_state_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes of the optimizer's state tensors on this process (Adam: exp_avg, exp_avg_sq, step)."""
    return tensor_bytes(list(opt.state.values()))


# ----------------------------------------------------------------------------- activation checkpointing


def deep_mlp(depth: int = 16, width: int = 512, seed: int = 0) -> nn.Sequential:
    """depth x [Linear(width, width), ReLU]: activations dominate memory for a large batch."""
    _check_count(depth, "depth")
    _check_count(width, "width")
    nbytes = 4 * depth * (width * width + width)
    if nbytes > MAX_BYTES:
        raise ValueError(
            f"deep_mlp(depth={depth}, width={width}) needs {nbytes / 2**30:.1f} GiB of fp32 "
            f"weights, more than {MAX_BYTES / 2**30:.0f} GiB; use a smaller width or depth."
        )
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers)


def forward_backward(model: nn.Sequential, x: torch.Tensor, segments: int = 0) -> torch.Tensor:
    """loss = mean(model(x)^2); backward. segments > 0 checkpoints the model in that many
    segments (checkpoint_sequential: only segment inputs are stored, each segment but the
    last is recomputed in backward)."""
    from torch.utils.checkpoint import checkpoint_sequential

    if segments:
        out = checkpoint_sequential(model, segments, x, use_reentrant=False)
    else:
        out = model(x)
    loss = out.pow(2).mean()
    loss.backward()
    return loss.detach()


def saved_activation_bytes(model: nn.Sequential, x: torch.Tensor, segments: int = 0) -> int:
    """Bytes of activations the forward pass leaves for backward (unique storages,
    parameters not counted), caught with saved-tensor hooks.

    Plain: each Linear saves its input, each ReLU its output. With ``segments`` the
    checkpointed segments save only their inputs (the last segment runs normally); backward
    then recomputes one segment at a time, which ``peak_tensor_bytes`` also counts.
    """
    from torch.utils.checkpoint import checkpoint_sequential

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        if segments:  # reentrant checkpointing saves the segment inputs through autograd
            out = checkpoint_sequential(model, segments, x, use_reentrant=True)
        else:
            out = model(x)
        out.pow(2).mean()
    return sum(seen.values())


class _LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of tensor storages created inside the mode that are still alive."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[int, weakref.ref]] = {}
        self.now = 0
        self.peak = 0

    def _freed(self, key: int) -> None:
        self.now -= self.live.pop(key)[0]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        inputs = {
            id(t.untyped_storage())
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor)
        }
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                continue
            st = t.untyped_storage()
            key = id(st)
            if key in self.live or key in inputs:  # a view or an in-place result
                continue
            self.live[key] = (st.nbytes(), weakref.ref(st, lambda _r, k=key: self._freed(k)))
            self.now += st.nbytes()
            self.peak = max(self.peak, self.now)
        return out


def peak_tensor_bytes(fn: Callable[..., object], *args: object, **kwargs: object) -> int:
    """Peak bytes of tensors allocated by ``fn(*args, **kwargs)`` and alive at the same time.

    Every op's new output storage is counted when created and uncounted when freed
    (a TorchDispatchMode plus weak references), so the result is what a caching allocator's
    peak would show above the memory in use before the call: activations, gradients
    flowing backward, recomputed segments and temporaries. Exact and device-independent
    (CPU here; torch.cuda.max_memory_allocated measures the same on a GPU).
    """
    mode = _LiveTensorBytes()
    with mode:
        fn(*args, **kwargs)
    return mode.peak


def checkpoint_costs(
    model: nn.Sequential, x: torch.Tensor, segments: list[int]
) -> list[dict[str, float]]:
    """For each number of segments (0 = no checkpointing): the activations the forward pass
    saves and the peak tensor memory of one forward+backward, both exact bytes.

    Parameter gradients exist before measuring, so the peak is activations and
    temporaries, not the .grad buffers. Time is measured separately (checkpoint_timing).
    """
    _check_segments(model, segments)
    check_tensor(x, "x", ndim=2)
    _check_activations(model, x)
    x = x.detach().requires_grad_(True)
    forward_backward(model, x, 0)  # creates the .grad buffers once
    return [
        {
            "segments": k,
            "saved_bytes": float(saved_activation_bytes(model, x, k)),
            "peak_bytes": float(peak_tensor_bytes(forward_backward, model, x, k)),
        }
        for k in segments
    ]


def segment_label(k: int) -> str:
    """'none' for 0 segments, else 'k segments' (the names used by checkpoint_timing)."""
    return "none" if k == 0 else f"{k} segments"


def checkpoint_timing(
    model: nn.Sequential,
    x: torch.Tensor,
    segments: list[int],
    rounds: int = 5,
    repeats: int = 3,
    threads: int = 1,
) -> bench.Comparison:
    """Forward+backward time per number of segments, with labkit.bench.compare: every round
    times each setting in alternating order, the first entry of ``segments`` is the baseline.
    Variant names are segment_label(k); speed-up < 1 means slower than the baseline.
    """
    _check_segments(model, segments)
    check_tensor(x, "x", ndim=2)
    _check_activations(model, x)
    x = x.detach().requires_grad_(True)
    forward_backward(model, x, 0)  # creates the .grad buffers once

    def step(k: int) -> None:
        with torch.enable_grad():  # bench.compare times under no_grad; backward needs grad
            forward_backward(model, x, k)

    fns = {segment_label(k): functools.partial(step, k) for k in segments}
    return bench.compare(
        fns, baseline=segment_label(segments[0]), rounds=rounds, repeats=repeats, threads=threads
    )


def _check_activations(model: nn.Sequential, x: torch.Tensor) -> None:
    """Refuse a forward+backward whose activations (about 2 per module) exceed MAX_BYTES."""
    need = 2 * len(model) * x.numel() * x.element_size()
    if need > MAX_BYTES:
        raise ValueError(
            f"x of shape {tuple(x.shape)} through {len(model)} modules keeps about "
            f"{need / 2**30:.1f} GiB of activations, more than {MAX_BYTES / 2**30:.0f} GiB; "
            "use a smaller batch."
        )


def _check_segments(model: nn.Sequential, segments: list[int]) -> None:
    if not segments or any(not isinstance(k, int) or k < 0 or k > len(model) for k in segments):
        raise ValueError(f"segments must be integers in 0..{len(model)}, got {segments!r}.")
    if len(set(segments)) != len(segments):
        raise ValueError(f"segments must not repeat, got {segments!r}.")
