"""A small character language model: the "LLM" whose Linear layers section 7 of notebook 06
quantises (group-wise INT4/INT3, GPTQ, AWQ, SmoothQuant).

Built from the course's transformer block (labkit.models.TransformerBlock, causal, pre-LN):
token + position embeddings, ``n_layer`` blocks, a final LayerNorm and a linear head.
ids (B, T) -> logits (B, T, V). Each block holds four Linear layers, the ones LLM quantisers
target: qkv (d -> 3d), proj (d -> d), fc (d -> 4d), out (4d -> d).

The checkpoint ``data/qat_char_lm.safetensors`` is trained by ``train_char_lm`` on the bundled
text (fixed seed, one thread; ``python -m labkit.course.train_assets qat_char_lm``), because
training it takes minutes, not seconds. ``load_char_lm`` loads it.
Loss is next-character cross-entropy in nats per character (ln 94 = 4.54 for a uniform guess).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labkit.core import assets, data, env, models, train
from labkit.core.errors import check_bool, check_int, check_model, check_positive

ASSET = "qat_char_lm"


@dataclass(frozen=True)
class LMConfig:
    """Sizes of the character LM: 12 L d^2 weights in the blocks' Linear layers."""

    vocab_size: int = 94
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128

    def __post_init__(self) -> None:
        _check_lm_config(self)


class CharLM(nn.Module):
    """Token + position embeddings, causal TransformerBlocks (SDPA), final LayerNorm, head.

    forward(ids (B, T)) -> logits (B, T, V).
    Used by load_char_lm (labkit/qat/char_lm.py), which builds it from the checkpoint.
    """

    def __init__(self, cfg: LMConfig) -> None:
        _check_char_lm(cfg)
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(
            models.TransformerBlock(cfg.n_embd, cfg.n_head, causal=True, sdpa=True)
            for _ in range(cfg.n_layer)
        )
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) with T <= block_size -> logits (B, T, V)."""
        _check_ids(self.cfg, ids)
        pos = torch.arange(ids.shape[1], device=ids.device)  # (T,)
        x = self.tok(ids) + self.pos(pos)  # (B, T, d)
        for block in self.blocks:
            x, _ = block(x)  # (B, T, d); the KV cache is notebook 11's business
        return self.head(self.ln_f(x))  # (B, T, V)


def text_splits(val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled text (data/python_docs.txt) as character ids: (train ids, val ids).

    The last 10 % is validation. Used by lm_windows and train_char_lm (labkit/qat/char_lm.py).
    """
    text = data.load_text()
    ids = data.encode(text, data.char_vocab(text)[0])  # (300000,)
    n = int(len(ids) * (1 - val_fraction))
    return ids[:n], ids[n:]


