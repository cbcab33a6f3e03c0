"""The small model families the course uses on 8x8 digits (width is the knob).

cnn(width=w, depth=d):  [Conv3x3 -> BN -> ReLU] x d, a 2x2 max-pool after the second block,
                        Flatten, Linear(c_last * 4 * 4 -> 10).  Input (N, 1, 8, 8).
                        Channels: w, 2w, 2w, ... (doubling once).
mlp(width=w, depth=d):  Flatten, [Linear -> ReLU (-> Dropout)] x d, Linear(w -> 10).  Input (N, 64).

Both are plain nn.Sequential so later notebooks can fold, prune and quantise layer by layer.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from labkit.data import DATA_DIR


def cnn(
    width: int = 16, depth: int = 3, num_classes: int = 10, in_channels: int = 1
) -> nn.Sequential:
    """Small conv net for 8x8 digits; see the module docstring for the layout."""
    if width < 1 or depth < 2:
        raise ValueError(f"cnn needs width >= 1 and depth >= 2, got width={width}, depth={depth}.")
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
    """Load data/<name>.safetensors into ``model`` (safe: tensors only); return its metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = DATA_DIR / f"{name}.safetensors"
    if not path.exists():
        raise ValueError(
            f"checkpoint {path.name} not found in data/; build it with `python -m labkit.train_assets`."
        )
    model.load_state_dict(load_file(str(path)))
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})
