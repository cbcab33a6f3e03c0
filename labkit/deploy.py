"""Deployment runtimes: ONNX export, ONNX Runtime (ORT) sessions and INT8, TensorRT >= 10.

Pipeline:  PyTorch model --torch.onnx.export (dynamo)--> .onnx --onnx.checker--> ORT session
           .onnx --quantize_static (QDQ, calibrated on digits) / quantize_dynamic--> INT8 .onnx
           .onnx --TensorRT OnnxParser--> build_serialized_network --> engine file (GPU only).

Parity: max |y_torch - y_ort| and the allclose rule |g - e| <= atol + rtol * |e| elementwise.
Static INT8: x ~ s * (q - z) with q int8/uint8; s, z of every activation come from
calibration batches (MinMax, Entropy = KL, Percentile); weights are per-channel symmetric.
Dynamic INT8: weights quantised offline, activation scales computed per batch at run time.

onnx / onnxruntime are imported when first needed; tensorrt only inside the TensorRT functions
(via labkit.errors.require), so this module imports on any machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labkit.errors import MissingDependency, check_tensor, require, require_cuda

if TYPE_CHECKING:  # pragma: no cover
    import onnx
    import onnxruntime as ort

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")

# Every TensorRT attribute this module uses, as "Class.attr" paths under the tensorrt module.
# tests/test_deploy.py checks (a) that each exists where tensorrt imports and (b) that every
# `trt.<name>` written in this file is listed here, so the list cannot drift from the code.
TRT_ATTRIBUTES: tuple[str, ...] = (
    "__version__",
    "Logger",
    "Logger.WARNING",
    "Builder",
    "Builder.create_network",
    "Builder.create_builder_config",
    "Builder.create_optimization_profile",
    "Builder.build_serialized_network",
    "Builder.platform_has_fast_fp16",
    "Builder.platform_has_fast_int8",
    "OnnxParser",
    "OnnxParser.parse",
    "OnnxParser.num_errors",
    "OnnxParser.get_error",
    "INetworkDefinition.num_inputs",
    "INetworkDefinition.get_input",
    "ITensor.name",
    "ITensor.shape",
    "IBuilderConfig.set_memory_pool_limit",
    "IBuilderConfig.set_flag",
    "IBuilderConfig.add_optimization_profile",
    "IOptimizationProfile.set_shape",
    "MemoryPoolType.WORKSPACE",
    "BuilderFlag.FP16",
    "BuilderFlag.INT8",
    "Runtime",
    "Runtime.deserialize_cuda_engine",
    "ICudaEngine.num_io_tensors",
    "ICudaEngine.get_tensor_name",
    "ICudaEngine.get_tensor_mode",
    "ICudaEngine.get_tensor_dtype",
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


# --------------------------------------------------------------------------- models


class TransformerBlock(nn.Module):
    """Pre-LN transformer block on (N, T, d): x + MHA(LN(x)), then x + MLP(LN(x)).

    MHA: q, k, v = split(x W_qkv), heads h, softmax(q k^T / sqrt(d/h)) v via SDPA, then W_o.
    MLP: Linear(d, 4d) -> GELU -> Linear(4d, d).
    """

    def __init__(self, d_model: int = 64, heads: int = 4) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} must be divisible by heads={heads}.")
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.reshape(n, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(att.transpose(1, 2).reshape(n, t, d))
        return x + self.mlp(self.ln2(x))


class DigitTransformer(nn.Module):
    """Digits as sequences: the 8 rows of an (N, 1, 8, 8) image are 8 tokens of 8 pixels.

    Linear(8, d) + learned position embedding -> depth x TransformerBlock -> LayerNorm
    -> mean over tokens -> Linear(d, 10).  Output (N, 10) logits.
    """

    def __init__(self, d_model: int = 64, heads: int = 4, depth: int = 2) -> None:
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos = nn.Parameter(torch.zeros(1, 8, d_model))
        self.blocks = nn.Sequential(*[TransformerBlock(d_model, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.reshape(x.shape[0], 8, 8)) + self.pos
        return self.head(self.norm(self.blocks(h)).mean(dim=1))


def digit_transformer(d_model: int = 64, heads: int = 4, depth: int = 2) -> DigitTransformer:
    """A small transformer classifier for 8x8 digits (rows as tokens); see DigitTransformer."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}.")
    return DigitTransformer(d_model, heads, depth)


