"""Operator fusion: fold BatchNorm into a conv, fuse Q/K/V linears, elementwise chains, ORT levels.

Why fusion pays: most layers besides conv/matmul are *memory-bound*. An elementwise op on n
float32 values does ~1 FLOP per element but moves 8 bytes (read 4, write 4). A chain of L such
ops run one by one moves 2·L·n·4 bytes; fused into one kernel it moves 2·n·4 bytes and does the
same arithmetic. Folding and fusing remove whole passes over memory (and kernel launches).
"""

from __future__ import annotations

import collections
import copy
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labkit.core import bench, models, onnx
from labkit.core.errors import (
    check_int,
    check_model,
    check_nonempty,
    check_tensor,
    require,
    require_cuda,
)

# ---------------------------------------------------------------- vertical fusion: conv + BN


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """One Conv2d equal (to float error) to ``bn(conv(x))`` with bn in eval mode.

    BN in eval computes y = γ·(z − μ)/√(σ² + ε) + β per output channel c, with z = W∗x + b.
    With s_c = γ_c/√(σ²_c + ε) this is one conv with
        W'_c = s_c · W_c            (W: (C_out, C_in/groups, kH, kW), scaled per output channel)
        b'_c = s_c · (b_c − μ_c) + β_c   (b = 0 when the conv has no bias)
    Grouped and depthwise convs fold the same way: each output channel has its own filter.
    The result always has a bias. conv and bn are left unchanged.
    Taught in notebooks/07_operator_fusion.ipynb, "2. Folding BatchNorm into the convolution (exact vertical fusion)".
    """
    _check_fold_conv_bn(conv, bn)
    fused = copy.deepcopy(conv)
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var + bn.eps)  # 1 / √(σ²_c + ε), (C_out,)
        if bn.weight is not None:
            scale = scale * bn.weight  # s_c = γ_c / √(σ²_c + ε)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = (bias - bn.running_mean) * scale  # s_c · (b_c − μ_c), (C_out,)
        if bn.bias is not None:
            new_bias = new_bias + bn.bias
        fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))  # (C_out, C_in/g, kH, kW)
        fused.bias = nn.Parameter(new_bias.to(conv.weight.dtype))
    return fused


