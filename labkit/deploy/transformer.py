"""The second model notebook 09 deploys: a small transformer that reads digits row by row.

The 8 rows of an (N, 1, 8, 8) image are 8 tokens of 8 pixels; a bundled checkpoint
(data/digit_transformer.safetensors, labkit.assets) spares the notebook its training time.
"""

from __future__ import annotations

from labkit.core import assets, data, env, train
from labkit.core.errors import check_bool
from labkit.core.models import DigitTransformer

TRANSFORMER_ASSET = "digit_transformer"


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
    _check_load_transformer(retrain)
    model, meta = assets.load(TRANSFORMER_ASSET, retrain=retrain)
    return model, meta  # type: ignore[return-value]


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_load_transformer(retrain: object) -> None:
    why = "any non-empty string counts as True, which would retrain and overwrite the checkpoint"
    check_bool(retrain, "retrain", why)
