"""Chapter 01, mixed precision (notebooks/01_mixed_precision.ipynb):
- ``formats.py``: fp32/fp16/bf16/fp8 bit layouts, limits from the bits, what 16 bits lose.
- ``scaling.py``: the dynamic loss-scale rule and DynamicLossScaler (= torch.amp.GradScaler).
- ``autocast.py``: which ops autocast runs in which dtype (CPU's and CUDA's tables), what AMP
  saves in memory, bf16 on this CPU, CUDA fp16.
"""

from labkit.precision.autocast import AUTOCAST_PROBES, amp_memory, amp_train_step  # noqa: I001 (names grouped by line)
from labkit.precision.autocast import autocast_policy, bf16_support, bf16_verdict
from labkit.precision.autocast import cuda_fp16_training, op_dtypes
from labkit.precision.formats import FORMATS, FloatFormat, bits_to_float, explain, fields
from labkit.precision.formats import float_to_bits, get_format, limits, limits_table
from labkit.precision.formats import round_trip, running_sum, underflow_fraction
from labkit.precision.scaling import DynamicLossScaler, gradient_sequence, replay_gradients
from labkit.precision.scaling import update_scale

__all__ = ["FORMATS", "FloatFormat", "bits_to_float", "explain", "fields", "float_to_bits"]
__all__ += ["get_format", "limits", "limits_table", "round_trip", "running_sum"]
__all__ += ["underflow_fraction", "DynamicLossScaler", "gradient_sequence", "replay_gradients"]
__all__ += ["update_scale", "AUTOCAST_PROBES", "amp_memory", "amp_train_step", "autocast_policy"]
__all__ += ["bf16_support", "bf16_verdict", "cuda_fp16_training", "op_dtypes"]
