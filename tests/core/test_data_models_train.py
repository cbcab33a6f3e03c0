import pytest
import torch

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


def test_save_load_round_trip(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(models, "DATA_DIR", tmp_path)
    m = models.mlp(8)
    models.save(m, "tiny", {"accuracy": "0.5"})
    m2 = models.mlp(8)
    meta = models.load(m2, "tiny")
    assert meta == {"accuracy": "0.5"}
    for a, b in zip(m.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="train_assets"):
        models.load(m2, "missing")


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


def test_damaged_and_foreign_checkpoints_name_the_file_and_the_fix(tmp_path, monkeypatch) -> None:
    import pytest

    from labkit import models

    monkeypatch.setattr(models, "DATA_DIR", tmp_path)
    net = models.mlp(width=8, depth=1)
    models.save(net, "toy", {"accuracy": "0.5"})
    assert models.load(models.mlp(width=8, depth=1), "toy") == {"accuracy": "0.5"}
    with pytest.raises(ValueError, match=r"toy\.safetensors was saved from another architecture"):
        models.load(models.mlp(width=16, depth=1), "toy")
    with pytest.raises(ValueError, match="missing"):
        models.load(models.mlp(width=8, depth=2), "toy")
    (tmp_path / "toy.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match=r"toy\.safetensors is damaged.*train_assets toy"):
        models.load(net, "toy")
    with pytest.raises(ValueError, match="not found"):
        models.load(net, "nothing")
