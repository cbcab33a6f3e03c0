"""ONNX export, ONNX Runtime (ORT) sessions and ORT INT8: the plumbing several chapters use.

Met in notebooks 06 (ORT's quantisers beside ours) and 07 (ORT's graph optimisation levels),
and used throughout 09, whose own code (providers, parity, describe_onnx, TensorRT) lives in
labkit/deploy/; 10 and 13 use it too. Core, so every chapter calls it at one address:
``labkit.onnx.export_onnx`` (labkit.onnx is labkit.core.onnx for short).

Pipeline:  PyTorch model --torch.onnx.export (dynamo)--> .onnx --onnx.checker--> ORT session
           .onnx --quantize_static (QDQ, calibrated) / quantize_dynamic--> INT8 .onnx
One vocabulary for ORT's graph optimisation level: ORT_LEVELS, ORT's own names.
onnx / onnxruntime are imported when first needed; every entry point that reads an .onnx
file checks it first (check_onnx_file): one ValueError naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from labkit.core.env import has_vnni
from labkit.core.errors import (
    check_choice,
    check_int,
    check_model,
    check_nonempty,
    check_tensor,
    require,
)

# torch's exporter logs one warning per torchvision op when torchvision is not installed (the
# course does not need it): keep that noise out of the notebooks.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)

if TYPE_CHECKING:  # pragma: no cover
    import onnx
    import onnxruntime as ort


CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# ORT's GraphOptimizationLevel, lowest first: the course's name -> ORT's enum member
_ORT_ENUM = {
    "disable_all": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
ORT_LEVELS = tuple(_ORT_ENUM)
MAX_THREADS = 256  # more intra-op threads than any laptop has cores: a typo, not a setting
_FIX = "export the model with labkit.onnx.export_onnx(model, example, path) first"


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
    exporter_optimize: bool = True,
) -> Path:
    """Export ``model`` (eval mode) to one self-contained .onnx file and run onnx.checker.

    Uses torch.onnx.export's torch.export-based (dynamo) exporter; the batch axis (dim 0)
    is symbolic ("batch") when dynamic_batch=True, so one file serves batch 1 and batch 32.
    Weights are stored inside the file (external_data=False) and node metadata is stripped.
    exporter_optimize=False keeps the graph as PyTorch wrote it (Conv, BatchNormalization, ...)
    so ONNX Runtime's optimiser has something to fuse (notebook 07); convs without a bias then
    get an explicit zero bias (same output), since a computed zero bias blocks ORT's Conv+BN fusion.

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "2. Export to ONNX".
    """
    _check_export(model, example)
    onnx = require("onnx", why="ONNX export")
    require("onnxscript", why="the dynamo ONNX exporter needs it")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    if not exporter_optimize:
        model = copy.deepcopy(model)
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.bias is None:
                m.bias = nn.Parameter(torch.zeros(m.out_channels))
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
            optimize=exporter_optimize,
            verbose=False,
        )
    proto = strip_metadata(program.model_proto)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return path


def file_size(path: str | Path) -> int:
    """Bytes of a file on disk (what ships to the device).

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "4. INT8 with ONNX Runtime".
    """
    return _check_file(path).stat().st_size


def check_onnx_file(path: str | Path, name: str = "path") -> Path:
    """Return ``path`` as a Path if it is a readable ONNX model, else raise ONE ValueError.

    The message names the file and the fix (export it with export_onnx) whether the file is
    missing, a folder, empty, or not an ONNX protobuf (a truncated download, a .pt file...).
    Used by every function here and in labkit/deploy, labkit/fusion that reads an .onnx file.
    """
    path = _check_file(path, name)
    try:
        model = require("onnx").load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError, and friends: one message for all
        raise ValueError(
            f"{path} is not a valid ONNX model ({type(exc).__name__}); {_FIX} "
            "(a file from another tool or a truncated copy cannot be loaded)."
        ) from None
    if not len(model.graph.node) or not len(model.graph.input):
        raise ValueError(f"{path} holds no ONNX graph (empty or not an ONNX file); {_FIX}.")
    return path


def session_options(
    threads: int = 1,
    opt_level: str = "all",
    sequential: bool = True,
    optimized_path: str | Path | None = None,
) -> ort.SessionOptions:
    """ORT SessionOptions: intra-op threads, graph optimisation level, execution mode.

    opt_level: one of ORT_LEVELS ("disable_all" | "basic" | "extended" | "all").
    optimized_path: where ORT writes the graph after its passes, to inspect the fusions.
    inter_op threads = 1 and sequential execution: one operator at a time, like PyTorch eager.

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "3. Execution providers and session options".
    """
    _check_session_options(threads, opt_level)
    ort = require("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _ORT_ENUM[opt_level])
    so.execution_mode = (
        ort.ExecutionMode.ORT_SEQUENTIAL if sequential else ort.ExecutionMode.ORT_PARALLEL
    )
    so.log_severity_level = 3  # errors only
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    return so


def ort_session(
    path: str | Path,
    *,
    threads: int = 1,
    providers: Sequence[Any] | None = None,
    opt_level: str = "all",
    optimized_path: str | Path | None = None,
) -> ort.InferenceSession:
    """An ORT InferenceSession on ``path`` (CPU provider unless ``providers`` is given).

    providers: names (or (name, options) pairs) from onnxruntime.get_available_providers(),
    in priority order; a name this build lacks is an error, not a silent fall-back to CPU.

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "3. Execution providers and session options".
    """
    path = _check_session(path, providers)
    return require("onnxruntime").InferenceSession(
        str(path),
        session_options(threads, opt_level, optimized_path=optimized_path),
        providers=list(providers) if providers else ["CPUExecutionProvider"],
    )


def ort_runner(session: ort.InferenceSession) -> Callable[[torch.Tensor | np.ndarray], np.ndarray]:
    """fn(x) -> first output of ``session`` as a NumPy array (x: tensor or array, float32).

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "Parity with PyTorch".
    """
    _check_runner(session)
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor | np.ndarray) -> np.ndarray:
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
        return session.run(None, {name: np.ascontiguousarray(arr, dtype=np.float32)})[0]

    return run


def calibration_reader(x: torch.Tensor, input_name: str = "x", batch_size: int = 32) -> Any:
    """An ORT CalibrationDataReader that yields {input_name: float32 batch} then None.

    batches = x[0:b], x[b:2b], ... (the last one may be shorter), as float32 NumPy arrays.
    rewind() starts again from the first batch (ORT's Entropy/Percentile calibrators may
    need several passes). Notebook 09's Exercise 1 re-implements it.
    """
    _check_reader(x, batch_size)
    quant = require("onnxruntime.quantization", "onnxruntime")

    class DigitsReader(quant.CalibrationDataReader):
        def __init__(self) -> None:
            arr = x.detach().cpu().numpy().astype(np.float32)  # (N, ...)
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


def calibration_method(method: str) -> Any:
    """ORT's CalibrationMethod for "minmax" | "entropy" | "percentile" (the course's names)."""
    check_choice(method, "method", CALIBRATION_METHODS)
    quant = require("onnxruntime.quantization", "onnxruntime")
    return getattr(quant.CalibrationMethod, {"minmax": "MinMax"}.get(method, method.title()))


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

    x ~ s * (q - z) with q int8/uint8; s, z of every activation come from the calibration
    batches (calib_x, or ``reader``); weights are per-channel symmetric.
    reduce_range: quantise weights to 7 bits (ORT uses [-64, 64]). None (default) turns it on where
    the CPU has no VNNI: AVX2's vpmaddubsw adds two u8*s8 products into a saturating int16,
    and 255 * 127 * 2 > 32767, so full-range weights can overflow and cost accuracy.

    method: "minmax" (range = [min, max] seen), "entropy" (threshold minimising the KL
    divergence between float and quantised histograms), "percentile" (99.999th).
    Activations are uint8 with a zero point (asymmetric, good for ReLU outputs on CPU);
    symmetric_activations=True gives int8 with z = 0 and float biases, what TensorRT needs.

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "4. INT8 with ONNX Runtime".
    """
    ort_method = calibration_method(method)
    fp32_path = check_onnx_file(fp32_path, "fp32_path")
    quant = require("onnxruntime.quantization", "onnxruntime")
    out_path = Path(out_path)
    act = quant.QuantType.QInt8 if symmetric_activations else quant.QuantType.QUInt8
    # TensorRT's recipe: symmetric int8 everywhere, biases left in float (its DequantizeLinear
    # takes int8 inputs, not ORT's int32 bias codes)
    extra = (
        {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False}
        if symmetric_activations
        else {}
    )
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
            calibrate_method=ort_method,
            reduce_range=reduce_range,
            extra_options=extra,
        )
    _strip_file(out_path)
    return out_path


