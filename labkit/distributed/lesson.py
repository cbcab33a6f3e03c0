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
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# checkpoint_sequential under another name: tests/test_lesson_style.py reads check*(...) as a guard
from torch.utils.checkpoint import checkpoint_sequential as run_segments

from labkit.core import bench, data
from labkit.core.errors import (
    check_bool,
    check_int,
    check_model,
    check_nonempty,
    check_number,
    check_positive,
    check_tensor,
)
from labkit.core.paths import ROOT
from labkit.core.probes import peak_tensor_bytes, saved_tensor_bytes

MAX_BYTES = 4 * 2**30  # refuse demos that would allocate more than this on a laptop
MAX_WORKERS = 4096  # a simulated ring larger than this is only a formula: use ring_bytes_per_worker
MAX_PROCS = 64  # torchrun processes on one CPU machine
MAX_STEPS = 10_000  # training steps of the reference runs (each a few ms)


# ----------------------------------------------------------------------------- ring all-reduce


def ring_schedule(n: int) -> list[list[tuple[int, int]]]:
    """The ring all-reduce schedule for n workers: 2(n-1) steps of n (sender, chunk) pairs.

    In every step worker i sends one chunk to worker (i + 1) % n, all at the same time.
    Steps 0 .. n-2 (reduce-scatter): worker i sends chunk (i - s) % n; the receiver ADDS it.
    Steps n-1 .. 2n-3 (all-gather): worker i sends chunk (i + 1 - s) % n; the receiver COPIES.
    After reduce-scatter worker i owns the full sum of chunk (i + 1) % n.
    The worked solution of the exercise (solutions/n12_distributed_training.py) is a deliberate
    copy, checked against this function.
    Taught in notebooks/12_distributed_training.ipynb, "1. Data parallelism and the all-reduce".
    """
    _check_ring(n)
    reduce = [[(i, (i - s) % n) for i in range(n)] for s in range(n - 1)]
    gather = [[(i, (i + 1 - s) % n) for i in range(n)] for s in range(n - 1)]
    return reduce + gather


def ring_allreduce(
    tensors: list[torch.Tensor], schedule: list[list[tuple[int, int]]] | None = None
) -> tuple[list[torch.Tensor], list[list[int]]]:
    """Run the ring schedule on real tensors (one per worker, same shape).

    Returns (every worker's result, bytes sent per step per worker [step][worker]). The
    result equals sum(tensors) on every worker; the tensor is cut into n near-equal chunks.
    Taught in notebooks/12_distributed_training.ipynb, "1. Data parallelism and the all-reduce".
    """
    _check_allreduce(tensors, schedule)
    n = len(tensors)
    schedule = schedule or ring_schedule(n)
    bufs = [list(t.detach().flatten().clone().tensor_split(n)) for t in tensors]  # [worker][chunk]
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
    return [torch.cat(b).view(shape) for b in bufs], sent  # n chunks -> (numel,) -> shape


def ring_bytes_per_worker(n: int, size_bytes: float) -> float:
    """Bytes each worker sends (and receives) in one ring all-reduce: 2 (n-1)/n * size.

    Taught in notebooks/12_distributed_training.ipynb, "1. Data parallelism and the all-reduce".
    """
    _check_traffic(n, size_bytes)
    return 2 * (n - 1) / n * size_bytes


def parameter_server_bytes(n: int, size_bytes: float) -> dict[str, float]:
    """Per step: every worker sends its gradient and receives the parameters (size each);
    the server receives n * size and sends n * size.

    Taught in notebooks/12_distributed_training.ipynb, "Bytes per step as the number of workers grows".
    """
    _check_traffic(n, size_bytes)
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
    offload_params: bool = False,
) -> dict[str, float]:
    """Model-state bytes per GPU under ZeRO ``stage`` (0 = plain data parallel, 1, 2, 3).

    params Psi, K bytes of optimizer state per parameter (12 for mixed-precision Adam:
    fp32 master weights + momentum + variance). Stage 1 divides the optimizer term by
    n_gpus, stage 2 also the gradients, stage 3 also the parameters. offload=True is
    ZeRO-Offload: the (partitioned) gradients and optimizer states live in CPU memory, so
    they leave 'gpu' and appear in 'cpu'; only the parameters stay on the GPU.
    offload_params=True (stage 3 only; DeepSpeed's offload_param with offload_optimizer,
    FSDP2's CPUOffloadPolicy) moves the parameter shard to CPU memory as well: every model
    state lives on the CPU and the GPU holds only the layers being gathered (not counted).
    Returns {'params', 'grads', 'optimizer', 'gpu', 'cpu'} in bytes (per GPU / per rank).
    Taught in notebooks/12_distributed_training.ipynb, "4. ZeRO: who needs all that memory?".
    """
    _check_zero(params, n_gpus, stage, (k, bytes_param, bytes_grad), offload, offload_params)
    p = bytes_param * params / (n_gpus if stage >= 3 else 1)
    g = bytes_grad * params / (n_gpus if stage >= 2 else 1)
    o = k * params / (n_gpus if stage >= 1 else 1)
    on_cpu = (p if offload_params else 0.0) + (g + o if offload or offload_params else 0.0)
    return {"params": p, "grads": g, "optimizer": o, "gpu": p + g + o - on_cpu, "cpu": on_cpu}


