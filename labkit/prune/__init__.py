"""Pruning (notebooks/04_pruning.ipynb): remove weights (unstructured) or whole channels.

- ``unstructured.py``: magnitude masks (layer-wise, global), sensitivity scan, BatchNorm
  re-calibration, fine-tuning with the mask held, the iterative schedule, L1 (penalty, proximal).
- ``formats.py``: where zeros pay: CSR and bitmask storage, the 2:4 semi-structured mask.
- ``structured.py``: channel scores (L1, BN gamma, random, Taylor, entropy), channel removal.
- ``heads.py`` / ``blocks.py`` / ``transformer.py``: a transformer's heads (gates) and whole
  blocks (block influence) pruned, on the digit transformer; ``lottery.py``: the ticket rewind.
- ``timing.py``: what is timed (dense vs CSR, 2:4 on a GPU, inference); ``exercises.py``.
"""

from labkit.prune.blocks import block_influence, block_influences, drop_blocks  # noqa: I001
from labkit.prune.formats import model_storage_bytes, nm_mask, storage_bytes
from labkit.prune.heads import (
    accuracy_removing_heads, head_ablation, head_gates, head_importance, mask_heads,
    transformer_blocks,
)  # fmt: skip
from labkit.prune.lottery import lottery_ticket, train_with_snapshot
from labkit.prune.structured import (
    channel_plan, channel_scores, masked_forward_equivalent, prune_channels, prune_conv_pair,
)  # fmt: skip
from labkit.prune.transformer import load_digit_transformer
from labkit.prune.timing import inference_fn, semi_structured_latency, sparse_matmul_latency
from labkit.prune.unstructured import (
    apply_masks, finetune, fit_l1, global_masks, iterative_prune, l1_loss_fn, l1_penalty,
    l1_proximal_step, layer_sparsity, magnitude_mask, prunable_weights, prune_model,
    recalibrate_bn, sensitivity_scan, sparsity, sparsity_schedule,
)  # fmt: skip

__all__ = [
    "accuracy_removing_heads", "apply_masks", "block_influence", "block_influences",
    "channel_plan", "channel_scores", "drop_blocks", "finetune", "fit_l1", "global_masks",
    "head_ablation", "head_gates", "head_importance", "inference_fn", "iterative_prune",
    "l1_loss_fn", "l1_penalty", "l1_proximal_step", "layer_sparsity", "load_digit_transformer",
    "lottery_ticket", "magnitude_mask", "mask_heads", "masked_forward_equivalent",
    "model_storage_bytes", "nm_mask", "prunable_weights", "prune_channels", "prune_conv_pair",
    "prune_model", "recalibrate_bn", "semi_structured_latency", "sensitivity_scan", "sparsity",
    "sparsity_schedule", "sparse_matmul_latency", "storage_bytes", "train_with_snapshot",
    "transformer_blocks",
]  # fmt: skip