def quantize_dynamic_int8(fp32_path: str | Path, out_path: str | Path) -> Path:
    """Dynamic INT8: MatMul/Gemm weights int8 offline, activation scale computed per call.

    No calibration data; the runtime pays for a min/max pass over each activation, which
    suits transformers (activation ranges vary per input) better than tiny convnets.

    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "Dynamic INT8 for the transformer".
    """
    fp32_path = check_onnx_file(fp32_path, "fp32_path")
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


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_export(model: object, example: object) -> None:
    check_model(model)
    check_nonempty(check_tensor(example, "example"), "example")


def _check_file(path: object, name: str = "path") -> Path:
    if not isinstance(path, str | Path):
        raise ValueError(f"{name} must be a file path (str or Path), got {type(path).__name__}.")
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ValueError(f"ONNX file {path} {what}; {_FIX}.")
    return path


def _check_session_options(threads: object, opt_level: object) -> None:
    check_choice(opt_level, "opt_level", ORT_LEVELS)
    check_int(threads, "threads", low=1, high=MAX_THREADS)


def _check_session(path: object, providers: object) -> Path:
    if providers is not None:
        if isinstance(providers, str) or not isinstance(providers, Sequence):
            raise ValueError(
                f"providers must be a list such as ['CPUExecutionProvider'], got {providers!r}."
            )
        have = list(require("onnxruntime").get_available_providers())
        for name in (p[0] if isinstance(p, tuple) else p for p in providers):
            if name not in have:
                raise ValueError(
                    f"providers: {name!r} is not an execution provider of this onnxruntime "
                    f"build (available: {have}); pick from onnxruntime.get_available_providers()."
                )
    return check_onnx_file(path)


def _check_runner(session: object) -> None:
    if not callable(getattr(session, "run", None)) or not hasattr(session, "get_inputs"):
        raise ValueError(
            "session must be an onnxruntime.InferenceSession (make one with "
            f"labkit.onnx.ort_session(path)), got {type(session).__name__}."
        )


def _check_reader(x: object, batch_size: object) -> None:
    check_nonempty(check_tensor(x, "x"), "x")
    check_int(batch_size, "batch_size", low=1)