# ----------------------------------------------------------------------------- DDP reference

WORLD = 2
GLOBAL_BATCH = 32
STEPS = 8
LR = 0.1


def train_single(
    steps: int = STEPS, batch: int = GLOBAL_BATCH, lr: float = LR, seed: int = 0
) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Single-process SGD on the global batches: (loss per step, final state_dict).

    The reference DDP must match: averaging the gradients of N equal shards of a batch gives
    the gradient of the whole batch, so both take the same steps.
    Taught in notebooks/12_distributed_training.ipynb, "2. Real DDP on two CPU processes".
    """
    _check_batches(steps, batch, lr, seed)
    model = make_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for x, y in global_batches(steps, batch, seed):  # x (batch, 64), y (batch,)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}


def reference_gradients(batch: int = GLOBAL_BATCH, seed: int = 0) -> dict[str, torch.Tensor]:
    """Gradients of the mean cross-entropy of make_model(seed) on the first global batch, in
    one process: what the pipeline and tensor-parallel runs must reproduce.

    Taught in notebooks/12_distributed_training.ipynb, "8. Pipeline parallelism".
    """
    model = make_model(seed)
    x, y = global_batches(1, batch, seed)[0]  # (batch, 64), (batch,)
    F.cross_entropy(model(x), y).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def state_max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between two state_dicts with the same keys:
    max over keys of max |a[k] - b[k]|.

    Taught in notebooks/12_distributed_training.ipynb, "2. Real DDP on two CPU processes".
    """
    _check_states(a, b)
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def launch(
    nproc: int = WORLD, timeout: float = 240, extra_args: list[str] | None = None
) -> dict[str, object]:
    """Run ``labkit.distributed.worker`` under torchrun on ``nproc`` CPU processes (gloo).

    Equivalent shell command:
        torchrun --standalone --nproc_per_node=2 -m labkit.distributed.worker --out results.pt
    Returns the dict rank 0 saved (rank 0's 'worker_seconds' per phase, start-up included),
    plus 'launch_seconds' (wall time of the whole launch).
    Taught in notebooks/12_distributed_training.ipynb, "2. Real DDP on two CPU processes".
    """
    _check_launch(nproc, timeout, extra_args)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.pt"
        run = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd = [*run, f"--nproc_per_node={nproc}", "-m", "labkit.distributed.worker"]
        cmd += ["--out", str(out), *(extra_args or [])]
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
        env["LABKIT_LAUNCH_TIME"] = str(time.time())
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
        )
        seconds = time.perf_counter() - t0
        results = _read_results(proc, out)
    results["launch_seconds"] = seconds
    return results


def _read_results(proc: subprocess.CompletedProcess, out: Path) -> dict[str, object]:
    """What rank 0 saved, or a RuntimeError with the tail of torchrun's output."""
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise RuntimeError(f"torchrun failed (exit {proc.returncode}):\n{tail}")
    return torch.load(out, weights_only=True)


# the workers' model, data and byte counts (labkit/distributed/worker.py imports them)


def make_model(seed: int = 0) -> nn.Sequential:
    """The small MLP every rank builds (same seed -> same initial weights on every rank).

    Used by train_single (labkit/distributed/lesson.py) and the runs of labkit/distributed/worker.py.
    Taught in notebooks/12_distributed_training.ipynb, "9. Tensor parallelism".
    """
    check_int(seed, "seed")
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
    )


