"""The small models the chapters share, and the one attention they all compute.

cnn(width=w, depth=d):  [Conv3x3 -> BN -> ReLU] x d, a 2x2 max-pool after the second block,
                        Flatten, Linear(c_last * 4 * 4 -> 10).  Input (N, 1, 8, 8).
                        Channels: w, 2w, 2w, ... (doubling once).
mlp(width=w, depth=d):  Flatten, [Linear -> ReLU (-> Dropout)] x d, Linear(w -> 10).  Input (N, 64).
TransformerBlock(d, n_head, causal):  pre-LN attention + MLP block on (B, T, d), with a KV cache;
                        CharGPT (notebook 11, causal) and DigitTransformer stack it.
DigitTransformer(d, heads, depth):  the 8 rows of a digit as 8 tokens -> TransformerBlocks ->
                        mean over tokens -> 10 logits (notebook 09 deploys it, 04 prunes its heads).
attention(q, k, v, causal, offset):  softmax(q k^T * scale + mask) v, the explicit form that
                        notebook 08's naive attention and the GPT's block both compute.

cnn and mlp are plain nn.Sequential so later notebooks can fold, prune and quantise layer by
layer. The shipped checkpoints of these models are saved and loaded by labkit.assets.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from labkit.core.errors import check_fraction, check_int

MAX_PARAMS = 100_000_000  # 400 MB of fp32 weights: far beyond any model of this course
MAX_D_MODEL, MAX_DEPTH = 1024, 16  # 16 blocks of d=1024 hold 200 M parameters (0.8 GB)


def _check_sizes(what: str, **sizes: int) -> None:
    """Positive integer sizes (cnn: depth >= 2), and no model too big to allocate."""
    for name, v in sizes.items():
        check_int(v, name, low=2 if (what, name) == ("cnn", "depth") else 1)
    w, d, c = sizes["width"], sizes["depth"], sizes["num_classes"]
    if what == "cnn":
        _check_size(9 * (2 * w) ** 2 * d + 2 * w * 16 * c, what, w)
    else:
        _check_size(w * w * d + sizes["in_features"] * w + w * c, what, w)


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
    """Small conv net for 8x8 digits; see the module docstring for the layout.

    Taught in notebooks/00_setup_and_measurement.ipynb, "4. Size and MACs".
    """
    _check_sizes("cnn", width=width, depth=depth, num_classes=num_classes, in_channels=in_channels)
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
    """Multi-layer perceptron: depth hidden layers of size width.

    Taught in notebooks/00_setup_and_measurement.ipynb, "4. Size and MACs".
    """
    _check_sizes("mlp", width=width, depth=depth, num_classes=num_classes, in_features=in_features)
    check_fraction(dropout, "dropout")
    layers: list[nn.Module] = [nn.Flatten()]
    d_in = in_features
    for _ in range(depth):
        layers += [nn.Linear(d_in, width), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        d_in = width
    layers.append(nn.Linear(d_in, num_classes))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- attention


def causal_mask(
    n: int, m: int, offset: int = 0, device: torch.device | None = None
) -> torch.Tensor:
    """Boolean (n, m) mask, True where query i may attend key j:  j <= i + offset.

    offset = 0: top-left aligned (query i sees keys 0..i), as SDPA's is_causal.
    offset = m - n: bottom-right aligned, the KV-cache convention: the n queries are the last n
    of m positions, so query i sits at position m - n + i and sees keys 0..m - n + i.
    Used by attention and TransformerBlock (this module); n·m bytes, refused above 1 GiB.
    """
    _check_mask(n, m)
    return torch.ones(n, m, dtype=torch.bool, device=device).tril(diagonal=offset)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    offset: int = 0,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v, with the whole (..., N, M) score matrix in memory.

    q (..., N, d), k (..., M, d), v (..., M, d_v) -> (..., N, d_v); a given ``scale`` multiplies
    the scores instead of the division by sqrt(d).
    causal=True sets the score of query i and key j to -inf unless  j <= i + offset  (see
    causal_mask): offset 0 is SDPA's is_causal (top-left), offset M - N the KV cache's
    (bottom-right: the N queries are the last N of M positions). When offset >= M - 1 no key
    lies in any query's future (one new token against its cache) and no mask is built.
    No size guard here: the callers check their sizes (the score matrix is N * M floats).
    Taught in notebooks/08_flash_attention.ipynb, "1. Naive attention stores an N x N matrix".
    """
    n, m = q.shape[-2], k.shape[-2]
    s = q @ k.transpose(-2, -1)  # (..., N, M)
    s = s / math.sqrt(q.shape[-1]) if scale is None else s * scale
    if causal and offset < m - 1:
        s = s.masked_fill(~causal_mask(n, m, offset, q.device), float("-inf"))
    return torch.softmax(s, dim=-1) @ v  # (..., N, d_v)


KV = tuple[torch.Tensor, torch.Tensor]  # one layer's cached keys and values, each (B, nh, S, hs)


