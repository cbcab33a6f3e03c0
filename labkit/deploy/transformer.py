"""The second model notebook 09 deploys: a small transformer that reads digits row by row.

The 8 rows of an (N, 1, 8, 8) image are 8 tokens of 8 pixels; a bundled checkpoint
(data/digit_transformer.safetensors, labkit.assets) spares the notebook its training time.
"""

from __future__ import annotations

import torch
from torch import nn

from labkit.core import assets, data, env, models, train
from labkit.core.errors import check_int

TRANSFORMER_ASSET = "digit_transformer"
MAX_D_MODEL, MAX_DEPTH = 1024, 16  # 16 blocks of d=1024 hold 200 M parameters (0.8 GB)


class DigitTransformer(nn.Module):
    """Digits as sequences: the 8 rows of an (N, 1, 8, 8) image are 8 tokens of 8 pixels.

    Linear(8, d) + learned position embedding -> depth x labkit.models.TransformerBlock (not
    causal: every row sees every row; attention by F.scaled_dot_product_attention) -> LayerNorm
    -> mean over tokens -> Linear(d, 10).  Output (N, 10) logits.
    Used by digit_transformer (labkit/deploy/transformer.py).
    """

    def __init__(self, d_model: int = 64, heads: int = 4, depth: int = 2) -> None:
        _check_sizes(d_model, heads, depth)
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos = nn.Parameter(torch.zeros(1, 8, d_model))
        self.blocks = nn.ModuleList(
            models.TransformerBlock(d_model, heads, causal=False, sdpa=True) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.reshape(x.shape[0], 8, 8)) + self.pos  # (N, 8 rows, d)
        for block in self.blocks:
            h, _ = block(h)  # the block's (k, v) is a cache for generation: unused here
        return self.head(self.norm(h).mean(dim=1))  # (N, d) -> (N, 10)


def digit_transformer(d_model: int = 64, heads: int = 4, depth: int = 2) -> DigitTransformer:
    """A small transformer classifier for 8x8 digits (rows as tokens); see DigitTransformer.

    Used by load_transformer (labkit/deploy/transformer.py), which builds the checkpoint's model.
    """
    return DigitTransformer(d_model, heads, depth)


def train_transformer(epochs: int = 15) -> tuple[DigitTransformer, dict[str, str]]:
    """Train digit_transformer() on digits (seed 0, 2 threads): (model, metadata).

    The metadata holds its test accuracy; labkit.assets saves the pair as
    data/digit_transformer.safetensors (``python -m labkit.course.train_assets digit_transformer``).
    Used by load (labkit/core/assets.py) through the registration below; train.fit checks epochs.
    """
    env.seed_everything(0)
    with env.threads(2):
        model = digit_transformer()
        loaders = data.digits_loaders(64)
        train.fit(model, loaders.train, epochs=epochs, lr=2e-3)
        acc = train.evaluate(model, loaders.test)["accuracy"]
    return model, {"test_accuracy": f"{acc:.4f}", "epochs": str(epochs)}


assets.register(TRANSFORMER_ASSET, build=lambda meta: digit_transformer(), train=train_transformer)


def load_transformer(retrain: bool = False) -> tuple[DigitTransformer, dict[str, str]]:
    """The bundled digit transformer (eval mode) and its metadata (labkit.assets.load).

    retrain=True (or a missing file) trains and saves it again first.
    Taught in notebooks/09_onnx_and_tensorrt.ipynb, "A small transformer block".
    """
    model, meta = assets.load(TRANSFORMER_ASSET, retrain=retrain)
    return model, meta  # type: ignore[return-value]


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_sizes(d_model: object, heads: object, depth: object) -> None:
    d_model = check_int(d_model, "d_model", low=1, high=MAX_D_MODEL)
    heads = check_int(heads, "heads", low=1, high=d_model)
    check_int(depth, "depth", low=1, high=MAX_DEPTH)
    if d_model % heads:
        raise ValueError(
            f"d_model={d_model} must be divisible by heads={heads} (each head gets "
            f"d_model / heads features); try heads={max(h for h in (1, 2, 4, 8) if d_model % h == 0)}."
        )
