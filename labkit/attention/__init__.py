"""Notebook 08, FlashAttention: attention without the N x N matrix.

- ``lesson.py``: naive attention and its N x N memory, safe and online softmax, the tile update
  and tiled (FlashAttention-2 order) forward pass, memory/time measurement, IO complexity.
- ``backends.py``: PyTorch's SDPA backends (which kernel runs, forced and timed), flash-attn and
  xFormers on a GPU.
- ``exercises.py``: the notebook's exercises (online softmax, one tile update).
"""

from labkit.attention.backends import (
    KERNEL_NAMES,
    flash_attn_attention,
    forced_backend,
    optional_kernel_notice,
    sdpa_kernel_used,
    time_backends,
    time_cuda_backends,
    xformers_attention,
)
from labkit.attention.lesson import (
    MAX_BYTES,
    SRAM_BYTES_PER_SM,
    io_complexity,
    memory_and_time,
    naive_attention,
    online_softmax,
    safe_softmax,
    score_matrix_bytes,
    tile_update,
    tiled_attention,
)

__all__ = [
    "KERNEL_NAMES", "MAX_BYTES", "SRAM_BYTES_PER_SM", "flash_attn_attention", "forced_backend",
    "io_complexity", "memory_and_time", "naive_attention", "online_softmax",
    "optional_kernel_notice", "safe_softmax", "score_matrix_bytes", "sdpa_kernel_used",
    "tile_update", "tiled_attention", "time_backends", "time_cuda_backends", "xformers_attention",
]  # fmt: skip