def global_batches(
    steps: int, batch: int, seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` fixed (x, y) batches of ``batch`` digits (x flattened to 64 features).

    Used by train_single (labkit/distributed/lesson.py) and the runs of labkit/distributed/worker.py.
    Taught in notebooks/12_distributed_training.ipynb, "9. Tensor parallelism".
    """
    _check_batches(steps, batch, seed=seed)
    split = data.digits(seed)["train"]
    order = torch.randperm(len(split.y), generator=torch.Generator().manual_seed(seed))
    out = []
    for s in range(steps):
        idx = order[(s * batch) % len(order) :][:batch]
        out.append((split.x[idx].flatten(1), split.y[idx]))  # (batch, 1, 8, 8) -> (batch, 64)
    return out


def tensor_bytes(tensors: object) -> int:
    """Bytes of every tensor found in a (nested) dict/list/tuple (DTensors: local shard):
    sum of numel * element_size.

    Used by run_zero and run_fsdp (labkit/distributed/worker.py).
    """
    _check_tensor_tree(tensors)
    return _tree_bytes(tensors)


def _tree_bytes(tensors: object) -> int:  # leaves that are not tensors (None, numbers) count 0
    if isinstance(tensors, torch.Tensor):
        t = tensors.to_local() if hasattr(tensors, "to_local") else tensors
        return t.numel() * t.element_size()
    if isinstance(tensors, dict):
        return sum(_tree_bytes(v) for v in tensors.values())
    if isinstance(tensors, list | tuple):
        return sum(_tree_bytes(v) for v in tensors)
    return 0


def optimizer_state_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes of the optimizer's state tensors on this process (Adam: exp_avg, exp_avg_sq, step).

    Used by run_zero and run_fsdp (labkit/distributed/worker.py).
    """
    _check_optimizer(opt)
    return tensor_bytes(list(opt.state.values()))


# ----------------------------------------------------------------------------- activation checkpointing


def deep_mlp(depth: int = 16, width: int = 512, seed: int = 0) -> nn.Sequential:
    """depth x [Linear(width, width), ReLU]: activations dominate memory for a large batch.

    Taught in notebooks/12_distributed_training.ipynb, "6. Activation checkpointing: memory for time".
    """
    _check_mlp(depth, width)
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers)


def forward_backward(model: nn.Sequential, x: torch.Tensor, segments: int = 0) -> torch.Tensor:
    """loss = mean(model(x)^2); backward. segments > 0 checkpoints the model in that many
    segments (checkpoint_sequential: only segment inputs are stored, each segment but the
    last is recomputed in backward).

    Taught in notebooks/12_distributed_training.ipynb, "6. Activation checkpointing: memory for time".
    """
    _check_checkpointing(model, x, [segments])
    if segments:
        out = run_segments(model, segments, x, use_reentrant=False)
    else:
        out = model(x)  # (batch, width)
    loss = out.pow(2).mean()
    loss.backward()
    return loss.detach()


def checkpointed_activation_bytes(model: nn.Sequential, x: torch.Tensor, segments: int = 0) -> int:
    """Bytes of activations the forward pass leaves for backward, with ``segments`` checkpointed
    segments (0: none), measured by labkit.probes.saved_tensor_bytes (unique memory,
    parameters not counted).

    Plain: each Linear saves its input, each ReLU its output: about 2 L activations for L
    layers. With k segments the checkpointed segments save only their inputs (the last segment
    runs normally): about k + L/k; backward then recomputes one segment at a time, which
    labkit.probes.peak_tensor_bytes also counts.
    Used by checkpoint_costs (labkit/distributed/lesson.py).
    """
    _check_checkpointing(model, x, [segments])

    def forward() -> torch.Tensor:
        if segments:  # reentrant checkpointing saves the segment inputs through autograd
            out = run_segments(model, segments, x, use_reentrant=True)
        else:
            out = model(x)
        return out.pow(2).mean()

    return saved_tensor_bytes(forward, exclude=model.parameters())


def checkpoint_costs(
    model: nn.Sequential, x: torch.Tensor, segments: list[int]
) -> list[dict[str, float]]:
    """For each number of segments (0 = no checkpointing): the activations the forward pass
    saves and the peak tensor memory of one forward+backward, both exact bytes.

    Parameter gradients exist before measuring, so the peak is activations and
    temporaries, not the .grad buffers. Time is measured separately (checkpoint_timing).
    Taught in notebooks/12_distributed_training.ipynb, "6. Activation checkpointing: memory for time".
    """
    x = _ready_for_checkpointing(model, x, segments)
    return [
        {
            "segments": k,
            "saved_bytes": float(checkpointed_activation_bytes(model, x, k)),
            "peak_bytes": float(peak_tensor_bytes(forward_backward, model, x, k)),
        }
        for k in segments
    ]


def segment_label(k: int) -> str:
    """'none' for 0 segments, else 'k segments' (the names used by checkpoint_timing).

    Taught in notebooks/12_distributed_training.ipynb, "6. Activation checkpointing: memory for time".
    """
    check_int(k, "k (checkpointed segments, 0 = none)", low=0)
    return "none" if k == 0 else f"{k} segments"


def checkpoint_timing(
    model: nn.Sequential,
    x: torch.Tensor,
    segments: list[int],
    rounds: int = 5,
    repeats: int = 3,
    threads: int = 1,
    forward_only: bool = False,
) -> bench.Comparison:
    """Forward+backward time per number of segments, with labkit.bench.compare: every round
    times each setting in alternating order, the first entry of ``segments`` is the baseline.
    Variant names are segment_label(k); speed-up < 1 means slower than the baseline.
    forward_only=True adds the variant "forward only" (the plain forward and loss, with the
    graph built but no backward): its time / the plain step's is the share that recomputing
    the whole forward would add.
    Taught in notebooks/12_distributed_training.ipynb, "6. Activation checkpointing: memory for time".
    """
    x = _ready_for_checkpointing(model, x, segments)

    def step(k: int) -> None:
        with torch.enable_grad():  # bench.compare times under no_grad; backward needs grad
            forward_backward(model, x, k)

    def forward() -> None:
        with torch.enable_grad():
            model(x).pow(2).mean()

    fns = {segment_label(k): functools.partial(step, k) for k in segments}
    if forward_only:
        fns["forward only"] = forward
    return bench.compare(
        fns, baseline=segment_label(segments[0]), rounds=rounds, repeats=repeats, threads=threads
    )


def _ready_for_checkpointing(
    model: nn.Sequential, x: torch.Tensor, segments: list[int]
) -> torch.Tensor:
    """Check the arguments; return x as a leaf that needs grad, after one forward+backward
    that creates the .grad buffers (so later measurements see activations only)."""
    _check_checkpointing(model, x, segments)
    x = x.detach().requires_grad_(True)
    forward_backward(model, x, 0)
    return x


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_ring(n: object) -> None:
    what = "n (workers in the ring, 2 <= n; for more use the formula ring_bytes_per_worker)"
    check_int(n, what, low=2, high=MAX_WORKERS)


def _check_allreduce(tensors: object, schedule: object = None) -> None:
    if not isinstance(tensors, list | tuple) or len(tensors) < 2:
        got = len(tensors) if isinstance(tensors, list | tuple) else type(tensors).__name__
        raise ValueError(f"ring_allreduce needs a list of 2+ tensors (one per worker), got {got}.")
    _check_ring(len(tensors))
    for i, t in enumerate(tensors):
        check_nonempty(check_tensor(t, f"tensors[{i}]"), f"tensors[{i}]")
        if t.shape != tensors[0].shape:
            raise ValueError(
                f"every worker's tensor must have the same shape: tensors[0] is "
                f"{tuple(tensors[0].shape)}, tensors[{i}] is {tuple(t.shape)}."
            )
    n, steps = len(tensors), schedule if isinstance(schedule, list | tuple) else [None]
    ok = len(steps) == 2 * (n - 1) and all(
        isinstance(st, list | tuple) and len(st) == n for st in steps
    )
    if schedule is not None and not ok:
        raise ValueError(
            f"schedule must be a ring schedule for {n} workers: {2 * (n - 1)} steps of {n} "
            f"(sender, chunk) pairs, ids in 0..{n - 1}; e.g. ring_schedule({n}) (or None)."
        )


def _check_traffic(n: object, size_bytes: object) -> None:
    check_int(n, "n (workers)", low=1)
    check_number(size_bytes, "size_bytes", low=0)


def _check_zero(
    params: object, n_gpus: object, stage: object, sizes: tuple, offload: object, off_p: object
) -> None:
    check_int(stage, "stage (ZeRO: 0 = plain DDP, 1, 2 or 3)", low=0, high=3)
    check_int(n_gpus, "n_gpus", low=1)
    check_positive(params, "params (number of parameters)")
    names = ("k (optimizer bytes per parameter)", "bytes_param", "bytes_grad")
    for name, v in zip(names, sizes, strict=True):
        check_number(v, name, low=0)
    for name, v in (("offload", offload), ("offload_params", off_p)):
        check_bool(v, name)
    if off_p and stage != 3:
        raise ValueError(
            f"offload_params=True needs stage=3 (only ZeRO-3 partitions the parameters, so only "
            f"it can move them to CPU), got stage={stage}."
        )


def _check_states(a: object, b: object) -> None:
    for name, s in (("a", a), ("b", b)):
        if not isinstance(s, Mapping) or not s:
            raise ValueError(f"{name} must be a non-empty state_dict (model.state_dict()).")
    if set(a) != set(b):
        raise ValueError(
            f"a and b must have the same keys (state_dicts of one architecture); keys in only "
            f"one of them: {sorted(set(a) ^ set(b))[:8]}."
        )
    for k in a:
        for name, s in (("a", a), ("b", b)):
            if not isinstance(s[k], torch.Tensor):
                raise ValueError(f"{name}[{k!r}] must be a tensor, got {type(s[k]).__name__}.")
        if tuple(a[k].shape) != tuple(b[k].shape):
            raise ValueError(
                f"a[{k!r}] and b[{k!r}] must have the same shape, got "
                f"{tuple(a[k].shape)} and {tuple(b[k].shape)}: compare states of one architecture."
            )


def _check_launch(nproc: object, timeout: object, extra_args: object) -> None:
    check_int(nproc, "nproc (processes to start)", low=1, high=MAX_PROCS)
    check_positive(timeout, "timeout (seconds)")
    ok = isinstance(extra_args, list | tuple) and all(isinstance(a, str) for a in extra_args)
    if extra_args is not None and not ok:
        raise ValueError(f"extra_args must be a list of strings or None, got {extra_args!r}.")


def _check_tensor_tree(tensors: object) -> None:
    if not isinstance(tensors, torch.Tensor | dict | list | tuple):
        raise ValueError(
            f"tensors must be a tensor or a dict/list/tuple of them, got {type(tensors).__name__}; "
            "pass model.state_dict() or list(model.parameters()) (optimizers: optimizer_state_bytes)."
        )


def _check_optimizer(opt: object) -> None:
    if not isinstance(getattr(opt, "state", None), Mapping):
        raise ValueError(
            f"opt must be a torch optimizer (e.g. torch.optim.Adam(...)), got "
            f"{type(opt).__name__}; pass the optimizer itself, not its state_dict or the model."
        )


def _check_batches(steps: object, batch: object, lr: object = LR, seed: object = 0) -> None:
    check_positive(lr, "lr (the SGD learning rate)")
    check_int(seed, "seed")
    check_int(steps, "steps", low=1, high=MAX_STEPS)
    check_int(
        batch,
        f"batch (global batch, at most the {data.SPLIT[0]} training digits)",
        low=1,
        high=data.SPLIT[0],
    )


def _check_mlp(depth: object, width: object) -> None:
    check_int(depth, "depth", low=1)
    check_int(width, "width", low=1)
    nbytes = 4 * depth * (width * width + width)
    if nbytes > MAX_BYTES:
        raise ValueError(
            f"deep_mlp(depth={depth}, width={width}) needs {nbytes / 2**30:.1f} GiB of fp32 "
            f"weights, more than {MAX_BYTES / 2**30:.0f} GiB; use a smaller width or depth."
        )


def _check_checkpointing(model: object, x: object, segments: object) -> None:
    """A Sequential model, x (batch, features), segments: distinct integers in 0..len(model);
    refuse a forward+backward whose activations (about 2 per module) exceed MAX_BYTES."""
    if not isinstance(check_model(model), nn.Sequential):
        raise ValueError(
            f"model must be an nn.Sequential (e.g. deep_mlp()), got {type(model).__name__}."
        )
    check_nonempty(check_tensor(x, "x", ndim=2), "x")
    first = next((m for m in model if isinstance(getattr(m, "in_features", None), int)), None)
    if first is not None and x.shape[1] != first.in_features:
        raise ValueError(
            f"x must have the model's {first.in_features} input features, got shape "
            f"{tuple(x.shape)}; e.g. torch.randn(batch, {first.in_features})."
        )
    if not isinstance(segments, list | tuple) or not segments:
        raise ValueError(f"segments must be a non-empty list of integers, got {segments!r}.")
    for i, k in enumerate(segments):
        check_int(k, f"segments[{i}] (checkpointed segments)", low=0, high=len(model))
    if len(set(segments)) != len(segments):
        raise ValueError(f"segments must not repeat, got {segments!r}.")
    need = 2 * len(model) * x.numel() * x.element_size()
    if need > MAX_BYTES:
        raise ValueError(
            f"x of shape {tuple(x.shape)} through {len(model)} modules keeps about "
            f"{need / 2**30:.1f} GiB of activations, more than {MAX_BYTES / 2**30:.0f} GiB; "
            "use a smaller batch."
        )
