"""labkit.assets: the one loader of the shipped checkpoints, its registry and its file errors."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from labkit import assets, models
from labkit.course import train_assets  # importing it registers every topic's checkpoint

SHIPPED = {"char_gpt", "char_gpt_draft", "digit_transformer", "kd_teachers", "qat_char_lm"}


@pytest.fixture
def tmp_data(tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "DATA_DIR", tmp_path)
    return tmp_path


def test_save_load_round_trip(tmp_data) -> None:
    m = models.mlp(8)
    assets.save(m, "tiny", {"accuracy": "0.5"})
    m2 = models.mlp(8)
    assert assets.load_weights(m2, "tiny") == {"accuracy": "0.5"}
    assert assets.metadata("tiny") == {"accuracy": "0.5"}
    for a, b in zip(m.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="train_assets"):
        assets.load_weights(m2, "missing")


def test_damaged_and_foreign_checkpoints_name_the_file_and_the_fix(tmp_data) -> None:
    net = models.mlp(width=8, depth=1)
    assets.save(net, "toy", {"accuracy": "0.5"})
    assert assets.load_weights(models.mlp(width=8, depth=1), "toy") == {"accuracy": "0.5"}
    with pytest.raises(ValueError, match=r"toy\.safetensors was saved from another architecture"):
        assets.load_weights(models.mlp(width=16, depth=1), "toy")
    with pytest.raises(ValueError, match="missing"):
        assets.load_weights(models.mlp(width=8, depth=2), "toy")
    (tmp_data / "toy.safetensors").write_bytes(b"\x00garbage" * 10)
    for read in (lambda: assets.load_weights(net, "toy"), lambda: assets.metadata("toy")):
        with pytest.raises(ValueError, match=r"toy\.safetensors is damaged.*train_assets toy"):
            read()
    with pytest.raises(ValueError, match="not found"):
        assets.load_weights(net, "nothing")


@pytest.fixture
def toy_asset(tmp_data, monkeypatch):
    """A registered checkpoint whose trainer counts its calls; sizes come from the metadata."""
    monkeypatch.setattr(assets, "REGISTRY", dict(assets.REGISTRY))
    calls = []

    def train():
        calls.append(1)
        torch.manual_seed(len(calls))
        return models.mlp(width=4, depth=1), {"width": "4", "run": str(len(calls))}

    assets.register(
        "toy", build=lambda meta: models.mlp(width=int(meta["width"]), depth=1), train=train
    )
    return calls


def test_load_trains_only_when_missing_or_asked(toy_asset, tmp_data) -> None:
    model, meta = assets.load("toy")  # no file: trained and saved
    assert toy_asset == [1] and (tmp_data / "toy.safetensors").exists()
    assert meta == {"width": "4", "run": "1"} and not model.training
    again, meta = assets.load("toy")  # the file is there: loaded, not trained
    assert toy_asset == [1] and meta["run"] == "1"
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    _, meta = assets.load("toy", retrain=True)
    assert toy_asset == [1, 1] and meta["run"] == "2"


def test_unknown_checkpoint_names_the_registered_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown checkpoint 'nope'.*char_gpt"):
        assets.load("nope")


def test_the_cli_knows_exactly_the_shipped_checkpoints(capsys) -> None:
    assert set(assets.REGISTRY) == SHIPPED
    assert train_assets.main(["nope"]) == 2
    assert f"known: {sorted(SHIPPED)}" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_shipped_file_matches_the_model_its_topic_builds(name) -> None:
    """Same keys and shapes as the registered architecture: retraining would write this file."""
    meta = assets.metadata(name)
    own = assets.REGISTRY[name].build(meta).state_dict()
    with safe_open(str(assets.path(name)), framework="pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    assert shapes == {k: tuple(v.shape) for k, v in own.items()}
    assert meta  # how it was trained and its quality
    model, _ = assets.load(name)
    assert not model.training
