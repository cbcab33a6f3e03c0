"""Data the course ships or generates: no download, ever.

- Digits: scikit-learn's bundled 1,797 real 8x8 handwritten digits (UCI), 10 classes.
  Fixed split (seed 0): 1,077 train / 360 val / 360 test. Pixels (0..16) are scaled by
  x' = (x/16 - mu) / sigma with mu, sigma taken from the training split only.
- Text: ``data/python_docs.txt``, an excerpt of Python's bundled documentation
  (``pydoc_data.topics``, PSF licence, see data/README.md) for character-level models.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, TensorDataset

from labkit.core.errors import check_int
from labkit.core.paths import DATA

DATA_DIR = DATA
TEXT_FILE = DATA_DIR / "python_docs.txt"
SPLIT = (1077, 360, 360)  # train, val, test


class Split(NamedTuple):
    """Tensors of one split: x (N, 1, 8, 8) float32 normalised, y (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor


class Loaders(NamedTuple):
    train: DataLoader
    val: DataLoader
    test: DataLoader


def digits(seed: int = 0) -> dict[str, Split]:
    """The digits data set as normalised tensors: {'train', 'val', 'test'} -> Split."""
    check_int(seed, "seed", low=0)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    n_train, n_val, _ = SPLIT
    mu, sigma = x[:n_train].mean(), x[:n_train].std()
    x = (x - mu) / sigma
    return {
        "train": Split(x[:n_train], y[:n_train]),
        "val": Split(x[n_train : n_train + n_val], y[n_train : n_train + n_val]),
        "test": Split(x[n_train + n_val :], y[n_train + n_val :]),
    }


def digits_loaders(
    batch_size: int = 64,
    seed: int = 0,
    flatten: bool = False,
    train_subset: int | None = None,
) -> Loaders:
    """DataLoaders over the fixed digits split; train is shuffled with a seeded generator.

    flatten=True gives x of shape (N, 64) for MLPs; train_subset=n keeps the first n
    training examples (the 'few labels' setting of the distillation notebook).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    parts = digits(seed)
    if train_subset is not None:
        if not 1 <= train_subset <= SPLIT[0]:
            raise ValueError(f"train_subset must be in 1..{SPLIT[0]}, got {train_subset!r}.")
        parts["train"] = Split(*(t[:train_subset] for t in parts["train"]))

    def make(split: Split, shuffle: bool) -> DataLoader:
        x = split.x.flatten(1) if flatten else split.x
        gen = torch.Generator().manual_seed(seed)
        return DataLoader(
            TensorDataset(x, split.y), batch_size=batch_size, shuffle=shuffle, generator=gen
        )

    return Loaders(
        make(parts["train"], True), make(parts["val"], False), make(parts["test"], False)
    )


def load_text(path: Path | str = TEXT_FILE, max_chars: int | None = None) -> str:
    """The bundled text corpus (or another UTF-8 file), optionally cut to max_chars."""
    path = _check_load_text(path, max_chars)
    text = path.read_text(encoding="utf-8")
    return text[:max_chars] if max_chars else text


def char_vocab(text: str) -> tuple[dict[str, int], list[str]]:
    """Character vocabulary: (stoi, itos), sorted so the ids are stable."""
    itos = sorted(set(text))
    return {c: i for i, c in enumerate(itos)}, itos


def encode(text: str, stoi: dict[str, int]) -> torch.Tensor:
    """Text -> int64 ids of shape (len(text),); unknown characters raise a clear error."""
    _check_encode(text, stoi)
    return torch.tensor([stoi[c] for c in text], dtype=torch.int64)


def decode(ids: torch.Tensor | list[int], itos: list[str]) -> str:
    """Ids -> text."""
    _check_decode(ids, itos)
    return "".join(itos[int(i)] for i in ids)


def text_batch(
    ids: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (x, y) windows of shape (batch_size, block_size); y is x shifted by one."""
    if len(ids) <= block_size:
        raise ValueError(f"text of {len(ids)} ids is too short for block_size={block_size}.")
    starts = torch.randint(len(ids) - block_size, (batch_size,), generator=generator)
    x = torch.stack([ids[s : s + block_size] for s in starts.tolist()])
    y = torch.stack([ids[s + 1 : s + 1 + block_size] for s in starts.tolist()])
    return x, y


# --------------------------------------------------------------------------- checks
def _check_load_text(path: Path | str, max_chars: int | None) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"path {str(path)!r} is not a file; the course's text ships as "
            f"{TEXT_FILE.relative_to(TEXT_FILE.parent.parent)} (re-clone the repository if it is gone)."
        )
    if max_chars is not None:
        check_int(max_chars, "max_chars", low=1)
    return path


def _check_encode(text: object, stoi: dict[str, int]) -> None:
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}; join it first.")
    missing = sorted(set(text) - stoi.keys())
    if missing:
        raise ValueError(
            f"text has characters not in the vocabulary: {missing[:10]}; "
            "build stoi from this text with char_vocab, or drop those characters."
        )


def _check_decode(ids: torch.Tensor | list[int], itos: list[str]) -> None:
    bad = [int(i) for i in ids if not 0 <= int(i) < len(itos)]
    if bad:
        raise ValueError(
            f"ids holds {bad[:5]}, outside the vocabulary's ids 0..{len(itos) - 1}: "
            "decode with the itos that encoded them."
        )
