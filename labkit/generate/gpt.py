"""Notebook 11, part 1: a tiny character-level GPT (nanoGPT-style) with a KV cache per layer.

Shapes: ids (B, T) -> logits (B, T, V). d = n_embd, nh = n_head, hs = d / nh.
Each block (labkit.models.TransformerBlock, causal): x = x + Attn(LN(x)); x = x + MLP(LN(x)),

    Attn(q, k, v) = softmax(q k^T / sqrt(hs) + mask) v,   q: (B, nh, T, hs), k, v: (B, nh, S, hs)

where the T queries are the *last* T of the S positions (S = past + T): query i may look
at keys 0 .. past + i (the bottom-right causal mask). With a KV cache the keys and values of
earlier positions are kept per layer as a tuple (k, v) of shape (B, nh, past, hs), so one new
token costs O(S) instead of recomputing all S positions. Positions are learned embeddings up
to ``block_size``.

The checkpoint ``data/char_gpt.safetensors`` is trained by ``train_char_gpt`` on the bundled
text (``python -m labkit.course.train_assets char_gpt``); ``load_char_gpt`` loads it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labkit.core import assets, data, env, models, train
from labkit.core.errors import check_bool, check_int, check_model, check_positive

ASSET = "char_gpt"
MAX_MODEL_BYTES = 4 * 2**30  # refuse models whose fp32 weights alone exceed this
KVCache = list[models.KV]  # one (k, v) per layer, each (B, nh, S, hs)


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of the model. Parameters ~ 12 * n_layer * n_embd**2 + (vocab + block) * n_embd.

    Used by CharGPT (labkit/generate/gpt.py); refused above MAX_MODEL_BYTES of fp32 weights.
    """

    vocab_size: int = 94
    block_size: int = 320
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 96

    def __post_init__(self) -> None:
        _check_config(self)

    def approx_parameters(self) -> int:
        """12 L d^2 (attention + MLP) + (V + block) d (embeddings) + V d (head)."""
        d = self.n_embd
        return 12 * self.n_layer * d * d + (2 * self.vocab_size + self.block_size) * d


class CharGPT(nn.Module):
    """Token + position embeddings, n_layer causal blocks, final LayerNorm, linear head (untied).

    forward(ids (B, T), cache) -> (logits (B, T, V), the cache with S = past + T positions).
    Used by load_char_gpt (labkit/generate/gpt.py), which builds it from the checkpoint.
    """

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(
            models.TransformerBlock(cfg.n_embd, cfg.n_head, causal=True) for _ in range(cfg.n_layer)
        )
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size)

    def forward(
        self, ids: torch.Tensor, cache: KVCache | None = None
    ) -> tuple[torch.Tensor, KVCache]:
        """ids (B, T) -> (logits (B, T, V), cache with S = past + T positions per layer)."""
        _check_forward(self.cfg, ids, cache)
        past = 0 if cache is None else cache[0][0].shape[2]  # P tokens already cached
        T = ids.shape[1]
        pos = torch.arange(past, past + T, device=ids.device)  # positions of the new tokens
        x = self.tok(ids) + self.pos(pos)  # (B, T, d)
        new_cache: KVCache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if cache is None else cache[i])
            new_cache.append(kv)
        return self.head(self.ln_f(x)), new_cache  # (B, T, V)


def vocab() -> tuple[dict[str, int], list[str]]:
    """The character vocabulary of the bundled text: (stoi, itos).

    Taught in notebooks/11_streaming_generation.ipynb, "1. The model: a tiny character-level GPT".
    """
    return data.char_vocab(data.load_text())


