"""TensorRT engines from ONNX files: strongly typed networks, valid on TensorRT 10.x and 11.x.

Pipeline:  .onnx --OnnxParser--> strongly typed INetworkDefinition --build_serialized_network-->
           engine bytes (cached on disk) --Runtime.deserialize_cuda_engine--> execution context
           --set_input_shape + set_tensor_address + execute_async_v3--> outputs (torch CUDA tensors).

Strong typing: every tensor's type comes from the ONNX graph, not from builder flags.
    FP16: export an FP16 graph (weights float16, Cast at the FP32 input and output):
          export_fp16_onnx(model, example, path).
    INT8: explicit QuantizeLinear/DequantizeLinear (Q/DQ) pairs with symmetric int8 scales,
          y = s * q with q = clamp(round(x / s), -128, 127): export_int8_qdq_onnx(...).
TensorRT 11 removed the weak-typing API (BuilderFlag.FP16/INT8, platform_has_fast_fp16/int8,
IInt8Calibrator); on 10.x the STRONGLY_TYPED creation flag opts in, on 11.x it is the only
mode (the flag is kept and ignored). TRT_USED lists every TensorRT name this module touches;
tests/deploy/test_deploy.py checks it by AST against TRT_10_AND_11 and TRT_REMOVED_IN_11.

tensorrt is imported only inside the functions (labkit.errors.require), so this module
imports on any machine; gpu_check_rows() returns "skip" rows where CUDA or tensorrt is missing.
"""

from __future__ import annotations

import copy
import hashlib
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labkit.core import models
from labkit.core.errors import (
    MissingDependency,
    check_int,
    check_model,
    check_nonempty,
    check_tensor,
    require,
    require_cuda,
)
from labkit.core.onnx import check_onnx_file, export_onnx, quantize_static_int8

# Every TensorRT name used below, as "Class.attr" under the tensorrt module. The API test
# checks (a) each is in TRT_10_AND_11, (b) none is in TRT_REMOVED_IN_11, (c) every
# `trt.<name>` / `<variable>.<attr>` written in this file is listed here.
TRT_USED: tuple[str, ...] = (
    "__version__",
    "Logger",
    "Logger.WARNING",
    "Builder",
    "Builder.create_network",
    "Builder.create_builder_config",
    "Builder.create_optimization_profile",
    "Builder.build_serialized_network",
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED",
    "OnnxParser",
    "OnnxParser.parse",
    "OnnxParser.num_errors",
    "OnnxParser.get_error",
    "INetworkDefinition.num_inputs",
    "INetworkDefinition.get_input",
    "ITensor.name",
    "ITensor.shape",
    "IBuilderConfig.set_memory_pool_limit",
    "IBuilderConfig.add_optimization_profile",
    "IOptimizationProfile.set_shape",
    "MemoryPoolType.WORKSPACE",
    "Runtime",
    "Runtime.deserialize_cuda_engine",
    "ICudaEngine.num_io_tensors",
    "ICudaEngine.get_tensor_name",
    "ICudaEngine.get_tensor_mode",
    "ICudaEngine.get_tensor_dtype",
    "ICudaEngine.get_tensor_profile_shape",
    "ICudaEngine.create_execution_context",
    "IExecutionContext.set_input_shape",
    "IExecutionContext.get_tensor_shape",
    "IExecutionContext.set_tensor_address",
    "IExecutionContext.execute_async_v3",
    "TensorIOMode.INPUT",
    "DataType.FLOAT",
    "DataType.HALF",
    "DataType.INT32",
    "DataType.INT64",
    "DataType.INT8",
    "DataType.BOOL",
)

# Names present in both TensorRT 10.x and 11.x Python APIs (the subset a course needs).
# Sources: TensorRT Python API reference 10.x and 11.x; "Migrating Python Code from
# TensorRT 10.x to 11.x" (docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/).
TRT_10_AND_11: frozenset[str] = frozenset(
    TRT_USED
    + (
        "ICudaEngine.num_optimization_profiles",
        "IExecutionContext.set_optimization_profile_async",
        "IBuilderConfig.builder_optimization_level",
        "IBuilderConfig.profiling_verbosity",
        "NetworkDefinitionCreationFlag",
        "TensorIOMode.OUTPUT",
        "DataType.UINT8",
        "DataType.BF16",
    )
)

