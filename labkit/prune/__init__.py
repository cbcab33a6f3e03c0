"""Pruning (notebooks/04_pruning.ipynb): remove weights (unstructured) or whole channels.

- ``unstructured.py``: magnitude masks (layer-wise, global), sensitivity scan, BatchNorm
  re-calibration, fine-tuning with the mask held, the iterative schedule, L1 regularisation
  (penalty and proximal step).
- ``formats.py``: where zeros pay: CSR and bitmask storage, the 2:4 semi-structured mask.
- ``structured.py``: channel scores (L1, BN gamma, random, Taylor, entropy) and channel
  pruning with physical removal (a smaller nn.Sequential).
- ``timing.py``: what is timed: dense vs CSR matmul, 2:4 on a GPU, a model's inference call.
- ``exercises.py``: the notebook's exercises.
"""

from labkit.prune.formats import model_storage_bytes, nm_mask, storage_bytes  # noqa: I001
from labkit.prune.structured import (
    channel_plan, channel_scores, masked_forward_equivalent, prune_channels, prune_conv_pair,
)  # fmt: skip
from labkit.prune.timing import inference_fn, semi_structured_latency, sparse_matmul_latency
from labkit.prune.unstructured import (
    apply_masks, finetune, fit_l1, global_masks, iterative_prune, l1_loss_fn, l1_penalty,
    l1_proximal_step, layer_sparsity, magnitude_mask, prunable_weights, prune_model,
    recalibrate_bn, sensitivity_scan, sparsity, sparsity_schedule,
)  # fmt: skip

__all__ = [
    "apply_masks", "channel_plan", "channel_scores", "finetune", "fit_l1", "global_masks",
    "inference_fn", "iterative_prune", "l1_loss_fn", "l1_penalty", "l1_proximal_step",
    "layer_sparsity", "magnitude_mask", "masked_forward_equivalent", "model_storage_bytes",
    "nm_mask", "prunable_weights", "prune_channels", "prune_conv_pair", "prune_model",
    "recalibrate_bn", "semi_structured_latency", "sensitivity_scan", "sparsity",
    "sparsity_schedule", "sparse_matmul_latency", "storage_bytes",
]  # fmt: skip
