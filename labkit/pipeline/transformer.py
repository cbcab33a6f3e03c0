"""The pipeline's compression stages on a small transformer (labkit.deploy's digit transformer).

The digit transformer (an 8x8 digit as 8 row tokens, 2 blocks, d_model 64; the checkpoint
data/digit_transformer.safetensors, read only) has no conv channels to cut, so the stages are
the ones that apply to Linear layers:

    FP32 --static PTQ(b)--> b-bit weights and activations, for each b in ``bits``
    FP32 --magnitude pruning (each Linear to ``sparsity``) + fine-tune with the masks-->
         --static PTQ(bits[0])--> sparse b-bit

bytes = qat.size_bytes (dense storage at the bits: unstructured zeros are still stored, so
pruning alone does not shrink the file; see notebook 04 for sparse formats).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from labkit import prune, qat
from labkit.core import train
from labkit.core.errors import (
    check_int,
    check_loader,
    check_model,
    check_nonempty,
    check_number,
    check_tensor,
)


def transformer_stages(
    model: nn.Module,
    loader: DataLoader,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    bits: Sequence[int] = (8, 4),
    sparsity: float = 0.5,
    finetune_epochs: int = 1,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows {"stage", "accuracy", "bytes", "nonzero weights"} of the stages above, FP32 first.
    ``model`` is not changed. x (N, 1, 8, 8), y (N,): the test split.
    Taught in notebooks/13_capstone_pipeline.ipynb, "12. The same stages on a transformer".
    """
    _check_transformer(model, loader, x, y, bits, sparsity, finetune_epochs)
    calib = qat.calibration_batches(loader, 4)
    stages: list[tuple[str, nn.Module, nn.Module, int]] = [("FP32", model, model, 32)]
    stages += [(f"PTQ {b}-bit", qat.static_ptq(model, calib, b), model, b) for b in bits]
    torch.manual_seed(seed)
    sparse = copy.deepcopy(model)
    masks = prune.prune_model(sparse, sparsity, scope="layer")  # each Linear to `sparsity`
    prune.finetune(sparse, loader, masks, epochs=finetune_epochs, lr=1e-4)
    name = f"{round(100 * sparsity)} % pruned + fine-tuned"
    stages += [(name, sparse, sparse, 32)]
    stages += [
        (f"{name} + PTQ {bits[0]}-bit", qat.static_ptq(sparse, calib, bits[0]), sparse, bits[0])
    ]
    rows = []
    for stage, run, plain, b in stages:
        with torch.inference_mode():
            acc = train.accuracy(run.eval(), x, y)
        nonzero = sum(int(w.count_nonzero()) for w in prune.prunable_weights(plain).values())
        rows.append(
            {
                "stage": stage,
                "accuracy": acc,
                "bytes": qat.size_bytes(plain, b),
                "nonzero weights": nonzero,
            }
        )
    return rows


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_transformer(
    model: object, loader: object, x: object, y: object, bits: object, sparsity: object,
    finetune_epochs: object,
) -> None:  # fmt: skip
    check_model(model, "model")
    check_loader(loader)
    check_nonempty(check_tensor(x, "x", ndim=4), "x")
    if not isinstance(y, torch.Tensor) or y.shape != (len(x),):  # type: ignore[arg-type]
        raise ValueError("y must be a tensor with one label per image of x.")
    for b in check_nonempty(bits, "bits"):  # type: ignore[arg-type]
        if not (isinstance(b, int) and not isinstance(b, bool) and 2 <= b <= 8):
            raise ValueError(f"bits must be integers in 2..8, got {b!r}.")
    check_number(
        sparsity, "sparsity (the fraction of each layer's weights to zero)", low=0, high=0.99
    )
    check_int(finetune_epochs, "finetune_epochs", low=1, high=100)
