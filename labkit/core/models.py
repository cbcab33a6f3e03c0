"""The small model families the course uses on 8x8 digits (width is the knob).

cnn(width=w, depth=d):  [Conv3x3 -> BN -> ReLU] x d, a 2x2 max-pool after the second block,
                        Flatten, Linear(c_last * 4 * 4 -> 10).  Input (N, 1, 8, 8).
                        Channels: w, 2w, 2w, ... (doubling once).
mlp(width=w, depth=d):  Flatten, [Linear -> ReLU (-> Dropout)] x d, Linear(w -> 10).  Input (N, 64).

Both are plain nn.Sequential so later notebooks can fold, prune and quantise layer by layer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from labkit.core.data import DATA_DIR

MAX_PARAMS = 100_000_000  # 400 MB of fp32 weights: far beyond any model of this course


def _check_size(params: int, what: str, width: int) -> None:
    """Refuse before allocating: a typo like width=10**6 would ask for terabytes."""
    if params > MAX_PARAMS:
        raise ValueError(
            f"{what}(width={width}) would have about {params:.2g} parameters "
            f"({params * 4 / 2**30:.0f} GiB in fp32); the course's models use widths up to a few "
            "hundred. Choose a smaller width."
        )


def cnn(
    width: int = 16, depth: int = 3, num_classes: int = 10, in_channels: int = 1
) -> nn.Sequential:
    """Small conv net for 8x8 digits; see the module docstring for the layout."""
    if width < 1 or depth < 2:
        raise ValueError(f"cnn needs width >= 1 and depth >= 2, got width={width}, depth={depth}.")
    _check_size(9 * (2 * width) ** 2 * depth + 2 * width * 16 * num_classes, "cnn", width)
    layers: list[nn.Module] = []
    c_in = in_channels
    for i in range(depth):
        c_out = width if i == 0 else 2 * width
        layers += [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        ]
        if i == 1:
            layers.append(nn.MaxPool2d(2))
        c_in = c_out
    layers += [nn.Flatten(), nn.Linear(c_in * 4 * 4, num_classes)]
    return nn.Sequential(*layers)


def mlp(
    width: int = 128,
    depth: int = 2,
    num_classes: int = 10,
    in_features: int = 64,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Multi-layer perceptron: depth hidden layers of size width."""
    if width < 1 or depth < 1:
        raise ValueError(f"mlp needs width >= 1 and depth >= 1, got width={width}, depth={depth}.")
    _check_size(width * width * depth + 64 * width, "mlp", width)
    layers: list[nn.Module] = [nn.Flatten()]
    d_in = in_features
    for _ in range(depth):
        layers += [nn.Linear(d_in, width), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        d_in = width
    layers.append(nn.Linear(d_in, num_classes))
    return nn.Sequential(*layers)


def save(model: nn.Module, name: str, metadata: dict[str, str] | None = None) -> Path:
    """Save a model's state_dict to data/<name>.safetensors (with string metadata)."""
    from safetensors.torch import save_file

    path = DATA_DIR / f"{name}.safetensors"
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=metadata or {})
    return path


def load(model: nn.Module, name: str) -> dict[str, str]:
    """Load data/<name>.safetensors into ``model`` (safe: tensors only); return its metadata.

    A missing, corrupted or foreign checkpoint raises ValueError naming the file and the fix.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = DATA_DIR / f"{name}.safetensors"
    retrain = f"`python -m labkit.course.train_assets {name}` rebuilds it (or `git checkout data/{path.name}`)"
    if not path.exists():
        raise ValueError(f"checkpoint data/{path.name} not found; {retrain}.")
    try:
        state = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
    except Exception as exc:  # SafetensorError, truncated or garbage file
        raise ValueError(f"checkpoint data/{path.name} is damaged ({exc}); {retrain}.") from None
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        details = "; ".join(
            part
            for part in (
                f"missing {missing[:3]}" if missing else "",
                f"unexpected {unexpected[:3]}" if unexpected else "",
                f"shapes differ: {wrong[:3]}" if wrong else "",
            )
            if part
        )
        raise ValueError(
            f"checkpoint data/{path.name} was saved from another architecture than "
            f"{type(model).__name__} ({details}); build the model the checkpoint was made for "
            f"(see data/README.md) or {retrain}."
        )
    model.load_state_dict(state)
    return metadata


def fold_batchnorm(
    model: nn.Module, fold: Callable[[nn.Conv2d, nn.BatchNorm2d], nn.Conv2d] | None = None
) -> nn.Module:
    """A copy of ``model`` (eval mode) with every Conv2d -> BatchNorm2d pair of a Sequential folded.

    The walk over nn.Sequential containers (any depth) lives here; the fold of one pair is
    ``fold(conv, bn)``: notebook 07's own ``fusion.fold_conv_bn`` (taught there), or by default
    PyTorch's ``torch.nn.utils.fusion.fuse_conv_bn_eval`` (what notebook 06 uses before 07
    has taught folding). W' = W * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta.
    """
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}.")
    pair = fold or fuse_conv_bn_eval

    def walk(module: nn.Module) -> nn.Module:
        for name, child in module.named_children():
            setattr(module, name, walk(child))
        if not isinstance(module, nn.Sequential):
            return module
        layers, out, i = list(module), [], 0
        while i < len(layers):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layers[i], nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
                out.append(pair(layers[i], nxt))
                i += 2
            else:
                out.append(layers[i])
                i += 1
        return nn.Sequential(*out).eval()

    return walk(copy.deepcopy(model).eval())