# Weak-typing and implicit-calibration API removed in TensorRT 11 (or earlier, in 10.0):
# code using any of these fails with AttributeError on a current install.
TRT_REMOVED_IN_11: frozenset[str] = frozenset(
    {
        "BuilderFlag.FP16",
        "BuilderFlag.INT8",
        "BuilderFlag.BF16",
        "BuilderFlag.FP8",
        "BuilderFlag.INT4",
        "BuilderFlag.STRICT_TYPES",
        "BuilderFlag.OBEY_PRECISION_CONSTRAINTS",
        "BuilderFlag.PREFER_PRECISION_CONSTRAINTS",
        "Builder.platform_has_fast_fp16",
        "Builder.platform_has_fast_int8",
        "Builder.platform_has_tf32",
        "Builder.build_engine",
        "Builder.max_batch_size",
        "IBuilderConfig.int8_calibrator",
        "IBuilderConfig.max_workspace_size",
        "ILayer.precision",
        "ILayer.set_output_type",
        "IInt8Calibrator",
        "IInt8EntropyCalibrator2",
        "IInt8MinMaxCalibrator",
        "IInt8LegacyCalibrator",
        "CalibrationAlgoType",
        "NetworkDefinitionCreationFlag.EXPLICIT_BATCH",
        "IExecutionContext.execute_v2",
        "IExecutionContext.execute_async_v2",
        "ICudaEngine.get_binding_index",
        "ICudaEngine.binding_is_input",
    }
)

# What the pre-10 tutorials learners meet online do, and today's replacement (notebook 09).
OLD_TO_NEW: tuple[tuple[str, str], ...] = (
    ("builder.build_engine(network, config)", "builder.build_serialized_network(network, config)"),
    (
        "create_network(1 << EXPLICIT_BATCH)",
        "create_network(1 << STRONGLY_TYPED): explicit batch only",
    ),
    (
        "context.execute_async_v2(bindings, stream)",
        "set_tensor_address(name, ptr) + execute_async_v3(stream)",
    ),
    ("pycuda.driver.mem_alloc buffers", "torch CUDA tensors: tensor.data_ptr()"),
    ("BuilderFlag.FP16", "an FP16 ONNX graph (weights float16)"),
    ("BuilderFlag.INT8 + IInt8EntropyCalibrator2", "explicit Q/DQ nodes in the ONNX graph"),
)


# --------------------------------------------------------------------------- import


def tensorrt() -> Any:
    """The tensorrt module, or MissingDependency when there is no CUDA GPU or TensorRT < 10.

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "5. TensorRT (NVIDIA GPUs)".
    """
    _check_tensorrt()  # a CUDA GPU, tensorrt installed, version >= 10
    return require("tensorrt")


# --------------------------------------------------------------------------- ONNX with types


class Float16Graph(nn.Module):
    """FP32 in, FP16 inside, FP32 out: y = float(model_fp16(half(x))).

    Exported, this is an ONNX graph with float16 weights and a Cast at each end, which is
    how a strongly typed TensorRT network learns that it should run in FP16.
    Used by export_fp16_onnx (labkit/deploy/trt.py).
    """

    def __init__(self, model: nn.Module) -> None:
        check_model(model)
        super().__init__()
        self.inner = copy.deepcopy(model).eval().half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.half()).float()


