"""Chapter 12, distributed training (notebooks/12_distributed_training.ipynb).

- ``lesson.py``: the ring all-reduce and its bytes, ZeRO memory per GPU, the single-process
  reference that DDP must match, the torchrun launcher, activation checkpointing.
- ``parallel.py``: pipeline schedules (GPipe, 1F1B) and their bubble, the Megatron MLP's
  tensor-parallel partial sums, collective costs and data-parallel scaling efficiency.
- ``worker.py``: the torchrun worker (DDP, no_sync, ZeroRedundancyOptimizer, FSDP, a two-stage
  pipeline and a tensor-parallel MLP on gloo).
- ``exercises.py``, ``widget.py``: the notebook's exercises and ZeRO memory calculator.
"""

from labkit.distributed.lesson import (  # noqa: I001 (packed to keep the face short)
    GLOBAL_BATCH, LR, STEPS, checkpoint_costs, checkpoint_timing, checkpointed_activation_bytes,
    deep_mlp, forward_backward, global_batches, launch, make_model, optimizer_state_bytes,
    parameter_server_bytes, reference_gradients, ring_allreduce, ring_bytes_per_worker,
    ring_schedule, segment_label, state_max_diff, tensor_bytes, train_single, zero_memory,
)  # fmt: skip
from labkit.distributed.parallel import (  # noqa: I001
    COLLECTIVES, bubble_fraction, collective_cost, dp_efficiency, in_flight, megatron_mlp_partials,
    pipeline_schedule, schedule_bubble, schedule_figure,
)  # fmt: skip

__all__ = [
    "COLLECTIVES", "GLOBAL_BATCH", "LR", "STEPS", "bubble_fraction", "checkpoint_costs",
    "checkpoint_timing", "checkpointed_activation_bytes", "collective_cost", "deep_mlp",
    "dp_efficiency", "forward_backward", "global_batches", "in_flight", "launch", "make_model",
    "megatron_mlp_partials", "optimizer_state_bytes", "parameter_server_bytes", "pipeline_schedule",
    "reference_gradients", "ring_allreduce", "ring_bytes_per_worker", "ring_schedule",
    "schedule_bubble", "schedule_figure", "segment_label", "state_max_diff", "tensor_bytes", "train_single",
    "zero_memory",
]  # fmt: skip