# --------------------------------------------------------------------------- ONNX export


def strip_metadata(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove per-node metadata (stack traces, FX node text, local paths) and doc strings.

    The dynamo exporter records where each node came from; useful for debugging, but it
    ships local file paths and is pure overhead in a deployed file (about 1 kB per node).
    """
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    model.graph.doc_string = ""
    return model


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    *,
    dynamic_batch: bool = True,
    opset: int | None = None,
    input_name: str = "x",
    output_name: str = "logits",
) -> Path:
    """Export ``model`` (eval mode) to one self-contained .onnx file and run onnx.checker.

    Uses torch.onnx.export's torch.export-based (dynamo) exporter; the batch axis (dim 0)
    is symbolic ("batch") when dynamic_batch=True, so one file serves batch 1 and batch 32.
    Weights are stored inside the file (external_data=False) and node metadata is stripped.
    """
    check_tensor(example, "example")
    onnx = require("onnx", why="ONNX export")
    require("onnxscript", why="the dynamo ONNX exporter needs it")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            dynamic_shapes=dynamic,
            input_names=[input_name],
            output_names=[output_name],
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
    proto = strip_metadata(program.model_proto)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return path


def describe_onnx(path: str | Path) -> dict[str, Any]:
    """onnx.checker (full check) plus a summary: opset, node count, op types, input shape."""
    onnx = require("onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return {
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "nodes": len(model.graph.node),
        "op_types": dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
        "input": model.graph.input[0].name,
        "input_shape": [d.dim_param or d.dim_value for d in dims],
        "bytes": Path(path).stat().st_size,
    }


def file_size(path: str | Path) -> int:
    """Bytes of a file on disk (what ships to the device)."""
    return Path(path).stat().st_size


# --------------------------------------------------------------------------- ONNX Runtime


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers, in ORT's priority order."""
    return list(require("onnxruntime").get_available_providers())


def session_options(
    threads: int = 1, opt_level: str = "all", sequential: bool = True
) -> ort.SessionOptions:
    """ORT SessionOptions: intra-op threads, graph optimisation level, execution mode.

    opt_level: "disable" | "basic" | "extended" | "all" (ORT's GraphOptimizationLevel).
    inter_op threads = 1 and sequential execution: one operator at a time, like PyTorch eager.
    """
    ort = require("onnxruntime")
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if opt_level not in levels:
        raise ValueError(f"opt_level must be one of {sorted(levels)}, got {opt_level!r}.")
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}.")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = levels[opt_level]
    so.execution_mode = (
        ort.ExecutionMode.ORT_SEQUENTIAL if sequential else ort.ExecutionMode.ORT_PARALLEL
    )
    so.log_severity_level = 3  # errors only
    return so


def ort_session(
    path: str | Path,
    *,
    threads: int = 1,
    providers: Sequence[Any] | None = None,
    opt_level: str = "all",
) -> ort.InferenceSession:
    """An ORT InferenceSession on ``path`` (CPU provider unless ``providers`` is given)."""
    ort = require("onnxruntime")
    if not Path(path).exists():
        raise ValueError(f"ONNX file {Path(path).name} not found; export it with export_onnx.")
    return ort.InferenceSession(
        str(path),
        session_options(threads, opt_level),
        providers=list(providers) if providers else ["CPUExecutionProvider"],
    )


def ort_runner(session: ort.InferenceSession) -> Callable[[torch.Tensor | np.ndarray], np.ndarray]:
    """fn(x) -> first output of ``session`` as a NumPy array (x: tensor or array, float32)."""
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor | np.ndarray) -> np.ndarray:
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
        return session.run(None, {name: np.ascontiguousarray(arr, dtype=np.float32)})[0]

    return run


