"""Chapter 13, the capstone (notebooks/13_capstone_pipeline.ipynb).

- ``lesson.py``: one model through every stage (distil, prune + fine-tune, QAT, export to
  ONNX FP32 and INT8), the stage table (accuracy, bytes, MACs, interleaved latency), the
  compression summary, the stage front and the pick under a budget.
- ``ablation.py``: does the order matter? prune/quantise and distil/prune both ways, over seeds.
- ``pareto.py``: a real sweep (width x prune ratio x bits), its size-accuracy front, the
  choice under a size budget.
- ``transformer.py``: the same stages (PTQ, pruning) on labkit.deploy's digit transformer.
- ``exercises.py``: the notebook's exercises (compression_summary, pick_stage,
  choose_under_budget).
- ``checks.py``: the input checks of the steps and of the stage table's rows.
"""

from labkit.pipeline.ablation import (  # noqa: I001 (packed to keep the face short)
    DISTIL_ORDERS, QUANT_ORDERS, order_ablation, order_table, order_verdict,
    prune_then_quantise, quantise_then_prune,
)  # fmt: skip
from labkit.pipeline.lesson import (  # noqa: I001
    TARGET, Stage, accuracy_rows, clearly_faster, compare_stages, compression_summary,
    distill_student, export_float, export_onnx_int8, meets_target, onnx_stage, pareto_stages,
    pick_stage, prune_and_finetune, quantization_aware, run_pipeline, torch_stage, with_latency,
)  # fmt: skip
from labkit.pipeline.pareto import choose_under_budget, sweep, sweep_figure, sweep_front
from labkit.pipeline.transformer import transformer_stages

__all__ = [
    "DISTIL_ORDERS", "QUANT_ORDERS", "TARGET", "Stage", "accuracy_rows", "choose_under_budget",
    "clearly_faster", "compare_stages", "compression_summary", "distill_student", "export_float",
    "export_onnx_int8", "meets_target", "onnx_stage", "order_ablation", "order_table",
    "order_verdict", "pareto_stages", "pick_stage", "prune_and_finetune", "prune_then_quantise",
    "quantise_then_prune", "quantization_aware", "run_pipeline", "sweep", "sweep_figure",
    "sweep_front", "torch_stage", "transformer_stages", "with_latency",
]  # fmt: skip
