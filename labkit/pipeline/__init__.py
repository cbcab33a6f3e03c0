"""Chapter 13, the capstone (notebooks/13_capstone_pipeline.ipynb).

- ``lesson.py``: one model through every stage (distil, prune + fine-tune, QAT, export to
  ONNX FP32 and INT8), the stage table (accuracy, bytes, MACs, interleaved latency), the
  compression summary, the Pareto front and the pick under a budget.
- ``exercises.py``: the notebook's exercises (compression_summary, pick_stage).
"""

from labkit.pipeline.lesson import (  # noqa: I001 (packed to keep the face short)
    TARGET, Stage, accuracy_rows, clearly_faster, compare_stages, compression_summary,
    distill_student, export_float, export_onnx_int8, meets_target, onnx_stage, pareto_figure,
    pareto_stages, pick_stage, prune_and_finetune, quantization_aware, run_pipeline,
    torch_stage, with_latency,
)  # fmt: skip

__all__ = [
    "TARGET", "Stage", "accuracy_rows", "clearly_faster", "compare_stages", "compression_summary",
    "distill_student", "export_float", "export_onnx_int8", "meets_target", "onnx_stage",
    "pareto_figure", "pareto_stages", "pick_stage", "prune_and_finetune", "quantization_aware",
    "run_pipeline", "torch_stage", "with_latency",
]  # fmt: skip