def split_ids(val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoded bundled text split into (train ids, val ids); val is the last 10 %.

    Used by val_loss, train_char_gpt (labkit/generate/gpt.py) and agreement_on_val
    (labkit/generate/int8.py).
    """
    stoi, _ = vocab()
    ids = data.encode(data.load_text(), stoi)
    n = int(len(ids) * (1 - val_fraction))
    return ids[:n], ids[n:]


@torch.no_grad()
def val_loss(model: CharGPT, batches: int = 8, batch_size: int = 8, seed: int = 1) -> float:
    """Mean cross-entropy -log p(next char), in nats per character, on fixed val windows.

    Taught in notebooks/11_streaming_generation.ipynb, "1. The model: a tiny character-level GPT".
    """
    _check_gpt(model, batch_size, batches=batches)
    _, val = split_ids()
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    losses = []
    for _ in range(batches):
        x, y = data.text_batch(val, model.cfg.block_size, batch_size, gen)  # (B, T) each
        logits, _ = model(x)  # (B, T, V)
        losses.append(F.cross_entropy(logits.flatten(0, 1), y.flatten()).item())
    return sum(losses) / len(losses)


def train_char_gpt(
    steps: int = 1500,
    batch_size: int = 8,
    lr: float = 3e-3,
    seed: int = 0,
    threads: int = 1,
    cfg: GPTConfig | None = None,
) -> tuple[CharGPT, dict[str, str]]:
    """Train CharGPT with AdamW (one-cycle LR, fixed seed and threads): (model, metadata).

    Next-character cross-entropy on random windows of the training split, gradients clipped at
    norm 1. The defaults made data/char_gpt.safetensors (one thread: the matmuls are too small
    to gain from more, and one thread makes the result reproducible on any machine's CPU);
    labkit.assets saves it (``python -m labkit.course.train_assets char_gpt``).
    Used by load_char_gpt (labkit/generate/gpt.py) through labkit.assets, to retrain.
    """
    _check_train(steps, batch_size, lr, threads, cfg)
    stoi, _ = vocab()
    cfg = cfg or GPTConfig(vocab_size=len(stoi))
    env.seed_everything(seed)
    train_ids, _ = split_ids()
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    with env.threads(threads):
        model = CharGPT(cfg)
        train.fit_next_char(model, train_ids, steps=steps, batch_size=batch_size, lr=lr, gen=gen)
        loss_val = val_loss(model)
    meta = {k: str(v) for k, v in asdict(cfg).items()}
    meta.update(
        val_loss=f"{loss_val:.4f}",
        steps=str(steps),
        threads=str(threads),
        train_seconds=f"{time.perf_counter() - t0:.0f}",
    )
    return model, meta


def _from_metadata(meta: dict[str, str]) -> CharGPT:
    """An untrained CharGPT of the sizes stored in a checkpoint's metadata."""
    return CharGPT(GPTConfig(**{k: int(meta[k]) for k in asdict(GPTConfig())}))


assets.register(ASSET, build=_from_metadata, train=train_char_gpt)


def load_char_gpt(retrain: bool = False) -> tuple[CharGPT, dict[str, str]]:
    """The trained model of data/char_gpt.safetensors (eval mode) and its metadata.

    retrain=True (or a missing file) trains it again first (labkit.assets.load).
    Taught in notebooks/11_streaming_generation.ipynb, "1. The model: a tiny character-level GPT".
    """
    _check_retrain(retrain)
    model, meta = assets.load(ASSET, retrain=retrain)
    return model, meta  # type: ignore[return-value]


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_config(cfg: GPTConfig) -> None:
    for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
        check_int(getattr(cfg, name), f"GPTConfig.{name}", low=1)
    if cfg.n_embd % cfg.n_head:
        raise ValueError(
            f"n_embd={cfg.n_embd} must be divisible by n_head={cfg.n_head} "
            f"(each head gets n_embd / n_head dimensions); e.g. n_embd={cfg.n_head * 24}."
        )
    nbytes = 4 * cfg.approx_parameters()
    if nbytes > MAX_MODEL_BYTES:
        raise ValueError(
            f"this GPTConfig has about {cfg.approx_parameters():,} parameters "
            f"({nbytes / 2**30:.1f} GiB in fp32), more than the {MAX_MODEL_BYTES / 2**30:.0f} GiB "
            "this course allows on a laptop; reduce n_embd, n_layer or vocab_size."
        )


def _check_gpt(
    model: object, batch_size: object = 1, name: str = "model", **counts: object
) -> GPTConfig:
    """A CharGPT-like model (an nn.Module with a GPTConfig .cfg) and counts >= 1; a batch of
    batch_size full windows must fit in memory. Returns the model's config."""
    check_model(model, name)
    cfg = getattr(model, "cfg", None)
    if not isinstance(cfg, GPTConfig):
        raise ValueError(
            f"{name} must be a CharGPT (an nn.Module with a GPTConfig .cfg), got "
            f"{type(model).__name__}; load one with generate.load_char_gpt()."
        )
    for key, value in {"batch_size": batch_size, **counts}.items():
        check_int(value, key, low=1)
    _check_activations(cfg, batch_size)  # type: ignore[arg-type]
    return cfg


def _check_activations(cfg: GPTConfig, batch_size: int) -> None:
    nbytes = 4 * batch_size * cfg.block_size * (4 * cfg.n_embd * cfg.n_layer + cfg.vocab_size)
    if nbytes > MAX_MODEL_BYTES:
        raise ValueError(
            f"batch_size={batch_size:,} windows of {cfg.block_size} tokens need about "
            f"{nbytes / 2**30:,.1f} GiB of activations (more than {MAX_MODEL_BYTES / 2**30:.0f} "
            "GiB): use a smaller batch_size."
        )


def _check_forward(cfg: GPTConfig, ids: object, cache: KVCache | None) -> None:
    """ids (B, T) of token ids in the vocabulary, and room for them in block_size."""
    if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.is_floating_point():
        raise ValueError(
            "ids must be an integer tensor of shape (batch, tokens), got "
            f"{getattr(ids, 'shape', type(ids).__name__)}; e.g. data.encode(text, stoi)[None]."
        )
    if ids.numel() == 0:
        raise ValueError("ids is empty: pass at least one token id per sequence.")
    past = 0 if cache is None else cache[0][0].shape[2]
    if past + ids.shape[1] > cfg.block_size:
        raise ValueError(
            f"ids: a sequence of {past + ids.shape[1]} tokens (cache included) exceeds "
            f"block_size={cfg.block_size}; shorten the prompt or generate fewer tokens."
        )
    low, high = (t.item() for t in torch.aminmax(ids))  # one pass over ids: cheap per step
    if low < 0 or high >= cfg.vocab_size:
        raise ValueError(
            f"ids (the prompt's too) must be token ids in 0..{cfg.vocab_size - 1}, the model's "
            f"vocabulary, got {low}..{high}; encode text with data.encode(text, stoi)."
        )


def _check_train(
    steps: object, batch_size: object, lr: object, threads: object, cfg: object
) -> None:
    check_int(steps, "steps", low=1)
    check_int(threads, "threads", low=1)
    check_positive(lr, "lr")
    if cfg is not None and not isinstance(cfg, GPTConfig):
        raise ValueError(f"cfg must be a GPTConfig or None, got {type(cfg).__name__}.")
    _check_activations(cfg or GPTConfig(), check_int(batch_size, "batch_size", low=1))


def _check_retrain(retrain: object) -> None:
    why = "retrain=True trains the model again (minutes), retrain=False loads the checkpoint"
    check_bool(retrain, "retrain", why)