def export_fp16_onnx(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """An FP16 ONNX file of ``model`` (FP32 input and output, float16 weights and math).

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "5. TensorRT (NVIDIA GPUs)".
    """
    _check_export_fp16(model, example, path)
    return export_onnx(Float16Graph(model), example.float(), path)


def export_int8_qdq_onnx(
    fp32_path: str | Path, out_path: str | Path, calib_x: torch.Tensor, *, method: str = "minmax"
) -> Path:
    """An INT8 ONNX file with explicit Q/DQ nodes as TensorRT needs them.

    Symmetric int8 activations and weights (zero point 0, x ~ s * q), full 8-bit weights
    (reduce_range=False: a GPU has no int16 saturation issue), per-channel weight scales.
    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "5. TensorRT (NVIDIA GPUs)".
    """
    _check_export_int8(fp32_path, out_path, calib_x)
    return quantize_static_int8(
        fp32_path,
        out_path,
        calib_x,
        method=method,
        per_channel=True,
        symmetric_activations=True,
        reduce_range=False,
    )


# --------------------------------------------------------------------------- build


def engine_path(onnx_path: str | Path, cache_dir: str | Path, settings: dict[str, Any]) -> Path:
    """Cache file for an engine: hash of the ONNX bytes, the build settings, TensorRT and GPU.

    An engine is specific to the GPU model and TensorRT version that built it.
    Used by build_engine (labkit/deploy/trt.py).
    """
    h = hashlib.sha256(check_onnx_file(onnx_path).read_bytes())
    h.update(repr(sorted(settings.items())).encode())
    return Path(cache_dir) / f"{Path(onnx_path).stem}-{h.hexdigest()[:16]}.engine"


def build_engine(
    onnx_path: str | Path,
    *,
    min_batch: int = 1,
    opt_batch: int = 32,
    max_batch: int = 256,
    workspace_bytes: int = 1 << 30,
    cache_dir: str | Path = "trt_cache",
) -> bytes:
    """Build (or load from the disk cache) a serialized engine of a strongly typed network.

    Builder -> create_network(1 << STRONGLY_TYPED) -> OnnxParser.parse -> BuilderConfig
    (workspace pool limit; one optimisation profile min/opt/max on the batch axis)
    -> build_serialized_network. Precision comes from the ONNX file: an FP32 graph gives an
    FP32 engine, export_fp16_onnx an FP16 one, export_int8_qdq_onnx an INT8 one.
    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "5. TensorRT (NVIDIA GPUs)".
    """
    onnx_path = _check_build(onnx_path, min_batch, opt_batch, max_batch, workspace_bytes, cache_dir)
    trt = tensorrt()
    settings = {
        "profile": (min_batch, opt_batch, max_batch),
        "trt": str(trt.__version__),
        "gpu": torch.cuda.get_device_name(0),
        "typing": "strong",
    }
    cache = engine_path(onnx_path, cache_dir, settings)
    if cache.exists():
        return cache.read_bytes()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    _parsed(parser, onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        rest = tuple(tensor.shape)[1:]
        profile.set_shape(tensor.name, (min_batch, *rest), (opt_batch, *rest), (max_batch, *rest))
    config.add_optimization_profile(profile)
    built = builder.build_serialized_network(network, config)
    engine = bytes(_ok(built, f"TensorRT failed to build {onnx_path.name}; see the log above."))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(engine)
    return engine


# --------------------------------------------------------------------------- run


def runner(engine_bytes: bytes) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """fn(x) -> {output name: CUDA tensor} running a serialized engine with execute_async_v3.

    Named I/O tensors: set_input_shape (False when the shape is outside the optimisation
    profile: we raise) + set_tensor_address(data_ptr); output shapes come from the context
    once the input shape is set; outputs are torch CUDA tensors, so no pycuda is needed.
    fn.max_batch is the profile's largest batch; run_batched splits larger inputs.
    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "5. TensorRT (NVIDIA GPUs)".
    """
    _check_engine_bytes(engine_bytes)
    trt = tensorrt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = _ok(
        runtime.deserialize_cuda_engine(engine_bytes),
        "TensorRT could not deserialize "
        "the engine (another GPU or TensorRT version?); rebuild it with build_engine.",
    )
    context = engine.create_execution_context()
    dtypes = {
        trt.DataType.FLOAT: torch.float32,
        trt.DataType.HALF: torch.float16,
        trt.DataType.INT32: torch.int32,
        trt.DataType.INT64: torch.int64,
        trt.DataType.INT8: torch.int8,
        trt.DataType.BOOL: torch.bool,
    }
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if n not in inputs]
    low, _, high = (tuple(s) for s in engine.get_tensor_profile_shape(inputs[0], 0))
    keep: list[torch.Tensor] = []  # buffers must outlive the asynchronous launch

    def run(x: torch.Tensor) -> dict[str, torch.Tensor]:
        _set_shape(context, inputs[0], tuple(x.shape), low, high)  # (N, 1, 8, 8) within profile
        x = x.to("cuda", dtypes[engine.get_tensor_dtype(inputs[0])]).contiguous()
        keep[:] = [x]
        context.set_tensor_address(inputs[0], x.data_ptr())
        result = {}
        for name in outputs:
            out_shape = tuple(context.get_tensor_shape(name))
            out = torch.empty(out_shape, dtype=dtypes[engine.get_tensor_dtype(name)], device="cuda")
            context.set_tensor_address(name, out.data_ptr())
            result[name] = out
        stream = torch.cuda.current_stream()
        _ok(context.execute_async_v3(stream.cuda_stream), "execute_async_v3 failed; see the log.")
        stream.synchronize()
        return result

    run.max_batch = high[0]  # type: ignore[attr-defined]
    return run


def run_batched(
    run: Callable[[torch.Tensor], dict[str, torch.Tensor]], x: torch.Tensor, max_batch: int
) -> dict[str, torch.Tensor]:
    """Run ``x`` in chunks of at most ``max_batch`` rows; concatenate each output on dim 0.

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "5. TensorRT (NVIDIA GPUs)".
    """
    _check_run_batched(run, x, max_batch)
    parts = [run(chunk) for chunk in x.split(max_batch)]
    return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}