def parity(
    expected: torch.Tensor | np.ndarray,
    got: torch.Tensor | np.ndarray,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> dict[str, float | bool]:
    """Compare a runtime's output with PyTorch's.

    max_abs_diff = max |g - e|;  max_rel_diff = max |g - e| / (|e| + 1e-12);
    ok = every element satisfies |g - e| <= atol + rtol * |e| (NaN anywhere -> not ok).
    """
    e = torch.as_tensor(
        np.asarray(expected.detach() if isinstance(expected, torch.Tensor) else expected)
    )
    g = torch.as_tensor(np.asarray(got.detach() if isinstance(got, torch.Tensor) else got))
    if e.shape != g.shape:
        raise ValueError(f"shapes differ: expected {tuple(e.shape)}, got {tuple(g.shape)}.")
    e, g = e.double(), g.double()
    diff = (g - e).abs()
    ok = bool(torch.all(diff <= atol + rtol * e.abs()).item())  # NaN compares False
    return {
        "max_abs_diff": float(diff.max()) if diff.numel() else 0.0,
        "max_rel_diff": float((diff / (e.abs() + 1e-12)).max()) if diff.numel() else 0.0,
        "ok": ok,
    }


def accuracy(run: Callable[[torch.Tensor], Any], x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of argmax(run(x)) == y; ``run`` returns logits (tensor or array) of shape (N, C)."""
    logits = torch.as_tensor(np.asarray(run(x)))
    return float((logits.argmax(1) == y).float().mean())


# --------------------------------------------------------------------------- ORT INT8


def calibration_reader(x: torch.Tensor, input_name: str = "x", batch_size: int = 32) -> Any:
    """An ORT CalibrationDataReader that yields {input_name: float32 batch} then None.

    rewind() starts again from the first batch (ORT's Entropy/Percentile calibrators may
    need several passes).
    """
    check_tensor(x, "x")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    quant = require("onnxruntime.quantization", "onnxruntime")

    class DigitsReader(quant.CalibrationDataReader):
        def __init__(self) -> None:
            arr = x.detach().cpu().numpy().astype(np.float32)
            self.batches = [arr[i : i + batch_size] for i in range(0, len(arr), batch_size)]
            self.index = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.index >= len(self.batches):
                return None
            self.index += 1
            return {input_name: self.batches[self.index - 1]}

        def rewind(self) -> None:
            self.index = 0

        def __len__(self) -> int:
            return len(self.batches)

    return DigitsReader()


def quantize_static_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    calib_x: torch.Tensor,
    *,
    method: str = "minmax",
    per_channel: bool = True,
    symmetric_activations: bool = False,
    input_name: str = "x",
    reader: Any | None = None,
    reduce_range: bool | None = None,
) -> Path:
    """Static INT8 in QDQ format: weights int8 per channel, activations calibrated.

    reduce_range: quantise weights to 7 bits (ORT uses [-64, 64]). None (default) turns it on where
    the CPU has no VNNI: AVX2's vpmaddubsw adds two u8*s8 products into a saturating int16,
    and 255 * 127 * 2 > 32767, so full-range weights can overflow and cost accuracy.

    method: "minmax" (range = [min, max] seen), "entropy" (threshold minimising the KL
    divergence between float and quantised histograms), "percentile" (99.999th).
    Activations are uint8 with a zero point (asymmetric, good for ReLU outputs on CPU);
    symmetric_activations=True gives int8 with z = 0, what TensorRT needs.
    """
    quant = require("onnxruntime.quantization", "onnxruntime")
    methods = {
        "minmax": quant.CalibrationMethod.MinMax,
        "entropy": quant.CalibrationMethod.Entropy,
        "percentile": quant.CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise ValueError(f"method must be one of {CALIBRATION_METHODS}, got {method!r}.")
    out_path = Path(out_path)
    act = quant.QuantType.QInt8 if symmetric_activations else quant.QuantType.QUInt8
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True} if symmetric_activations else {}
    data_reader = reader if reader is not None else calibration_reader(calib_x, input_name)
    if reduce_range is None:
        reduce_range = not has_vnni()
    with _quiet_quantizer():  # the calibrators print progress
        quant.quantize_static(
            str(fp32_path),
            str(out_path),
            data_reader,
            quant_format=quant.QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=act,
            weight_type=quant.QuantType.QInt8,
            calibrate_method=methods[method],
            reduce_range=reduce_range,
            extra_options=extra,
        )
    _strip_file(out_path)
    return out_path


def quantize_dynamic_int8(fp32_path: str | Path, out_path: str | Path) -> Path:
    """Dynamic INT8: MatMul/Gemm weights int8 offline, activation scale computed per call.

    No calibration data; the runtime pays for a min/max pass over each activation, which
    suits transformers (activation ranges vary per input) better than tiny convnets.
    """
    quant = require("onnxruntime.quantization", "onnxruntime")
    out_path = Path(out_path)
    with _quiet_quantizer():
        quant.quantize_dynamic(
            str(fp32_path), str(out_path), weight_type=quant.QuantType.QInt8, per_channel=False
        )
    _strip_file(out_path)
    return out_path


@contextlib.contextmanager
def _quiet_quantizer() -> Any:
    """Silence the quantizer's progress prints and its 'consider pre-processing' log lines."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def _strip_file(path: Path) -> None:
    onnx = require("onnx")
    model = onnx.load(str(path))
    onnx.save(strip_metadata(model), str(path))


def has_vnni(features: dict[str, bool] | None = None) -> bool:
    """True where the CPU has VNNI (vpdpbusd accumulates u8*s8 in int32: no int16 overflow)."""
    from labkit.env import cpu_features

    f = features if features is not None else cpu_features()
    return bool(f.get("avx512_vnni") or f.get("avx_vnni"))


def int8_kernel_note(features: dict[str, bool] | None = None) -> str:
    """Which int8 dot-product instruction this CPU has, in one sentence.

    AVX2:        vpmaddubsw (u8 x s8 -> pairs summed to s16, saturating) + vpmaddwd (-> s32)
                 + vpaddd: 3 instructions per 32 byte-products, with a s16 overflow risk.
    AVX512-VNNI: vpdpbusd: u8 x s8, 4 products summed into each s32 lane, accumulated,
                 1 instruction per 64 byte-products, no intermediate saturation.
    """
    from labkit.env import cpu_features

    f = features if features is not None else cpu_features()
    if f.get("avx512_vnni"):
        return "AVX512-VNNI: vpdpbusd does 64 u8*s8 products + accumulation in one instruction."
    if f.get("avx_vnni"):
        return "AVX-VNNI: vpdpbusd on 256-bit registers (32 u8*s8 products per instruction)."
    if f.get("avx2"):
        return "AVX2 only: vpmaddubsw + vpmaddwd + vpaddd, three instructions per 32 products."
    return "No AVX2: int8 kernels fall back to generic code; expect little or no INT8 speed-up."


# --------------------------------------------------------------------------- GPU routes


def gpu_providers(
    cache_dir: str | Path = "trt_cache",
    *,
    fp16: bool = True,
    int8: bool = False,
    device_id: int = 0,
) -> list[Any]:
    """ORT's GPU route: TensorRT EP, then CUDA EP, then CPU, each only if this build has it.

    TensorRT EP options: trt_fp16_enable / trt_int8_enable (INT8 from a QDQ model),
    trt_engine_cache_enable + trt_engine_cache_path (engines are reused across sessions).
    ORT falls back to the next provider for any node the previous one cannot run.
    """
    have = set(available_providers())
    chosen: list[Any] = []
    if "TensorrtExecutionProvider" in have:
        chosen.append(
            (
                "TensorrtExecutionProvider",
                {
                    "device_id": device_id,
                    "trt_fp16_enable": fp16,
                    "trt_int8_enable": int8,
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(cache_dir),
                },
            )
        )
    if "CUDAExecutionProvider" in have:
        chosen.append(("CUDAExecutionProvider", {"device_id": device_id}))
    chosen.append("CPUExecutionProvider")
    return chosen


def _trt() -> Any:
    require_cuda("TensorRT")
    trt = require("tensorrt", why="TensorRT engines; GPU extras: requirements-gpu.txt")
    major = int(str(trt.__version__).split(".")[0])
    if major < 10:
        raise MissingDependency(
            f"TensorRT {trt.__version__} is too old: labkit uses the TensorRT >= 10 API "
            "(named tensors, execute_async_v3). `pip install 'tensorrt>=10'`."
        )
    return trt


def trt_engine_path(onnx_path: str | Path, cache_dir: str | Path, settings: dict[str, Any]) -> Path:
    """Cache file for an engine: hash of the ONNX bytes, the build settings, TensorRT and GPU.

    An engine is specific to the GPU model and TensorRT version that built it.
    """
    h = hashlib.sha256(Path(onnx_path).read_bytes())
    h.update(repr(sorted(settings.items())).encode())
    return Path(cache_dir) / f"{Path(onnx_path).stem}-{h.hexdigest()[:16]}.engine"


def trt_build_engine(
    onnx_path: str | Path,
    *,
    fp16: bool = False,
    int8: bool = False,
    min_batch: int = 1,
    opt_batch: int = 32,
    max_batch: int = 256,
    workspace_bytes: int = 1 << 30,
    cache_dir: str | Path = "trt_cache",
) -> bytes:
    """Build (or load from the disk cache) a serialized TensorRT engine from an ONNX file.

    TensorRT >= 10 API: Builder -> create_network(0) (explicit batch is the only mode)
    -> OnnxParser.parse -> BuilderConfig (workspace pool limit, FP16/INT8 flags, one
    optimisation profile min/opt/max on the batch axis) -> build_serialized_network.
    INT8 in TensorRT 10 is explicit quantisation: pass a QDQ model (quantize_static_int8 with
    symmetric_activations=True); the implicit IInt8Calibrator route is deprecated.
    """
    trt = _trt()
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise ValueError(
            f"need 1 <= min_batch <= opt_batch <= max_batch, got {min_batch}, {opt_batch}, {max_batch}."
        )
    settings = {
        "fp16": fp16,
        "int8": int8,
        "profile": (min_batch, opt_batch, max_batch),
        "trt": str(trt.__version__),
        "gpu": torch.cuda.get_device_name(0),
    }
    cache = trt_engine_path(onnx_path, cache_dir, settings)
    if cache.exists():
        return cache.read_bytes()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"TensorRT could not parse {Path(onnx_path).name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16:
        if not builder.platform_has_fast_fp16:
            print("note: this GPU has no fast FP16; TensorRT may still pick FP32 kernels.")
        config.set_flag(trt.BuilderFlag.FP16)
    if int8:
        if not builder.platform_has_fast_int8:
            print("note: this GPU has no fast INT8; TensorRT may still pick FP16/FP32 kernels.")
        config.set_flag(trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        rest = tuple(tensor.shape)[1:]
        profile.set_shape(tensor.name, (min_batch, *rest), (opt_batch, *rest), (max_batch, *rest))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ValueError("TensorRT failed to build the engine; see the log lines above.")
    engine = bytes(serialized)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(engine)
    return engine


def trt_runner(engine_bytes: bytes) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """fn(x) -> {output name: CUDA tensor} running a serialized engine with execute_async_v3.

    Named I/O tensors: for each input set_input_shape + set_tensor_address(data_ptr);
    output shapes come from the context once inputs are set; outputs are torch CUDA
    tensors, so no extra CUDA library is needed. Runs on torch's current CUDA stream.
    """
    trt = _trt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(engine_bytes)
    if engine is None:
        raise ValueError("TensorRT could not deserialize the engine (other GPU or version?).")
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
    keep: list[torch.Tensor] = []  # buffers must outlive the asynchronous launch

    def run(x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x.to("cuda", dtypes[engine.get_tensor_dtype(inputs[0])]).contiguous()
        keep[:] = [x]
        context.set_input_shape(inputs[0], tuple(x.shape))
        context.set_tensor_address(inputs[0], x.data_ptr())
        result = {}
        for name in outputs:
            shape = tuple(context.get_tensor_shape(name))
            out = torch.empty(shape, dtype=dtypes[engine.get_tensor_dtype(name)], device="cuda")
            context.set_tensor_address(name, out.data_ptr())
            result[name] = out
        stream = torch.cuda.current_stream()
        if not context.execute_async_v3(stream.cuda_stream):
            raise ValueError("TensorRT execute_async_v3 failed; see the log lines above.")
        stream.synchronize()
        return result

    return run


# --------------------------------------------------------------------------- bundled asset

TRANSFORMER_ASSET = "digit_transformer"


def train_transformer_asset(epochs: int = 15) -> Path:
    """Train digit_transformer() on digits (seed 0, 2 threads) and save it to
    data/digit_transformer.safetensors with its test accuracy in the metadata."""
    from labkit import data, env, models, train

    env.seed_everything(0)
    with env.threads(2):
        model = digit_transformer()
        loaders = data.digits_loaders(64)
        train.fit(model, loaders.train, epochs=epochs, lr=2e-3)
        acc = train.evaluate(model, loaders.test)["accuracy"]
    return models.save(
        model, TRANSFORMER_ASSET, {"test_accuracy": f"{acc:.4f}", "epochs": str(epochs)}
    )


def load_transformer(retrain: bool = False) -> tuple[DigitTransformer, dict[str, str]]:
    """The bundled digit transformer (retrain=True trains and saves it again first)."""
    from labkit import models

    if retrain:
        train_transformer_asset()
    model = digit_transformer()
    meta = models.load(model, TRANSFORMER_ASSET)
    return model.eval(), meta
