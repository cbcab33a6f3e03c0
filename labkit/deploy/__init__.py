"""Chapter 09, ONNX Runtime and TensorRT: the lesson's own code, by module.

- runtime.py: describe_onnx (onnx.checker + summary), execution providers and the ORT route
  to the GPU, parity (|g - e| <= atol + rtol * |e|, elementwise), speedup_trend (batch 1 -> 32).
- transformer.py: the small digit transformer the chapter deploys, and its checkpoint.
- trt.py: TensorRT >= 10 engines from ONNX (strongly typed: FP16 graphs, Q/DQ INT8), GPU only.

Export, ORT sessions and ORT INT8 are core plumbing (labkit/core/onnx.py, met in 06-07):
call them as labkit.onnx.export_onnx, labkit.onnx.ort_session, ...
"""

from labkit.deploy.runtime import (
    available_providers,
    describe_onnx,
    gpu_providers,
    parity,
    speedup_trend,
)
from labkit.deploy.transformer import (
    DigitTransformer,
    digit_transformer,
    load_transformer,
    train_transformer,
)
from labkit.deploy.trt import (
    build_engine,
    export_fp16_onnx,
    export_int8_qdq_onnx,
    run_batched,
    runner,
    tensorrt,
)

__all__ = [
    "available_providers", "describe_onnx", "gpu_providers", "parity", "speedup_trend",
    "DigitTransformer", "digit_transformer", "load_transformer", "train_transformer",
    "build_engine", "export_fp16_onnx", "export_int8_qdq_onnx", "run_batched", "runner",
    "tensorrt",
]  # fmt: skip
