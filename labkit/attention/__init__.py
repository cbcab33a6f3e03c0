"""Notebook 08, FlashAttention: attention without the N x N matrix, forward and backward.

- ``lesson.py``: naive attention and its N x N memory, safe and online softmax, the tile update
  and tiled (FlashAttention-2 order) forward pass, memory/time measurement, IO complexity.
- ``loop_order.py``: FlashAttention-1 vs -2 loop nests, block sizes from SRAM, HBM traffic.
- ``flash.py``: flash_forward (with the logsumexp) and flash_backward, tile by tile; memory probes.
- ``fused.py``: the fused versions (torch.compile on CPU; Triton on a GPU, from triton_kernels.py).
- ``backends.py``: PyTorch's SDPA backends, flash-attn and xFormers on a GPU, their feature table.
- ``exercises.py``: the notebook's exercises (online softmax, tile update, backward tile, HBM).
"""

from labkit.attention.backends import FEATURES, FEATURES_AS_OF, KERNEL_NAMES, feature_table  # noqa: I001 (names grouped by line)
from labkit.attention.backends import flash_attn_attention, forced_backend, optional_kernel_notice
from labkit.attention.backends import sdpa_kernel_used, time_backends, time_cuda_backends
from labkit.attention.backends import xformers_attention
from labkit.attention.flash import backward_tile, causal_tile_mask, flash_attention, flash_backward
from labkit.attention.flash import flash_forward, largest_tensor, train_step_memory
from labkit.attention.fused import compiled_flash_forward, parallel_flash_forward, triton_notice
from labkit.attention.fused import time_fused_forward, triton_flash_backward, triton_flash_forward
from labkit.attention.lesson import MAX_BYTES, SRAM_BYTES_PER_SM, io_complexity, memory_and_time
from labkit.attention.lesson import naive_attention, online_softmax, safe_softmax, tile_update
from labkit.attention.lesson import score_matrix_bytes, tiled_attention
from labkit.attention.loop_order import flash_block_sizes, hbm_traffic, loop_order_forward

__all__ = ["FEATURES", "FEATURES_AS_OF", "KERNEL_NAMES", "feature_table", "flash_attn_attention"]
__all__ += ["forced_backend", "optional_kernel_notice", "sdpa_kernel_used", "time_backends"]
__all__ += ["time_cuda_backends", "xformers_attention", "backward_tile", "causal_tile_mask"]
__all__ += ["flash_attention", "flash_backward", "flash_forward", "largest_tensor"]
__all__ += ["train_step_memory", "compiled_flash_forward", "parallel_flash_forward"]
__all__ += ["triton_notice", "time_fused_forward", "triton_flash_backward", "triton_flash_forward"]
__all__ += ["MAX_BYTES", "SRAM_BYTES_PER_SM", "io_complexity", "memory_and_time"]
__all__ += ["naive_attention", "online_softmax", "safe_softmax", "tile_update"]
__all__ += ["score_matrix_bytes", "tiled_attention", "flash_block_sizes", "hbm_traffic"]
__all__ += ["loop_order_forward"]
