"""Notebook 04's transformer: the course's small digit transformer, loaded for pruning.

The 8 rows of an (N, 1, 8, 8) digit are 8 tokens of 8 pixels: Linear(8, 64) + a learned
position embedding -> 2 x labkit.models.TransformerBlock (4 heads of 16 features, not causal)
-> LayerNorm -> mean over tokens -> Linear(64, 10). Weights: data/digit_transformer.safetensors.

A deliberate copy of labkit.deploy.transformer.DigitTransformer: notebook 09 teaches that
package, and the import rule lets notebook 04 use only topics taught up to 04. The state-dict
keys are the same, and tests/prune/test_heads_blocks_lottery.py proves both give
the same logits.
"""

from __future__ import annotations

import torch
from torch import nn

from labkit.core import assets, models

CHECKPOINT, D_MODEL, HEADS, DEPTH = "digit_transformer", 64, 4, 2


class RowTransformer(nn.Module):
    """(N, 1, 8, 8) digits -> (N, 10) logits; the layout of the module docstring.

    Used by load_digit_transformer (labkit/prune/transformer.py).
    """

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(8, D_MODEL)
        self.pos = nn.Parameter(torch.zeros(1, 8, D_MODEL))
        self.blocks = nn.ModuleList(
            models.TransformerBlock(D_MODEL, HEADS, causal=False, sdpa=True) for _ in range(DEPTH)
        )
        self.norm = nn.LayerNorm(D_MODEL)
        self.head = nn.Linear(D_MODEL, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.reshape(x.shape[0], 8, 8)) + self.pos  # (N, 8 rows, d)
        for block in self.blocks:
            h, _ = block(h)  # (N, 8, d); the (k, v) cache is unused
        return self.head(self.norm(h).mean(dim=1))  # (N, d) -> (N, 10)


def load_digit_transformer() -> tuple[RowTransformer, dict[str, str]]:
    """The shipped digit transformer (eval mode) and its metadata (how it was trained).

    A missing or damaged data/digit_transformer.safetensors raises a ValueError naming the fix.
    Taught in notebooks/04_pruning.ipynb, "11. Attention heads: which can go?".
    """
    model = RowTransformer()
    meta = assets.load_weights(model, CHECKPOINT)
    return model.eval(), meta