# --------------------------------------------------------------------------- gpu-check


def gpu_check_rows() -> list[tuple[str, str, str]]:
    """Rows (path, "ok" | "skip" | "FAIL", detail) for `python -m labkit gpu-check`.

    With CUDA and tensorrt: build a tiny FP16 engine and an INT8 (Q/DQ) engine, run them
    and compare with PyTorch FP32 (relative error max|y - y_ref| / max|y_ref|: FP16 < 2e-2,
    INT8 < 0.15), and check that a batch outside the profile raises ValueError.
    Without them: one "skip" row per path, saying what is missing.
    Used by rows (labkit/course/gpu_check.py).
    """
    paths = ("TensorRT FP16 engine", "TensorRT INT8 engine (Q/DQ)", "TensorRT profile guard")
    try:
        trt = tensorrt()
    except MissingDependency as exc:
        reason = str(exc).split(". ")[0]
        return [(p, "skip", reason) for p in paths]
    rows: list[tuple[str, str, str]] = []
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = models.cnn(width=8, depth=2).eval()
    x = torch.rand(64, 1, 8, 8, generator=gen)
    with torch.no_grad():
        ref = model(x)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fp32 = export_onnx(model, x[:2], work / "tiny.onnx")
        builds = (
            (paths[0], lambda: export_fp16_onnx(model, x[:2], work / "tiny_fp16.onnx"), 2e-2),
            (paths[1], lambda: export_int8_qdq_onnx(fp32, work / "tiny_int8.onnx", x), 0.15),
        )
        last_run = None
        for label, make, tol in builds:
            try:
                engine = build_engine(make(), opt_batch=32, max_batch=64, cache_dir=work)
                run = runner(engine)
                out = next(iter(run(x.cuda()).values())).float().cpu()
                rel = float((out - ref).abs().max() / ref.abs().max())
                status = "ok" if rel < tol else "FAIL"
                rows.append((label, status, f"TensorRT {trt.__version__}, rel. error {rel:.2g}"))
                last_run = run
            except Exception as exc:  # report, do not stop the table
                rows.append((label, "FAIL", f"{type(exc).__name__}: {exc}"[:300]))
        if last_run is None:
            rows.append((paths[2], "skip", "no engine was built"))
        else:
            try:
                last_run(torch.rand(65, 1, 8, 8).cuda())
                rows.append((paths[2], "FAIL", "batch 65 > max 64 ran without an error"))
            except ValueError:
                rows.append((paths[2], "ok", "batch 65 > profile max 64 raises ValueError"))
    return rows


# ---- checks: bad input gets one clear error naming the parameter and the fix

MAX_BATCH = 4096  # the largest batch export_onnx declares for the symbolic batch axis


def _check_tensorrt() -> None:
    require_cuda("TensorRT")
    trt = require("tensorrt", why="TensorRT engines; GPU extras: requirements-gpu.txt")
    if int(str(trt.__version__).split(".")[0]) < 10:
        raise MissingDependency(
            f"TensorRT {trt.__version__} is too old: labkit uses the TensorRT >= 10 API "
            "(strongly typed networks, named tensors, execute_async_v3). "
            "`pip install -r requirements-gpu.txt`."
        )


