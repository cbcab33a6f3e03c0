"""Chapter 12, distributed training (notebooks/12_distributed_training.ipynb).

- ``lesson.py``: the ring all-reduce and its bytes, ZeRO memory per GPU, the single-process
  reference that DDP must match, the torchrun launcher, activation checkpointing.
- ``worker.py``: the torchrun worker (DDP, no_sync, ZeroRedundancyOptimizer, FSDP on gloo).
- ``exercises.py``, ``widget.py``: the notebook's exercises and ZeRO memory calculator.
"""

from labkit.distributed.lesson import (  # noqa: I001 (packed to keep the face short)
    GLOBAL_BATCH, LR, STEPS, checkpoint_costs, checkpoint_timing, checkpointed_activation_bytes,
    deep_mlp, forward_backward, global_batches, launch, make_model, optimizer_state_bytes,
    parameter_server_bytes, ring_allreduce, ring_bytes_per_worker, ring_schedule, segment_label,
    state_max_diff, tensor_bytes, train_single, zero_memory,
)  # fmt: skip

__all__ = [
    "GLOBAL_BATCH", "LR", "STEPS", "checkpoint_costs", "checkpoint_timing",
    "checkpointed_activation_bytes", "deep_mlp", "forward_backward", "global_batches", "launch",
    "make_model", "optimizer_state_bytes", "parameter_server_bytes", "ring_allreduce",
    "ring_bytes_per_worker", "ring_schedule", "segment_label", "state_max_diff", "tensor_bytes",
    "train_single", "zero_memory",
]  # fmt: skip