class TransformerBlock(nn.Module):
    """Pre-LN transformer block on x (B, T, d), nh heads of hs = d / nh dimensions:

        x = x + proj(MHA(ln1(x))),   MHA: q, k, v = split(qkv(.)), per head softmax(q k^T / sqrt(hs)) v
        x = x + out(gelu(fc(ln2(x))))                                   MLP: d -> 4d -> d

    causal=True (a decoder, the GPT of notebook 11): token t attends to tokens <= t. causal=False
    (an encoder, the digit classifier of notebook 09): every token attends to every token. ``past`` = (k, v) of the P earlier
    positions, each (B, nh, P, hs): the T new tokens are positions P..P+T-1 and attend to all
    S = P + T keys under the bottom-right mask (offset P). forward returns (x, (k, v)) with the
    S positions, the cache for the next step (an encoder ignores it).
    sdpa=False computes MHA with the explicit ``attention`` above; sdpa=True with
    F.scaled_dot_product_attention (a fused kernel; same result within float rounding).
    Taught in notebooks/11_streaming_generation.ipynb, "1. The model: a tiny character-level GPT".
    """

    def __init__(self, d_model: int, n_head: int, causal: bool = False, sdpa: bool = False) -> None:
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} must be divisible by n_head={n_head}.")
        self.n_head, self.causal, self.sdpa = n_head, causal, sdpa
        # Construction order = random-init order (LayerNorm draws none): qkv, proj, fc, out.
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.out = nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor, past: KV | None = None) -> tuple[torch.Tensor, KV]:
        B, T, d = x.shape
        nh, hs = self.n_head, d // self.n_head
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)  # each (B, T, d)
        q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))  # each (B, nh, T, hs)
        if past is not None:  # k, v: (B, nh, P, hs) cached + (B, nh, T, hs) new -> (B, nh, S, hs)
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        offset = k.shape[2] - T  # P: the new queries are the last T of S positions
        if self.sdpa:
            mask = causal_mask(T, k.shape[2], offset, x.device) if self.causal else None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, nh, T, hs)
        else:
            y = attention(q, k, v, causal=self.causal, offset=offset)  # (B, nh, T, hs)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, d))  # heads side by side: (B, T, d)
        x = x + self.out(F.gelu(self.fc(self.ln2(x))))  # (B, T, 4d) -> (B, T, d)
        return x, (k, v)


class DigitTransformer(nn.Module):
    """Digits as sequences: the 8 rows of an (N, 1, 8, 8) image are 8 tokens of 8 pixels.

    Linear(8, d) + learned position embedding -> depth x TransformerBlock (not causal: every
    row sees every row; attention by F.scaled_dot_product_attention) -> LayerNorm -> mean over
    tokens -> Linear(d, 10).  Output (N, 10) logits. The shipped weights
    (data/digit_transformer.safetensors) are trained by labkit.deploy.train_transformer.
    Used by digit_transformer (labkit/deploy/transformer.py) and load_digit_transformer
    (labkit/prune/transformer.py).
    """

    def __init__(self, d_model: int = 64, heads: int = 4, depth: int = 2) -> None:
        _check_digit_transformer(d_model, heads, depth)
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos = nn.Parameter(torch.zeros(1, 8, d_model))
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, heads, causal=False, sdpa=True) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.reshape(x.shape[0], 8, 8)) + self.pos  # (N, 8 rows, d)
        for block in self.blocks:
            h, _ = block(h)  # the block's (k, v) is a cache for generation: unused here
        return self.head(self.norm(h).mean(dim=1))  # (N, d) -> (N, 10)


def fold_batchnorm(
    model: nn.Module, fold: Callable[[nn.Conv2d, nn.BatchNorm2d], nn.Conv2d] | None = None
) -> nn.Module:
    """A copy of ``model`` (eval mode) with every Conv2d -> BatchNorm2d pair of a Sequential folded.

    The walk over nn.Sequential containers (any depth) lives here; the fold of one pair is
    ``fold(conv, bn)``: notebook 07's own ``fusion.fold_conv_bn`` (taught there), or by default
    PyTorch's ``torch.nn.utils.fusion.fuse_conv_bn_eval`` (what notebook 06 uses before 07
    has taught folding). W' = W * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta.

    Taught in notebooks/06_ptq_and_qat.ipynb, "2. The model to quantise".
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


# ---- checks: bad input gets one clear error naming the parameter and the fix
def _check_mask(n: int, m: int) -> None:
    check_int(n, "n (queries)", low=1)
    check_int(m, "m (keys)", low=1)
    if n * m > 2**30:
        raise ValueError(
            f"causal_mask(n={n:,}, m={m:,}) would take {n * m / 2**30:.1f} GiB (one byte per "
            "query-key pair); use a tiled attention (attention.tiled_attention) at this length."
        )


def _check_digit_transformer(d_model: object, heads: object, depth: object) -> None:
    d_model = check_int(d_model, "d_model", low=1, high=MAX_D_MODEL)
    heads = check_int(heads, "heads", low=1, high=d_model)
    check_int(depth, "depth", low=1, high=MAX_DEPTH)
    if d_model % heads:
        raise ValueError(
            f"d_model={d_model} must be divisible by heads={heads} (each head gets "
            f"d_model / heads features); try heads={max(h for h in (1, 2, 4, 8) if d_model % h == 0)}."
        )