def fold_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) with every Conv2d→BatchNorm2d pair of a Sequential folded.

    Works on nn.Sequential containers at any depth (e.g. labkit.models.cnn): the BN is replaced
    by the folded conv and removed. Other layers are kept as they are. The walk is
    labkit.models.fold_batchnorm's; the fold of each pair is ``fold_conv_bn``.
    Taught in notebooks/07_operator_fusion.ipynb, "2. Folding BatchNorm into the convolution (exact vertical fusion)".
    """
    return models.fold_batchnorm(model, fold=fold_conv_bn)  # checks that model is an nn.Module


def count_layers(model: nn.Module, kind: type[nn.Module]) -> int:
    """How many sub-modules of ``model`` are instances of ``kind`` (e.g. nn.BatchNorm2d).

    Taught in notebooks/07_operator_fusion.ipynb, "2. Folding BatchNorm into the convolution (exact vertical fusion)".
    """
    _check_count_layers(model, kind)
    return sum(isinstance(m, kind) for m in model.modules())


# ---------------------------------------------------------------- horizontal fusion: QKV


def fuse_qkv(q: nn.Linear, k: nn.Linear, v: nn.Linear) -> nn.Linear:
    """One Linear computing [q(x), k(x), v(x)] concatenated on the last dim.

    W = cat(W_q, W_k, W_v) along the output dim: shape (d_q + d_k + d_v, d_in);
    b = cat(b_q, b_k, b_v) (a missing bias counts as zeros; no bias at all stays bias=False).
    One GEMM with a 3x wider output reads x once instead of three times and launches one
    kernel instead of three. Split the result with ``split_qkv``.
    Taught in notebooks/07_operator_fusion.ipynb, "4. Horizontal fusion: one GEMM for Q, K and V".
    """
    _check_fuse_qkv(q, k, v)
    layers = (q, k, v)
    has_bias = any(layer.bias is not None for layer in layers)
    out = sum(layer.out_features for layer in layers)
    fused = nn.Linear(
        q.in_features, out, bias=has_bias, dtype=q.weight.dtype, device=q.weight.device
    )
    with torch.no_grad():
        fused.weight.copy_(torch.cat([layer.weight for layer in layers]))  # (d_q+d_k+d_v, d_in)
        if has_bias:
            biases = [
                layer.bias if layer.bias is not None else layer.weight.new_zeros(layer.out_features)
                for layer in layers
            ]
            fused.bias.copy_(torch.cat(biases))  # (d_q + d_k + d_v,)
    return fused


def split_qkv(y: torch.Tensor, sizes: tuple[int, int, int]) -> tuple[torch.Tensor, ...]:
    """Split the fused projection (..., d_q + d_k + d_v) back into (q, k, v).

    Taught in notebooks/07_operator_fusion.ipynb, "4. Horizontal fusion: one GEMM for Q, K and V".
    """
    _check_split_qkv(y, sizes)
    return tuple(y.split(list(sizes), dim=-1))  # (..., d_q), (..., d_k), (..., d_v)


# ---------------------------------------------------------------- elementwise chains (memory wall)

CHAIN_OPS: tuple[tuple[str, Callable[[torch.Tensor], torch.Tensor]], ...] = (
    ("mul", lambda y: y * 1.5),
    ("add", lambda y: y + 0.5),
    ("gelu", F.gelu),
    ("clamp", lambda y: y.clamp(-3.0, 3.0)),
)
# The same chain without GELU: ops that cost ~1 instruction per element, so only memory counts.
CHEAP_OPS: tuple[tuple[str, Callable[[torch.Tensor], torch.Tensor]], ...] = (
    ("mul", lambda y: y * 1.5),
    ("add", lambda y: y + 0.5),
    ("clamp", lambda y: y.clamp(-3.0, 3.0)),
)
OPS = {"gelu": CHAIN_OPS, "cheap": CHEAP_OPS}


def elementwise_chain(x: torch.Tensor, length: int = 8, ops: str = "gelu") -> torch.Tensor:
    """Apply ``length`` elementwise ops one after another.

    ops="gelu": mul, add, gelu, clamp, mul, ... (CHAIN_OPS; GELU evaluates an erf per element)
    ops="cheap": mul, add, clamp, mul, ...      (CHEAP_OPS; about one instruction per element)
    Eager PyTorch runs one kernel per op: each reads the whole tensor from memory and writes
    a new one, so the chain moves 2·length·numel·itemsize bytes (see ``chain_traffic``).
    Taught in notebooks/07_operator_fusion.ipynb, "3. Fusing elementwise chains with `torch.compile`".
    """
    _check_chain(x, length, ops)
    chain = OPS[ops]
    y = x
    for i in range(length):
        y = chain[i % len(chain)][1](y)  # one kernel: reads y, writes a new tensor
    return y


def chain_traffic(numel: int, length: int, itemsize: int = 4) -> dict[str, float]:
    """Bytes moved and FLOPs of ``elementwise_chain`` run op by op vs fused into one kernel.

    unfused bytes = 2·length·numel·itemsize (every op reads and writes the tensor)
    fused bytes   = 2·numel·itemsize        (read x once, write the result once)
    flops         = length·numel            (counting each op as 1 FLOP per element; gelu
                                             costs more)
    intensity = flops / bytes (FLOP per byte).
    Taught in notebooks/07_operator_fusion.ipynb, "1. The memory wall".
    """
    _check_traffic(itemsize, numel=numel, length=length)
    flops = float(length * numel)
    unfused = float(2 * length * numel * itemsize)
    fused = float(2 * numel * itemsize)
    return {
        "flops": flops,
        "bytes_unfused": unfused,
        "bytes_fused": fused,
        "intensity_unfused": flops / unfused,
        "intensity_fused": flops / fused,
    }


def matmul_traffic(n: int, itemsize: int = 4) -> dict[str, float]:
    """FLOPs and minimum bytes of an (n x n) @ (n x n) matmul: 2n³ FLOPs, 3n²·itemsize bytes.

    Taught in notebooks/07_operator_fusion.ipynb, "1. The memory wall".
    """
    _check_traffic(itemsize, n=n)
    flops = 2.0 * n**3
    nbytes = 3.0 * n * n * itemsize  # read A and B, write C
    return {"flops": flops, "bytes": nbytes, "intensity": flops / nbytes}


def _no_graph_cache_across_isas() -> None:
    """With ATEN_CPU_CAPABILITY set (CI's forced-ISA passes), switch off Inductor's FX graph cache.

    Its key does not include the forced vector ISA (torch 2.14), so a graph compiled natively
    (AVX-512 code, 16 floats a step) is reused under ATEN_CPU_CAPABILITY=avx2 and built with
    8-float vectors: half the outputs are garbage, silently; under =default it fails to build
    ('at::vec has not been declared'). Without the cache each run generates code for its ISA.
    """
    import torch._inductor.config as inductor_config

    if os.environ.get("ATEN_CPU_CAPABILITY"):
        inductor_config.fx_graph_cache = False


def compile_timed(fn: Callable[..., Any], *args: Any) -> tuple[Callable[..., Any], float]:
    """``torch.compile(fn)`` and the seconds its first call takes (tracing + codegen + C++ build).

    The first call compiles (Dynamo captures the graph, Inductor writes fused C++/OpenMP loops
    on CPU or Triton kernels on GPU and builds them); later calls with the same shapes reuse it.
    Taught in notebooks/07_operator_fusion.ipynb, "3. Fusing elementwise chains with `torch.compile`".
    """
    _check_compile_timed(fn)
    # On a CPU-only machine torch warns once that it found no CUDA runtime: irrelevant here.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    _no_graph_cache_across_isas()
    compiled = torch.compile(fn)
    t0 = time.perf_counter()
    with torch.no_grad():
        compiled(*args)
    return compiled, time.perf_counter() - t0


def cuda_chain_speedup(
    numel: int = 1 << 24, length: int = 8, repeats: int = 20
) -> dict[str, float]:
    """On a CUDA GPU: eager vs torch.compile (Inductor -> one Triton kernel) on the elementwise
    chain. Returns compile seconds, eager and compiled median ms, and the speed-up.
    Raises MissingDependency without a GPU.
    Taught in notebooks/07_operator_fusion.ipynb, "3. Fusing elementwise chains with `torch.compile`".
    """
    _check_cuda_chain_speedup(numel, length, repeats)
    dev = require_cuda("torch.compile with Triton kernels")
    x = torch.randn(numel, device=dev)
    compiled, seconds = compile_timed(lambda t: elementwise_chain(t, length), x)
    eager = bench.latency(elementwise_chain, x, length, repeats=repeats).median_ms
    fused = bench.latency(compiled, x, repeats=repeats).median_ms
    return {"compile_s": seconds, "eager_ms": eager, "compiled_ms": fused, "speedup": eager / fused}


# ---------------------------------------------------------------- ONNX Runtime graph optimisation

# Export and session options are the course's ONNX plumbing (labkit.onnx.export_onnx,
# labkit.onnx.session_options). The levels are read from the installed onnxruntime
# (ort_graph_levels), so a level it adds (ORT_ENABLE_LAYOUT) shows up in the table. Export for
# this lesson with exporter_optimize=False, so the graph keeps the BatchNormalization nodes
# that ORT's levels fuse.


def op_counts(path: str | Path) -> collections.Counter[str]:
    """Node types of an ONNX file, as 'domain:OpType' for non-standard domains, else 'OpType'.

    Used by ort_levels (labkit/fusion/lesson.py).
    """
    onnx_pkg = require("onnx")
    graph = onnx_pkg.load(str(onnx.check_onnx_file(path))).graph
    return collections.Counter(
        f"{n.domain}:{n.op_type}" if n.domain else n.op_type for n in graph.node
    )


def ort_graph_levels() -> dict[str, str]:
    """{short name: member of onnxruntime.GraphOptimizationLevel} for every level the installed
    onnxruntime has, lowest first: "disable_all" (ORT_DISABLE_ALL), "basic", "extended",
    "layout" (ORT_ENABLE_LAYOUT, where this onnxruntime has it) and "all" (ORT_ENABLE_ALL:
    every level, including ones a newer onnxruntime may add). Read from onnxruntime itself,
    not from a list typed here.

    Taught in notebooks/07_operator_fusion.ipynb, "5. ONNX Runtime graph optimisation levels".
    """
    ort = require("onnxruntime")
    members = sorted(ort.GraphOptimizationLevel.__members__.items(), key=lambda kv: int(kv[1]))
    return {
        "disable_all"
        if name == "ORT_DISABLE_ALL"
        else name.removeprefix("ORT_ENABLE_").lower(): name
        for name, _ in members
    }


def _session(path: Path, level: str, threads: int, optimized_path: Path) -> Any:
    """An ORT CPU session of ``path`` at the GraphOptimizationLevel member ``level``."""
    ort = require("onnxruntime")
    so = onnx.session_options(threads, "disable_all", optimized_path=optimized_path)
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_levels(
    path: str | Path,
    example: torch.Tensor,
    *,
    threads: int = 2,
    rounds: int = 7,
    repeats: int = 10,
) -> list[dict[str, Any]]:
    """Node count, node types, latency and parity of the same ONNX model at each ORT level.

    For each level of ``ort_graph_levels()`` (the installed onnxruntime's): build a session
    that also saves its optimised graph, count the nodes, list the node types the level
    produced that the original graph did not have (the fused ones, e.g.
    com.microsoft:FusedConv) and those it removed, the largest |difference| of the output vs
    the unoptimised graph, and the latency: all levels timed in one interleaved
    labkit.bench.compare against ``disable_all`` (median ms, speed-up t(disable_all) / t(level),
    its IQR over rounds, and the verdict sentence).
    Taught in notebooks/07_operator_fusion.ipynb, "5. ONNX Runtime graph optimisation levels".
    """
    path = _check_ort_levels(path, example)
    x = {"x": example.detach().numpy()}
    original = op_counts(path)
    rows: list[dict[str, Any]] = []
    sessions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for short, member in ort_graph_levels().items():
            opt_path = Path(tmp) / f"{short}.onnx"
            sessions[short] = _session(path, member, threads, opt_path)
            ops = op_counts(opt_path)
            out = torch.from_numpy(sessions[short].run(None, x)[0])
            reference = out if not rows else rows[0]["_out"]
            rows.append(
                {
                    "level": short,
                    "ORT name": member,
                    "nodes": sum(ops.values()),
                    "new node types": ", ".join(sorted(set(ops) - set(original))) or "-",
                    "removed node types": ", ".join(sorted(set(original) - set(ops))) or "-",
                    "max_abs_diff": (out - reference).abs().max().item(),
                    "_ops": ops,
                    "_out": out,
                }
            )
    fns = {level: (lambda s=sess: s.run(None, x)) for level, sess in sessions.items()}
    cmp = bench.compare(
        fns, baseline=rows[0]["level"], rounds=rounds, repeats=repeats, threads=threads
    )
    for i, row in enumerate(rows):
        del row["_out"]
        row["same graph as the level below"] = i > 0 and row["_ops"] == rows[i - 1]["_ops"]
        level = row["level"]
        row["latency_ms"] = cmp.median_ms[level]
        row["speedup"] = cmp.speedup[level]
        row["iqr"] = cmp.spread[level]
        row["verdict"] = "baseline" if level == cmp.baseline else cmp.verdict(level)
    for row in rows:
        del row["_ops"]
    return rows


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_fold_conv_bn(conv: Any, bn: Any) -> None:
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"conv must be an nn.Conv2d, got {type(conv).__name__}.")
    if not isinstance(bn, nn.BatchNorm2d):
        raise ValueError(f"bn must be an nn.BatchNorm2d, got {type(bn).__name__}.")
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f"bn has {bn.num_features} channels but conv has {conv.out_channels} outputs; "
            "fold the BN that directly follows this conv."
        )
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            "bn has no running statistics (track_running_stats=False): it normalises with "
            "batch statistics, which cannot be folded into fixed weights."
        )
    c = (conv.out_channels,)
    for name in ("running_mean", "running_var", "weight", "bias"):
        t = getattr(bn, name)
        if t is not None and tuple(t.shape) != c:
            raise ValueError(
                f"bn.{name} has shape {tuple(t.shape)} but conv has {c[0]} output channels; "
                f"bn.{name} must have shape {c}."
            )
    stats = torch.cat([bn.running_mean, bn.running_var, bn.running_var + bn.eps])
    if not bool(torch.isfinite(stats).all() and (bn.running_var + bn.eps > 0).all()):
        raise ValueError(
            "bn.running_mean must be finite and bn.running_var + bn.eps finite and > 0; "
            "these statistics are broken (recompute them, e.g. by training in train mode)."
        )


def _check_ort_levels(path: Any, example: Any) -> Path:
    check_nonempty(check_tensor(example, "example"), "example")
    path = onnx.check_onnx_file(path)
    graph_input = require("onnx").load(str(path), load_external_data=False).graph.input[0]
    if graph_input.name != "x":
        raise ValueError(
            f"the graph's input is named {graph_input.name!r}, but ort_levels feeds 'x': export "
            "path with labkit.onnx.export_onnx(..., input_name='x')."
        )
    tensor_type = graph_input.type.tensor_type
    want = [d.dim_value if d.dim_value > 0 else None for d in tensor_type.shape.dim]
    fits = len(want) == example.ndim and all(
        w is None or w == e for w, e in zip(want, example.shape, strict=False)
    )
    np_dtype = str(require("onnx").helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    if not fits or str(example.dtype).removeprefix("torch.") != np_dtype:
        shape = ["batch" if w is None else w for w in want]
        raise ValueError(
            f"example must match the graph's input x: shape {shape} and dtype {np_dtype}, got "
            f"{tuple(example.shape)} {example.dtype}: pass a batch of the inputs the model was "
            "exported with (e.g. example.float())."
        )
    return path


def _check_count_layers(model: Any, kind: Any) -> None:
    check_model(model, "model")
    if not (isinstance(kind, type) and issubclass(kind, nn.Module)):
        raise ValueError(f"kind must be an nn.Module class such as nn.BatchNorm2d, got {kind!r}.")


def _check_fuse_qkv(q: Any, k: Any, v: Any) -> None:
    layers = (q, k, v)
    for name, layer in zip("qkv", layers, strict=True):
        if not isinstance(layer, nn.Linear):
            raise ValueError(
                f"{name} must be an nn.Linear (the {name.upper()} projection), got "
                f"{type(layer).__name__}: fuse_qkv fuses three nn.Linear layers."
            )
    if len({layer.in_features for layer in layers}) != 1:
        raise ValueError(
            "q, k and v must read the same input size, got in_features "
            f"{[layer.in_features for layer in layers]}."
        )
    if len({(layer.weight.dtype, layer.weight.device) for layer in layers}) != 1:
        raise ValueError("q, k and v must have one dtype and one device; move them with .to().")


def _check_split_qkv(y: Any, sizes: Any) -> None:
    check_nonempty(check_tensor(y, "y"), "y")
    if not isinstance(sizes, tuple | list) or len(sizes) != 3:
        raise ValueError(f"sizes must be three ints (d_q, d_k, d_v), got {sizes!r}.")
    for s in sizes:
        check_int(s, "sizes", low=0)
    if y.ndim == 0:
        raise ValueError(
            "y must have a last dim to split (..., d_q + d_k + d_v), got a 0-d tensor."
        )
    last = y.shape[-1]
    if last != sum(sizes):
        raise ValueError(f"last dim {last} does not match sizes {sizes} (sum {sum(sizes)}).")


def _check_chain(x: Any, length: Any, ops: Any) -> None:
    check_nonempty(check_tensor(x, "x"), "x")
    check_int(length, "length", low=1, high=1000)
    if ops not in OPS:
        raise ValueError(f"ops must be 'gelu' or 'cheap', got {ops!r}.")


def _check_traffic(itemsize: Any, **counts: Any) -> None:
    for name, value in counts.items():
        check_int(value, name, low=1)
    if check_int(itemsize, "itemsize", low=1) not in (1, 2, 4, 8):
        raise ValueError(
            f"itemsize is bytes per element: 1 (int8), 2 (fp16/bf16), 4 (fp32) or 8 (fp64), "
            f"got {itemsize}."
        )


def _check_compile_timed(fn: Any) -> None:
    if not callable(fn):
        raise ValueError(
            f"fn must be a function or an nn.Module to compile, got {type(fn).__name__}: pass "
            "the function itself (fusion.elementwise_chain), then its arguments."
        )


def _check_cuda_chain_speedup(numel: Any, length: Any, repeats: Any) -> None:
    check_int(numel, "numel", low=1, high=1 << 28)  # 1 GiB of float32 at most
    check_int(length, "length", low=1, high=1000)
    check_int(repeats, "repeats", low=1)
