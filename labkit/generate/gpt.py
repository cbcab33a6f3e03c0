"""A tiny character-level GPT (nanoGPT-style) with an optional KV cache per layer.

Shapes: ids (B, T) -> logits (B, T, V). d = n_embd, H = n_head, hd = d / H.
Each block: x = x + Attn(LN(x)); x = x + MLP(LN(x)), with causal multi-head attention

    Attn(q, k, v) = softmax(q k^T / sqrt(hd) + mask) v,   q: (B, H, T, hd), k, v: (B, H, S, hd)

where the T queries are the *last* T of the S positions (S = past + T): query i may look
at keys 0 .. past + i. With a KV cache the keys and values of earlier positions are kept
per layer as a tuple (k, v) of shape (B, H, past, hd), so one new token costs O(S) instead
of recomputing all S positions. Positions are learned embeddings up to ``block_size``.

The checkpoint ``data/char_gpt.safetensors`` is trained by ``train_char_gpt`` on the bundled
text (``python -m labkit.course.train_assets char_gpt``); ``load_char_gpt`` loads it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from labkit import data, env, models

ASSET = "char_gpt"
MAX_MODEL_BYTES = 4 * 2**30  # refuse models whose fp32 weights alone exceed this
KVCache = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of the model. Parameters ~ 12 * n_layer * n_embd**2 + (vocab + block) * n_embd."""

    vocab_size: int = 94
    block_size: int = 320
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 96

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {v!r}.")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd={self.n_embd} must be divisible by n_head={self.n_head} "
                f"(each head gets n_embd / n_head dimensions); e.g. n_embd={self.n_head * 24}."
            )
        nbytes = 4 * self.approx_parameters()
        if nbytes > MAX_MODEL_BYTES:
            raise ValueError(
                f"this GPTConfig has about {self.approx_parameters():,} parameters "
                f"({nbytes / 2**30:.1f} GiB in fp32), more than the {MAX_MODEL_BYTES / 2**30:.0f} GiB "
                "this course allows on a laptop; reduce n_embd, n_layer or vocab_size."
            )

    def approx_parameters(self) -> int:
        """12 L d^2 (attention + MLP) + (V + block) d (embeddings) + V d (head)."""
        d = self.n_embd
        return 12 * self.n_layer * d * d + (2 * self.vocab_size + self.block_size) * d


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(hd) + mask) v for queries that are the last T of S positions.

    q: (B, H, T, hd); k, v: (B, H, S, hd) with S >= T. Query i sits at position S - T + i and
    may attend to keys 0 .. S - T + i. Returns (B, H, T, hd).
    """
    T, S = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if T > 1:  # a single new query may look at every cached key: no mask needed
        allowed = torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T)
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(dim=-1) @ v


class Block(nn.Module):
    """Pre-LN transformer block; ``forward`` returns the output and this layer's (k, v)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.out = nn.Linear(4 * cfg.n_embd, cfg.n_embd)

    def forward(
        self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, T, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (t.view(B, T, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))
        if past is not None:  # append the new keys/values to the cache of this layer
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, d)
        x = x + self.proj(y)
        x = x + self.out(F.gelu(self.fc(self.ln2(x))))
        return x, (k, v)


class CharGPT(nn.Module):
    """Token + position embeddings, n_layer blocks, final LayerNorm, linear head (untied)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size)

    def forward(
        self, ids: torch.Tensor, cache: KVCache | None = None
    ) -> tuple[torch.Tensor, KVCache]:
        """ids (B, T) -> (logits (B, T, V), cache with S = past + T positions per layer)."""
        past = 0 if cache is None else cache[0][0].shape[2]
        T = ids.shape[1]
        if past + T > self.cfg.block_size:
            raise ValueError(
                f"sequence of {past + T} tokens exceeds block_size={self.cfg.block_size}; "
                "shorten the prompt or generate fewer tokens."
            )
        x = self.tok(ids) + self.pos(torch.arange(past, past + T, device=ids.device))
        new_cache: KVCache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if cache is None else cache[i])
            new_cache.append(kv)
        return self.head(self.ln_f(x)), new_cache


def vocab() -> tuple[dict[str, int], list[str]]:
    """The character vocabulary of the bundled text: (stoi, itos)."""
    return data.char_vocab(data.load_text())


def split_ids(val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoded bundled text split into (train ids, val ids); val is the last 10 %."""
    stoi, _ = vocab()
    ids = data.encode(data.load_text(), stoi)
    n = int(len(ids) * (1 - val_fraction))
    return ids[:n], ids[n:]


@torch.no_grad()
def val_loss(model: CharGPT, batches: int = 8, batch_size: int = 8, seed: int = 1) -> float:
    """Mean cross-entropy (nats per character) on fixed random windows of the val split."""
    _, val = split_ids()
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    losses = []
    for _ in range(batches):
        x, y = data.text_batch(val, model.cfg.block_size, batch_size, gen)
        logits, _ = model(x)
        losses.append(F.cross_entropy(logits.flatten(0, 1), y.flatten()).item())
    return sum(losses) / len(losses)


def train_char_gpt(
    steps: int = 1500,
    batch_size: int = 8,
    lr: float = 3e-3,
    seed: int = 0,
    threads: int = 1,
    cfg: GPTConfig | None = None,
    save: bool = True,
) -> CharGPT:
    """Train CharGPT with AdamW (one-cycle LR, fixed seed and threads); save it if asked.

    The defaults made data/char_gpt.safetensors (one thread: the matmuls are too small to
    gain from more, and one thread makes the result reproducible on any machine's CPU).
    """
    stoi, _ = vocab()
    cfg = cfg or GPTConfig(vocab_size=len(stoi))
    env.seed_everything(seed)
    train_ids, _ = split_ids()
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    with env.threads(threads):
        model = CharGPT(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        model.train()
        for _ in range(steps):
            x, y = data.text_batch(train_ids, cfg.block_size, batch_size, gen)
            logits, _ = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        model.eval()
        loss_val = val_loss(model)
    if save:
        meta = {k: str(v) for k, v in asdict(cfg).items()}
        meta.update(
            val_loss=f"{loss_val:.4f}",
            steps=str(steps),
            threads=str(threads),
            train_seconds=f"{time.perf_counter() - t0:.0f}",
        )
        models.save(model, ASSET, meta)
    return model


def save_char_gpt() -> Path:
    """The train_assets entry: train and save data/char_gpt.safetensors, return its path."""
    train_char_gpt(save=True)
    return models.DATA_DIR / f"{ASSET}.safetensors"


def load_char_gpt(retrain: bool = False) -> tuple[CharGPT, dict[str, str]]:
    """The trained model (eval mode) and its metadata; retrain=True trains it again first."""
    if retrain or not (models.DATA_DIR / f"{ASSET}.safetensors").exists():
        save_char_gpt()
    from safetensors import safe_open

    with safe_open(str(models.DATA_DIR / f"{ASSET}.safetensors"), framework="pt") as f:
        meta = dict(f.metadata() or {})
    cfg = GPTConfig(**{k: int(meta[k]) for k in asdict(GPTConfig())})
    model = CharGPT(cfg)
    models.load(model, ASSET)
    return model.eval(), meta
