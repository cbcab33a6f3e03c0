"""Chapter 02, gradient accumulation (notebooks/02_gradient_accumulation.ipynb):
- ``lesson.py``: the n_i / N rule proved against the big batch, the wrong versions, training
  with it, and what breaks it (BatchNorm, dropout, clipping before unscaling under AMP).
- ``ddp_memory.py``: one all-reduce per step with DDP's no_sync, and the memory it buys.
"""

from labkit.accumulation.ddp_memory import (
    count_allreduces,
    peak_memory_sweep,
    saved_activation_bytes,
)
from labkit.accumulation.lesson import (
    accumulate_gradients,
    accumulate_wrong,
    allclose,
    batchnorm_effect,
    big_batch_gradients,
    clip_order_effect,
    dropout_effect,
    gradients,
    max_abs_diff,
    max_rel_diff,
    micro_batches,
    train_accumulated,
)

__all__ = [
    "accumulate_gradients", "accumulate_wrong", "allclose", "batchnorm_effect",
    "big_batch_gradients", "clip_order_effect", "dropout_effect", "gradients", "max_abs_diff",
    "max_rel_diff", "micro_batches", "train_accumulated", "count_allreduces",
    "peak_memory_sweep", "saved_activation_bytes",
]  # fmt: skip
