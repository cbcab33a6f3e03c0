"""The course's shipped checkpoints, data/<name>.safetensors: one registry, one loader.

A topic registers each checkpoint it ships with the two things only it knows:

    assets.register("char_gpt", build=..., train=...)
    build(metadata) -> an untrained model of the checkpoint's architecture (sizes may come
                       from the file's metadata)
    train()         -> (trained model, metadata): fixed seeds, so retraining reproduces the file

``load(name)`` does the rest, the same way for every checkpoint: train and save it when the
file is missing (or retrain=True), read the metadata, build the model, load the weights (a
missing, damaged or foreign file gives a ValueError naming the file and the fix) and return
it in eval mode. ``python -m labkit.course.train_assets [NAME ...]`` retrains from the shell.
Files hold tensors and string metadata only (safetensors: no pickle, nothing runs on load).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from torch import nn

from labkit.core.data import DATA_DIR


class Asset(NamedTuple):
    """A shipped checkpoint: its name (data/<name>.safetensors) and how to rebuild it."""

    name: str
    build: Callable[[dict[str, str]], nn.Module]
    train: Callable[[], tuple[nn.Module, dict[str, str]]]


REGISTRY: dict[str, Asset] = {}  # filled by the topics that ship a checkpoint, on import


def register(
    name: str,
    build: Callable[[dict[str, str]], nn.Module],
    train: Callable[[], tuple[nn.Module, dict[str, str]]],
) -> Asset:
    """Make data/<name>.safetensors loadable by ``load(name)`` (a topic calls this on import)."""
    REGISTRY[name] = Asset(name, build, train)
    return REGISTRY[name]


def path(name: str) -> Path:
    """data/<name>.safetensors (it may not exist yet)."""
    return DATA_DIR / f"{name}.safetensors"


def _asset(name: str) -> Asset:
    if name not in REGISTRY:
        raise ValueError(
            f"unknown checkpoint {name!r}; registered: {sorted(REGISTRY)}. Import the topic that "
            "ships it first (its module registers it; data/README.md names each one's trainer)."
        )
    return REGISTRY[name]


def train(name: str) -> Path:
    """Train the registered checkpoint ``name`` again and save it; return its path."""
    model, metadata = _asset(name).train()
    return save(model, name, metadata)


def load(name: str, retrain: bool = False) -> tuple[nn.Module, dict[str, str]]:
    """The shipped model ``name`` in eval mode and its metadata.

    Trains and saves it first when retrain=True or data/<name>.safetensors is missing.
    """
    asset = _asset(name)
    if retrain or not path(name).exists():
        train(name)
    state, meta = _read(name, tensors=True)  # one read: the metadata sizes the model
    model = asset.build(meta)
    _load_state(model, name, state)
    return model.eval(), meta


# --------------------------------------------------------------------------- files


def save(model: nn.Module, name: str, metadata: dict[str, str] | None = None) -> Path:
    """Save a model's state_dict to data/<name>.safetensors (with string metadata)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path(name)), metadata=metadata or {})
    return path(name)


def _read(name: str, tensors: bool) -> tuple[dict, dict[str, str]]:
    """(state or {}, metadata) of data/<name>.safetensors; ValueError if missing or damaged."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    file = path(name)
    fix = f"`python -m labkit.course.train_assets {name}` rebuilds it (or `git checkout data/{file.name}`)"
    if not file.exists():
        raise ValueError(f"checkpoint data/{file.name} not found; {fix}.")
    try:
        state = load_file(str(file)) if tensors else {}
        with safe_open(str(file), framework="pt") as f:
            return state, dict(f.metadata() or {})
    except Exception as exc:  # SafetensorError, truncated or garbage file
        raise ValueError(f"checkpoint data/{file.name} is damaged ({exc}); {fix}.") from None


def metadata(name: str) -> dict[str, str]:
    """The string metadata of data/<name>.safetensors (how it was trained, its quality)."""
    return _read(name, tensors=False)[1]


def load_weights(model: nn.Module, name: str) -> dict[str, str]:
    """Load data/<name>.safetensors into ``model`` (safe: tensors only); return its metadata.

    A missing, corrupted or foreign checkpoint raises ValueError naming the file and the fix.
    """
    state, meta = _read(name, tensors=True)
    _load_state(model, name, state)
    return meta


def _load_state(model: nn.Module, name: str, state: dict) -> None:
    """model.load_state_dict(state), or a ValueError naming what differs and the fix."""
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
            f"checkpoint data/{name}.safetensors was saved from another architecture than "
            f"{type(model).__name__} ({details}); build the model the checkpoint was made for "
            f"(see data/README.md) or run `python -m labkit.course.train_assets {name}`."
        )
    model.load_state_dict(state)
