"""The same calibration data through ONNX Runtime's own calibrators (MinMax, Percentile, KL).

A one-node ONNX model (Y = X * 1) lets ORT's calibrator see exactly the tensor our observers
saw, so the two ranges can be compared number for number (notebook 05, part 5).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import torch

from labkit.core.errors import check_choice, check_int, check_percentile, check_tensor, require
from labkit.core.onnx import CALIBRATION_METHODS, calibration_method, calibration_reader


def ort_range(
    batches: list[torch.Tensor],
    method: str = "minmax",
    symmetric: bool = False,
    **options: object,
) -> tuple[float, float]:
    """The range ONNX Runtime's own calibrator picks for the same data (lo, hi).

    Builds a one-node ONNX model (Y = X * 1), feeds the concatenated ``batches`` through
    ``onnxruntime.quantization.calibrate.create_calibrator`` with CalibrationMethod
    MinMax / Entropy / Percentile and reads the range of X. ``options`` go to
    ``extra_options`` (e.g. num_bins=2048, num_quantized_bins=128, percentile=99.99).

    Taught in notebooks/05_quantization_math.ipynb, "5. The same data through ONNX Runtime's calibrators".
    """
    x = _check_ort_range(batches, method, options)  # (1, N) float32: every batch, concatenated
    onnx = require("onnx", why="to build the model ONNX Runtime calibrates")
    require("onnxruntime", why="ONNX Runtime's calibrators")
    from onnx import TensorProto, helper
    from onnxruntime.quantization.calibrate import create_calibrator

    io_info = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, None]) for n in "XY"]
    graph = helper.make_graph(
        [helper.make_node("Mul", ["X", "one"], ["Y"])],
        "calib",
        io_info[:1],
        io_info[1:],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        path = Path(tmp) / "calib.onnx"
        onnx.save(model, str(path))
        cal = create_calibrator(
            path,
            ["Mul"],
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=calibration_method(method),  # the one name -> ORT table
            extra_options={"symmetric": symmetric, **options},
        )
        cal.collect_data(calibration_reader(x, "X", batch_size=1))  # one batch: ORT stacks them
        lo, hi = cal.compute_data()["Y"].range_value
    return float(np.asarray(lo).reshape(-1)[0]), float(np.asarray(hi).reshape(-1)[0])


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_ort_range(batches: object, method: object, options: dict[str, object]) -> torch.Tensor:
    """The batches flattened and concatenated: float32 (1, N), all finite."""
    check_choice(method, "method", CALIBRATION_METHODS)
    if isinstance(batches, torch.Tensor) or not isinstance(batches, (list, tuple)) or not batches:
        raise ValueError("batches must be a non-empty list of tensors (for one tensor: [x]).")
    if "percentile" in options:
        check_percentile(options["percentile"], "percentile")
    for name in ("num_bins", "num_quantized_bins"):
        if name in options:  # ORT allocates and searches them: 2**20 is far beyond useful
            check_int(options[name], name, low=2, high=2**20)
    flat = [check_tensor(b, f"batches[{i}]").detach().reshape(-1) for i, b in enumerate(batches)]
    x = torch.cat(flat).float()  # (N,)
    if x.numel() == 0 or not bool(torch.isfinite(x).all()):
        raise ValueError("batches must hold at least one value, all finite (no NaN or inf).")
    return x[None, :]
