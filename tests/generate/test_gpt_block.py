"""CharGPT is built on labkit.models.TransformerBlock (causal, explicit attention, KV cache)."""

from __future__ import annotations

import torch

from labkit import assets, models
from labkit.generate import gpt

TINY = gpt.GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=16)


def test_chargpt_stacks_the_shared_causal_block() -> None:
    model = gpt.CharGPT(TINY)
    assert all(isinstance(b, models.TransformerBlock) for b in model.blocks)
    assert all(b.causal and not b.sdpa for b in model.blocks)
    keys = set(model.state_dict())
    assert {"blocks.0.qkv.weight", "blocks.0.proj.weight", "blocks.0.fc.weight"} <= keys
    assert "blocks.1.out.bias" in keys


def test_a_multi_token_step_against_the_cache_equals_the_full_pass() -> None:
    """Prefill 5 tokens, then feed 4 at once: the bottom-right mask (offset = cache length)."""
    torch.manual_seed(0)
    model = gpt.CharGPT(TINY).eval()
    ids = torch.randint(0, 20, (2, 9))
    with torch.no_grad():
        full, _ = model(ids)
        _, cache = model(ids[:, :5])
        step, new_cache = model(ids[:, 5:], cache)
    torch.testing.assert_close(step, full[:, 5:], atol=1e-5, rtol=1e-4)
    assert new_cache[0][0].shape == (2, TINY.n_head, 9, TINY.n_embd // TINY.n_head)


def test_the_shipped_char_gpt_loads_through_assets() -> None:
    model, meta = gpt.load_char_gpt()
    assert assets.REGISTRY["char_gpt"].train is gpt.train_char_gpt
    assert isinstance(model, gpt.CharGPT) and not model.training
    assert model.cfg == gpt.GPTConfig(
        **{k: int(meta[k]) for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")}
    )