def lm_windows(
    split: str = "val", n: int = 32, block_size: int = 128, seed: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """n fixed windows (x, y) of ``block_size`` characters from the "train" or "val" split;
    y is x shifted by one character. Same seed, same windows: every method is scored on the
    same text. Shapes (n, block_size) each.

    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_windows(split, n, block_size, seed)
    ids = text_splits()[0 if split == "train" else 1]
    return data.text_batch(ids, block_size, n, torch.Generator().manual_seed(seed))


@torch.no_grad()
def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per window, in nats per character: (n,) for x, y of shape (n, T).

    The mean is the validation loss; the per-window values give paired differences between
    two models scored on the same windows (their spread says what is noise).
    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_lm_loss(model, x, y)
    logits = model.eval()(x)  # (n, T, V)
    ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")  # (n * T,)
    return ce.view(y.shape).mean(dim=1)  # (n,)


def train_char_lm(
    steps: int = 2000, batch_size: int = 16, lr: float = 3e-3, seed: int = 0, threads: int = 1
) -> tuple[CharLM, dict[str, str]]:
    """Train CharLM with AdamW (one-cycle LR, gradients clipped at norm 1, fixed seed and
    threads) on random windows of the training split: (model, metadata).

    The defaults made data/qat_char_lm.safetensors; labkit.assets saves it.
    Used by load_char_lm (labkit/qat/char_lm.py) through labkit.assets, to retrain.
    """
    _check_train(steps, batch_size, lr, threads)
    cfg = LMConfig(vocab_size=len(data.char_vocab(data.load_text())[0]))
    env.seed_everything(seed)
    train_ids, _ = text_splits()
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    with env.threads(threads):
        model = CharLM(cfg)
        train.fit_next_char(model, train_ids, steps=steps, batch_size=batch_size, lr=lr, gen=gen)
        val = float(lm_loss(model, *lm_windows("val", 32, cfg.block_size)).mean())
    meta = {k: str(v) for k, v in asdict(cfg).items()}
    meta.update(
        val_loss=f"{val:.4f}",
        steps=str(steps),
        batch_size=str(batch_size),
        threads=str(threads),
        train_seconds=f"{time.perf_counter() - t0:.0f}",
    )
    return model.eval(), meta


def _from_metadata(meta: dict[str, str]) -> CharLM:
    """An untrained CharLM of the sizes stored in a checkpoint's metadata."""
    return CharLM(LMConfig(**{k: int(meta[k]) for k in asdict(LMConfig())}))


assets.register(ASSET, build=_from_metadata, train=train_char_lm)


def load_char_lm(retrain: bool = False) -> tuple[CharLM, dict[str, str]]:
    """The trained model of data/qat_char_lm.safetensors (eval mode) and its metadata.

    retrain=True (or a missing file) trains it again first (minutes on a laptop CPU).
    Taught in notebooks/06_ptq_and_qat.ipynb, "7. How LLMs are quantised".
    """
    _check_load(retrain)
    model, meta = assets.load(ASSET, retrain=retrain)
    return model, meta  # type: ignore[return-value]


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_lm_config(cfg: LMConfig) -> None:
    for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
        check_int(getattr(cfg, name), name, low=1, high=1_000_000)
    if cfg.n_embd % cfg.n_head:
        raise ValueError(
            f"n_head={cfg.n_head} must divide n_embd={cfg.n_embd} (each head gets n_embd / n_head "
            "dimensions); e.g. n_head=4 with n_embd=128."
        )


def _check_char_lm(cfg: object) -> None:
    if not isinstance(cfg, LMConfig):
        raise ValueError(
            f"cfg must be a qat.LMConfig (e.g. LMConfig(vocab_size=94)), got {type(cfg).__name__}."
        )


def _check_ids(cfg: LMConfig, ids: object, name: str = "ids") -> None:
    if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.dtype != torch.long:
        raise ValueError(f"{name} must be a (B, T) tensor of character ids (dtype torch.long).")
    if not 1 <= ids.shape[1] <= cfg.block_size:
        raise ValueError(
            f"{name} has T={ids.shape[1]} positions; block_size allows 1..{cfg.block_size}."
        )
    lo, hi = torch.aminmax(ids)
    if lo < 0 or hi >= cfg.vocab_size:
        raise ValueError(
            f"{name} holds token ids in [{int(lo)}, {int(hi)}], but the vocabulary has ids "
            f"0..{cfg.vocab_size - 1}; encode the text with the model's own vocabulary."
        )


def _check_lm_loss(model: object, x: object, y: object) -> None:
    check_model(model, "model")
    cfg = getattr(model, "cfg", None)
    if isinstance(cfg, LMConfig):  # a CharLM: x and y are ids of its vocabulary
        _check_ids(cfg, x, "x")
        _check_ids(cfg, y, "y")
    if not isinstance(y, torch.Tensor) or not isinstance(x, torch.Tensor) or y.shape != x.shape:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be x shifted by one character: a tensor of x's shape, got {got}.")


def _check_windows(split: object, n: object, block_size: object, seed: object) -> None:
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}.")
    check_int(n, "n", low=1, high=4096)
    check_int(block_size, "block_size", low=1, high=4096)
    check_int(seed, "seed", low=0, high=2**63 - 1)


def _check_load(retrain: object) -> None:
    check_bool(retrain, "retrain", "True trains the model again (minutes on a laptop CPU)")


def _check_train(steps: object, batch_size: object, lr: object, threads: object) -> None:
    check_int(steps, "steps", low=1, high=1_000_000)
    check_int(batch_size, "batch_size", low=1, high=4096)
    check_positive(lr, "lr")
    check_int(threads, "threads", low=1, high=256)
