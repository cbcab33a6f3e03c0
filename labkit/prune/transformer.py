"""Notebook 04's transformer: the course's small digit transformer, loaded for pruning.

The 8 rows of an (N, 1, 8, 8) digit are 8 tokens of 8 pixels: Linear(8, 64) + a learned
position embedding -> 2 x TransformerBlock (4 heads of 16 features, not causal) -> LayerNorm
-> mean over tokens -> Linear(64, 10): labkit.core.models.DigitTransformer, the one class that
notebook 09 deploys too. Weights: data/digit_transformer.safetensors.
"""

from __future__ import annotations

from labkit.core import assets
from labkit.core.models import DigitTransformer

CHECKPOINT = "digit_transformer"


def load_digit_transformer() -> tuple[DigitTransformer, dict[str, str]]:
    """The shipped digit transformer (eval mode) and its metadata (how it was trained).

    A missing or damaged data/digit_transformer.safetensors raises a ValueError naming the fix.
    Taught in notebooks/04_pruning.ipynb, "11. Attention heads: which can go?".
    """
    model = DigitTransformer()
    meta = assets.load_weights(model, CHECKPOINT)
    return model.eval(), meta