def _check_build(
    onnx_path: object,
    min_batch: object,
    opt_batch: object,
    max_batch: object,
    workspace_bytes: object,
    cache_dir: object,
) -> Path:
    batches = (min_batch, opt_batch, max_batch)
    for name, b in zip(("min_batch", "opt_batch", "max_batch"), batches, strict=True):
        check_int(b, name, low=1, high=MAX_BATCH)
    if not batches[0] <= batches[1] <= batches[2]:
        raise ValueError(
            "need integers 1 <= min_batch <= opt_batch <= max_batch, got "
            f"{', '.join(map(repr, batches))}; e.g. min_batch=1, opt_batch=32, max_batch=256."
        )
    check_int(workspace_bytes, "workspace_bytes", low=1 << 20, high=1 << 40)
    if not isinstance(cache_dir, str | Path):
        raise ValueError(f"cache_dir must be a folder path (str or Path), got {cache_dir!r}.")
    return _onnx_file(onnx_path, "onnx_path")


def _check_engine_bytes(engine_bytes: object) -> None:
    if not isinstance(engine_bytes, bytes | bytearray | memoryview):
        raise ValueError(
            "engine_bytes must be the bytes build_engine returns (a serialized engine), got "
            f"{type(engine_bytes).__name__}; an .onnx path goes to build_engine first."
        )
    if not len(engine_bytes):
        raise ValueError("engine_bytes is empty: pass the bytes build_engine returned.")


def _check_run_batched(run: object, x: object, max_batch: object) -> None:
    if not callable(run):
        raise ValueError(
            f"run must be the function deploy.runner(engine_bytes) returns, got "
            f"{type(run).__name__}: call runner(...) on the engine first."
        )
    check_nonempty(check_tensor(x, "x", floating=False), "x")
    check_int(max_batch, "max_batch", low=1)


def _onnx_file(path: object, name: str) -> Path:
    """check_onnx_file, with ``name`` (the parameter) in every message."""
    try:
        return check_onnx_file(path, name)
    except ValueError as exc:
        if re.search(rf"\b{name}\b", str(exc)):
            raise
        raise ValueError(f"{name}: {exc}") from None


def _check_fits_graph(path: Path, x: torch.Tensor, name: str) -> None:
    """x has the shape (static dims) and dtype of the graph's first input."""
    tensor_type = require("onnx").load(str(path), load_external_data=False).graph.input[0].type
    want = [d.dim_value if d.dim_value > 0 else None for d in tensor_type.tensor_type.shape.dim]
    fits = len(want) == x.ndim and all(
        w is None or w == e for w, e in zip(want, x.shape, strict=False)
    )
    if not fits:
        shape = ["batch" if w is None else w for w in want]
        raise ValueError(
            f"{name} of shape {tuple(x.shape)} does not fit the graph's input {shape}: pass a "
            "batch of the inputs the model was exported with."
        )


def _check_export_fp16(model: object, example: object, path: object) -> None:
    check_model(model)
    check_nonempty(check_tensor(example, "example"), "example")
    if not isinstance(path, str | Path):
        raise ValueError(
            f"path must be a file path (str or Path) for the .onnx file, got {path!r}."
        )
    modes = {m: m.training for m in model.modules()}  # a trial forward in eval mode, restored
    try:
        with torch.no_grad():
            model.eval()(example.float())
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise ValueError(
            f"model(example) fails for example of shape {tuple(example.shape)}: "
            f"{str(exc).splitlines()[0][:200]}; pass a batch of the model's inputs."
        ) from None
    finally:
        for m, training in modes.items():
            m.training = training


def _check_export_int8(fp32_path: object, out_path: object, calib_x: object) -> None:
    path = _onnx_file(fp32_path, "fp32_path")
    if not isinstance(out_path, str | Path):
        raise ValueError(f"out_path must be a file path (str or Path), got {out_path!r}.")
    check_nonempty(check_tensor(calib_x, "calib_x"), "calib_x")
    _check_fits_graph(path, calib_x, "calib_x")


def _parsed(parser: Any, onnx_path: Path) -> None:
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"TensorRT could not parse {onnx_path.name}: {errors}")


def _set_shape(context: Any, name: str, shape: tuple, low: tuple, high: tuple) -> None:
    outside = len(shape) != len(low) or any(
        not lo <= s <= hi for s, lo, hi in zip(shape, low, high, strict=False)
    )
    if outside or not context.set_input_shape(name, shape):
        raise ValueError(
            f"input shape {shape} is outside the engine's optimisation profile "
            f"{low} .. {high}; split the batch (deploy.run_batched) or rebuild with "
            "build_engine(..., max_batch=...)."
        )


def _ok(result: Any, message: str) -> Any:
    """TensorRT's result, or ValueError(message) where it returned None or False (it logs why)."""
    if result is None or result is False:
        raise ValueError(message)
    return result
