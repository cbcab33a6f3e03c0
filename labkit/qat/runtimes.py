"""The quantizers a deployer would actually use, against labkit's fake-quant simulator.

PyTorch's eager int8 (torch.ao.quantization, x86/fbgemm kernels), optionally torchao, and
ONNX Runtime's quantize_static / quantize_dynamic: test accuracy, bytes on disk, and the
int8 kernels timed against each runtime's own FP32 with one ``bench.compare`` per runtime.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labkit.core import bench, models, onnx
from labkit.core.errors import (
    check_finite,
    check_int,
    check_model,
    check_nonempty,
    check_tensor,
    require,
)
from labkit.core.train import accuracy
from labkit.qat.lesson import size_bytes


@contextlib.contextmanager
def _allow_nondeterministic() -> Iterator[None]:
    """Switch torch.use_deterministic_algorithms off inside the block, restore it after.

    torch.ao's int8 CPU kernels (quantized_resize_cpu_) have no deterministic mode: with
    labkit.env.setup's deterministic flag (warn_only) every call prints a C++ warning to stderr.
    Integer kernels are deterministic for a fixed thread count anyway.
    """
    on = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(on, warn_only=warn_only)


def torch_int8(model: nn.Module, calib: list[torch.Tensor] | None = None) -> nn.Module:
    """PyTorch's own eager-mode int8 (torch.ao.quantization, x86/fbgemm kernels).

    calib given: static (Conv/Linear + ReLU fused, QuantStub/DeQuantStub, HistogramObserver
    activations, per-channel weights); else dynamic (Linear only, activations quantised per
    call). torch.ao.quantization is deprecated (its successor is the separate torchao
    package); its DeprecationWarnings are silenced here.

    Taught in notebooks/11_streaming_generation.ipynb, "6. Dynamic INT8 weights".
    """
    _check_torch_int8(model, calib)
    tq = torch.ao.quantization
    m = copy.deepcopy(models.fold_batchnorm(model)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if calib is None:
            return tq.quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8)
        names = [n for n, _ in m.named_children()]
        pairs = [  # Conv/Linear followed by ReLU: one fused int8 module
            [a, b]
            for a, b in zip(names, names[1:], strict=False)
            if isinstance(m.get_submodule(a), nn.Conv2d | nn.Linear)
            and isinstance(m.get_submodule(b), nn.ReLU)
        ]
        if pairs:
            m = tq.fuse_modules(m, pairs)
        w = tq.QuantWrapper(m)
        w.qconfig = tq.get_default_qconfig("x86")
        tq.prepare(w, inplace=True)
        with torch.no_grad(), _allow_nondeterministic():
            for x in calib:
                w(x)
        return tq.convert(w.eval())


def _torchao_int8(model: nn.Module) -> nn.Module:
    """torchao (PyTorch's successor quantisation library): int8 dynamic activations + int8
    weights on every Linear. Optional package: MissingDependency when torchao is absent."""
    ao = require("torchao.quantization", "torchao", why="PyTorch's new quantisation library")
    m = copy.deepcopy(models.fold_batchnorm(model)).eval()
    ao.quantize_(m, ao.Int8DynamicActivationInt8WeightConfig())
    return m


def runtime_table(
    model: nn.Module,
    calib: list[torch.Tensor],
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    labkit_int8: nn.Module,
    *,
    batch: int = 32,
    rounds: int = 15,
    repeats: int = 5,
    include_torchao: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, bench.Comparison]]:
    """FP32 vs labkit's fake-quant int8 vs PyTorch's and ONNX Runtime's int8 quantizers.

    Returns (rows, comparisons): rows hold each method's test accuracy, size in bytes and a
    note; comparisons["PyTorch"] is one ``bench.compare`` of the PyTorch-side methods against
    "FP32 (PyTorch eager)", comparisons["ONNX Runtime"] one of ORT's int8 models against
    "ORT FP32" (each method timed once, on ``batch`` test images, 1 thread).
    Sizes: torch.save(state_dict) bytes for PyTorch models, file bytes for ONNX, and
    ``size_bytes(., 8)`` for labkit's simulator (what an int8 export would store).

    Taught in notebooks/06_ptq_and_qat.ipynb, "6. The quantizers you would actually use".
    """
    _check_runtime_table(model, calib, x_test, y_test, labkit_int8, batch, rounds, repeats)
    fp32 = models.fold_batchnorm(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's DeprecationWarnings
        methods: dict[str, tuple[Any, int, str]] = {  # name: (callable, bytes, note)
            "FP32 (PyTorch eager)": (fp32, bench.serialized_size_bytes(fp32), "BN folded"),
            "labkit static PTQ int8": (labkit_int8, size_bytes(fp32, 8), "fake-quant simulator"),
        }
        for name, m, note in (
            ("PyTorch int8 static", torch_int8(model, calib), "torch.ao (deprecated)"),
            ("PyTorch int8 dynamic", torch_int8(model), "torch.ao (deprecated)"),
        ):
            methods[name] = (m, bench.serialized_size_bytes(m), note)
        if include_torchao:
            try:
                ao = _torchao_int8(model)
                methods["torchao int8 dynamic"] = (ao, bench.serialized_size_bytes(ao), "eager")
            except Exception as exc:  # optional package
                print(f"torchao skipped: {type(exc).__name__}: {str(exc)[:120]}")
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
        d, xb = Path(tmp), x_test[:batch]  # xb: (batch, ...)
        fp32_path = onnx.export_onnx(fp32, xb, d / "fp32.onnx")
        for name, path, note in (
            ("ORT FP32", fp32_path, "graph opt all"),
            (
                "ORT quantize_static",
                onnx.quantize_static_int8(fp32_path, d / "s.onnx", torch.cat(calib)),
                "QDQ, MinMax, per-channel",
            ),
            (
                "ORT quantize_dynamic",
                onnx.quantize_dynamic_int8(fp32_path, d / "d.onnx"),
                "int8 MatMul",
            ),
        ):  # a session holds the model in memory: the files may go
            run = onnx.ort_runner(onnx.ort_session(path, threads=1))
            methods[name] = (run, onnx.file_size(path), note)
    groups = {"PyTorch": "FP32 (PyTorch eager)", "ONNX Runtime": "ORT FP32"}
    with torch.no_grad(), _allow_nondeterministic(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = [
            {"method": n, "accuracy": accuracy(f, x_test, y_test), "bytes": b, "note": note}
            for n, (f, b, note) in methods.items()
        ]
        comparisons = {
            group: bench.compare(
                {
                    n: (lambda f=f: f(xb))
                    for n, (f, _, _) in methods.items()
                    if n.startswith("ORT") == (group == "ONNX Runtime")
                },
                baseline=base,
                rounds=rounds,
                repeats=repeats,
                threads=1,
            )
            for group, base in groups.items()
        }
    return rows, comparisons


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_torch_int8(model: Any, calib: Any) -> None:
    check_model(model, "model")
    if calib is not None and (not isinstance(calib, list | tuple) or not calib):
        raise ValueError("calib must be a non-empty list of input batches (calibration_batches).")
    for i, x in enumerate(calib or []):
        check_finite(check_tensor(x, f"calib[{i}]"), f"calib[{i}]")


def _check_runtime_table(
    model: Any,
    calib: Any,
    x_test: Any,
    y_test: Any,
    labkit_int8: Any,
    batch: Any,
    rounds: Any = 15,
    repeats: Any = 5,
) -> None:
    _check_torch_int8(model, [] if calib is None else calib)
    check_model(labkit_int8, "labkit_int8")
    check_nonempty(check_tensor(x_test, "x_test"), "x_test")
    if not isinstance(y_test, torch.Tensor) or y_test.shape[:1] != x_test.shape[:1]:
        raise ValueError(f"y_test must be a tensor of {len(x_test)} labels, one per x_test row.")
    check_int(batch, "batch", low=1, high=len(x_test))
    check_int(rounds, "rounds", low=3, high=10_000)  # bench.compare's bounds, checked up front
    check_int(repeats, "repeats", low=1, high=100_000)
