"""Input checks shared by the edge modules (lesson.py, nas.py, energy.py) and labkit.pipeline.

Each raises one ValueError that names the parameter, says what it got and how to fix it,
before any training, timing or large allocation starts.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from labkit.core.errors import check_int, check_loader


def _check_loaders(loaders: object, epochs: object) -> None:
    """The Loaders (train, val, ...) of labkit.data.digits_loaders() and a number of epochs."""
    if not all(hasattr(loaders, split) for split in ("train", "val")):
        raise ValueError(
            "loaders must be the Loaders (train, val, test) of labkit.data.digits_loaders(), "
            f"got {type(loaders).__name__} (pass all three, not loaders.train)."
        )
    check_loader(loaders.train, "loaders.train")  # type: ignore[attr-defined]
    check_int(epochs, "epochs", low=1, high=1000)


def _check_fits(model: nn.Module, example: torch.Tensor, name: str = "example") -> None:
    """One forward of example[:1] in eval mode (no grad, mode restored): a shape the model
    cannot take becomes one sentence instead of a traceback from inside a layer."""
    was = model.training
    try:
        with torch.no_grad():
            model.eval()(example[:1])
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        _misfit(example, name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    finally:
        model.train(was)


def _check_shapes(model: nn.Module, example: torch.Tensor, name: str = "example") -> None:
    """_check_fits without running anything (for budgets, which measures memory next): the
    shapes through a Sequential of Conv2d / pooling / Flatten / Linear layers, worked out with
    the layers' size formulas, as far as the layers are of those kinds."""
    shape = list(example.shape[1:])  # one example, no batch axis
    for layer in model.children() if isinstance(model, nn.Sequential) else ():
        if isinstance(layer, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            if isinstance(layer.padding, str) or getattr(layer, "ceil_mode", False):
                return None  # 'same' padding or ceil_mode: the forward will tell
            if len(shape) != 3 or (isinstance(layer, nn.Conv2d) and shape[0] != layer.in_channels):
                return _misfit(example, name, f"{type(layer).__name__} gets {tuple(shape)}")
            k, s, p, d = (
                _pair(getattr(layer, a, 1))
                for a in ("kernel_size", "stride", "padding", "dilation")
            )
            hw = [
                (n + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate(shape[1:])
            ]
            if min(hw) < 1:
                return _misfit(
                    example, name, f"{type(layer).__name__} leaves no pixel of {tuple(shape)}"
                )
            shape = [layer.out_channels if isinstance(layer, nn.Conv2d) else shape[0], *hw]
        elif isinstance(layer, nn.Flatten) and layer.start_dim == 1 and layer.end_dim == -1:
            shape = [math.prod(shape)]
        elif isinstance(layer, nn.Linear):
            if shape[-1] != layer.in_features:
                return _misfit(
                    example, name, f"Linear({layer.in_features}, ...) gets {tuple(shape)}"
                )
            shape = [*shape[:-1], layer.out_features]
        elif not isinstance(layer, nn.BatchNorm2d | nn.ReLU | nn.Dropout | nn.Identity):
            return None  # a layer without a size formula here: the forward will tell
    return None


def _pair(v: object) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value, arg-type]


def _misfit(example: torch.Tensor, name: str, why: str) -> None:
    raise ValueError(
        f"{name} of shape {tuple(example.shape)} does not fit the model ({why}); "
        "pass a batch shaped like the model's input, e.g. (N, 1, 8, 8) for the course CNN."
    ) from None


def _check_candidate(width: object, depth: object, loaders: object, epochs: object) -> None:
    """The (width, depth) of labkit.models.cnn and what trains it (edge.train_candidate)."""
    check_int(width, "width", low=1)
    check_int(depth, "depth", low=2)
    _check_loaders(loaders, epochs)
