from types import SimpleNamespace

import pytest
import torch
from torch import nn

from labkit import data, models, train


def test_digits_split_is_fixed_and_normalised() -> None:
    a, b = data.digits(0), data.digits(0)
    assert [len(a[k].y) for k in ("train", "val", "test")] == list(data.SPLIT)
    assert torch.equal(a["test"].x, b["test"].x)
    assert a["train"].x.shape[1:] == (1, 8, 8)
    assert abs(a["train"].x.mean().item()) < 1e-4
    assert abs(a["train"].x.std().item() - 1) < 1e-4
    train_ids = {tuple(x.flatten().tolist()) for x in a["train"].x[:200]}
    test_ids = {tuple(x.flatten().tolist()) for x in a["test"].x}
    assert len(train_ids & test_ids) < 5  # the split does not leak (a few true duplicates exist)


def test_loaders_flatten_and_subset() -> None:
    loaders = data.digits_loaders(batch_size=32, flatten=True, train_subset=100)
    x, y = next(iter(loaders.train))
    assert x.shape == (32, 64) and y.dtype == torch.int64
    assert len(loaders.train.dataset) == 100


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"train_subset": 0}, {"train_subset": 5000}])
def test_loader_bad_input(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        data.digits_loaders(**kwargs)


def test_text_corpus_round_trip() -> None:
    text = data.load_text(max_chars=5000)
    stoi, itos = data.char_vocab(text)
    ids = data.encode(text, stoi)
    assert data.decode(ids, itos) == text
    x, y = data.text_batch(ids, 16, 4, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16)
    assert torch.equal(x[:, 1:], y[:, :-1])
    with pytest.raises(ValueError, match="vocabulary"):
        data.encode("\u00e9", stoi)


@pytest.mark.parametrize("width", [4, 16])
def test_model_shapes(width: int) -> None:
    x = torch.randn(3, 1, 8, 8)
    assert models.cnn(width)(x).shape == (3, 10)
    assert models.mlp(width, depth=3, dropout=0.1)(x.flatten(1)).shape == (3, 10)
    with pytest.raises(ValueError):
        models.cnn(width, depth=1)


def test_fit_learns_digits_and_evaluate_counts() -> None:
    torch.manual_seed(0)
    loaders = data.digits_loaders(64)
    model = models.cnn(8)
    before = train.evaluate(model, loaders.val)["accuracy"]
    history = train.fit(model, loaders.train, epochs=3, lr=1e-2)
    after = train.evaluate(model, loaders.val)
    assert history[-1] < history[0]
    assert after["accuracy"] > 0.9 > before


def test_histogram_stores_counts_not_samples() -> None:
    import pytest

    from labkit import plots

    x = torch.tensor([0.0, 0.1, 0.1, 0.9, 1.0])
    fig = plots.histogram(
        {"a": x, "b": [0.5]}, bins=2, range=(0.0, 1.0), xlabel="v (1)", ylabel="n", title="t"
    )
    assert [list(t.y) for t in fig.data] == [[3, 2], [0, 1]]
    assert list(fig.data[0].x) == [0.25, 0.75]
    with pytest.raises(ValueError, match="unit"):
        plots.histogram({"a": x}, bins=2, xlabel="", ylabel="n", title="t")


def test_huge_width_is_refused_before_allocating() -> None:
    import pytest

    from labkit import models

    with pytest.raises(ValueError, match="width=1000000"):
        models.mlp(width=10**6)
    with pytest.raises(ValueError, match="smaller width"):
        models.cnn(width=10**5)
    assert sum(p.numel() for p in models.mlp(width=512, depth=3).parameters()) > 0


# ---- the one attention and the one transformer block (labkit.models) ----------------------


def _loop_attention(q, k, v, offset):
    """Query by query, key by key: query i sees keys 0 .. i + offset (scratch code)."""
    out = torch.empty(*q.shape[:-1], v.shape[-1])
    for i in range(q.shape[-2]):
        keys = min(k.shape[-2], i + offset + 1)
        s = q[..., i : i + 1, :] @ k[..., :keys, :].transpose(-2, -1) / q.shape[-1] ** 0.5
        out[..., i, :] = (s.softmax(-1) @ v[..., :keys, :]).squeeze(-2)
    return out


@pytest.mark.parametrize("n, m", [(5, 9), (9, 5), (6, 6), (1, 7)])
def test_top_left_causal_attention_is_sdpa_is_causal(n: int, m: int) -> None:
    gen = torch.Generator().manual_seed(n * m)
    q, k, v = (torch.randn(2, 3, s, 8, generator=gen) for s in (n, m, m))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    got = models.attention(q, k, v, causal=True, offset=0)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got, _loop_attention(q, k, v, offset=0), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("n, m", [(4, 9), (1, 9), (6, 6)])
def test_bottom_right_causal_attention_is_the_kv_cache_rule(n: int, m: int) -> None:
    """The n queries are the last n of m positions: query i sees keys 0 .. m - n + i."""
    gen = torch.Generator().manual_seed(n + m)
    q, k, v = (torch.randn(2, 3, s, 8, generator=gen) for s in (n, m, m))
    got = models.attention(q, k, v, causal=True, offset=m - n)
    torch.testing.assert_close(got, _loop_attention(q, k, v, offset=m - n), atol=1e-5, rtol=1e-4)
    # the same rows of the full causal attention over all m positions
    full_q = torch.cat([torch.randn(2, 3, m - n, 8, generator=gen), q], dim=2)
    full = models.attention(full_q, k, v, causal=True)
    torch.testing.assert_close(got, full[:, :, m - n :], atol=1e-5, rtol=1e-4)


def test_causal_mask_alignment_and_no_mask_attention() -> None:
    assert models.causal_mask(2, 4).tolist() == [[1, 0, 0, 0], [1, 1, 0, 0]]
    assert models.causal_mask(2, 4, offset=2).tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    q, k, v = torch.randn(1, 3, 4), torch.randn(1, 5, 4), torch.randn(1, 5, 2)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(models.attention(q, k, v), ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(models.attention(q, k, v, scale=0.5), ref, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(models.attention(q, k, v, scale=3.0), ref, atol=1e-3)


def test_tiled_attention_of_notebook_08_matches_the_one_attention() -> None:
    from labkit import attention

    gen = torch.Generator().manual_seed(0)
    for n, m in [(70, 100), (100, 70)]:
        q, k, v = (torch.randn(2, s, 16, generator=gen) for s in (n, m, m))
        for causal in (False, True):
            torch.testing.assert_close(
                attention.tiled_attention(q, k, v, block_size=16, causal=causal),
                models.attention(q, k, v, causal=causal),
                atol=1e-5,
                rtol=1e-4,
            )
        assert torch.equal(
            attention.naive_attention(q, k, v, causal=True),
            models.attention(q, k, v, True, 0, 0.25),
        )


@pytest.mark.parametrize("causal", [True, False])
def test_block_explicit_and_sdpa_attention_agree(causal: bool) -> None:
    torch.manual_seed(0)
    explicit = models.TransformerBlock(16, 4, causal=causal).eval()
    fused = models.TransformerBlock(16, 4, causal=causal, sdpa=True).eval()
    fused.load_state_dict(explicit.state_dict())
    x = torch.randn(2, 7, 16)
    with torch.no_grad():
        (a, (ka, va)), (b, (kb, vb)) = explicit(x), fused(x)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
        assert ka.shape == (2, 4, 7, 4) and torch.equal(ka, kb) and torch.equal(va, vb)
        if causal:  # a 3-token step against a 4-token cache: the bottom-right mask in both
            past = (ka[:, :, :4], va[:, :, :4])
            step_a, _ = explicit(x[:, 4:], past)
            step_b, _ = fused(x[:, 4:], past)
            torch.testing.assert_close(step_a, a[:, 4:], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(step_b, a[:, 4:], atol=1e-5, rtol=1e-4)


def test_block_is_causal_only_when_asked() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 6, 8)
    changed = x.clone()
    changed[:, -1] += torch.randn(8)  # change the last token only
    for causal in (True, False):
        block = models.TransformerBlock(8, 2, causal=causal).eval()
        with torch.no_grad():
            same_past = torch.allclose(block(x)[0][:, :-1], block(changed)[0][:, :-1])
        assert same_past == causal
    with pytest.raises(ValueError, match="divisible"):
        models.TransformerBlock(10, 4)


def test_block_creates_its_linears_in_the_checkpoints_order() -> None:
    """qkv, proj, fc, out: the random-init order both shipped transformer checkpoints were made in."""
    torch.manual_seed(0)
    block = models.TransformerBlock(8, 2)
    torch.manual_seed(0)
    d = 8
    expected = [torch.nn.Linear(a, b) for a, b in ((d, 3 * d), (d, d), (d, 4 * d), (4 * d, d))]
    got = [block.qkv, block.proj, block.fc, block.out]
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e.weight, g.weight) and torch.equal(e.bias, g.bias)


class _TinyLM(nn.Module):
    """Embedding + linear next-character model; returns (logits, None) like CharGPT."""

    def __init__(self, vocab: int = 5, block_size: int = 8) -> None:
        super().__init__()
        self.cfg = SimpleNamespace(block_size=block_size)
        self.emb, self.head = nn.Embedding(vocab, 16), nn.Linear(16, vocab)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.head(self.emb(x)), None


def test_fit_next_char_learns_a_cycle_and_repeats_with_the_same_generator() -> None:
    ids = torch.arange(200) % 5  # 0 1 2 3 4 0 1 ...: the next id is (id + 1) % 5
    trained = []
    for _ in range(2):
        torch.manual_seed(0)
        m = _TinyLM()
        g = torch.Generator().manual_seed(0)
        trained.append(train.fit_next_char(m, ids, steps=60, batch_size=4, lr=3e-2, gen=g))
    a, b = trained
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not a.training
    pred = a(torch.arange(5).unsqueeze(0))[0].argmax(-1)  # (1, 5)
    assert pred.tolist() == [[1, 2, 3, 4, 0]]
