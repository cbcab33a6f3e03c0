"""Chapter 06, PTQ and QAT (notebooks/06_ptq_and_qat.ipynb):
- ``lesson.py``: the fake-quantised layer (QuantLayer), static and dynamic PTQ with calibrated
  activation ranges, QAT through the straight-through estimator, size accounting.
- ``mixed_precision.py``: per-layer sensitivity, and bit widths chosen under a size budget.
- ``runtimes.py``: PyTorch's and ONNX Runtime's own int8 quantizers, timed against FP32.
"""

from labkit.qat.lesson import (
    QuantLayer,
    calibrate_activations,
    calibration_batches,
    dynamic_ptq,
    prepare,
    qat_finetune,
    qat_model,
    qat_step,
    quant_layers,
    quantizable_layers,
    size_bytes,
    static_ptq,
    weight_qparams,
)
from labkit.qat.mixed_precision import assign_bits, sensitivity
from labkit.qat.runtimes import runtime_table, torch_int8

__all__ = [
    "QuantLayer", "weight_qparams", "quantizable_layers", "prepare", "quant_layers",
    "calibrate_activations", "calibration_batches", "static_ptq", "dynamic_ptq", "qat_model",
    "qat_step", "qat_finetune", "size_bytes",
    "sensitivity", "assign_bits",
    "torch_int8", "runtime_table",
]  # fmt: skip
