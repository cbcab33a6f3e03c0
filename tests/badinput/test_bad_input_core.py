"""Bad input for core, the functions every chapter calls (issue 18, section 5): one bad argument
per case; see badinput_probe.py."""

import pytest
import torch
from badinput_probe import Case, outcome

from labkit.core import bench, checks, data, env, models, plots, probes, train

MLP = models.mlp(width=8, depth=1, in_features=4, num_classes=3)
X, Y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
STOI, ITOS = {"a": 0, "b": 1}, ["a", "b"]
NAN = float("nan")
TWO = {"a": lambda: 1, "b": lambda: 2}

CASES = [
    Case("bench.latency", "a string for fn", lambda: bench.latency("model"), "fn"),
    Case("bench.latency", "zero repeats", lambda: bench.latency(lambda: 1, repeats=0), "repeats"),
    Case("bench.latency", "negative warmup", lambda: bench.latency(lambda: 1, warmup=-1), "warmup"),
    Case("bench.latency", "zero threads", lambda: bench.latency(lambda: 1, threads=0), "threads"),
    Case("bench.compare", "no functions", lambda: bench.compare({}), "fns"),
    Case("bench.compare", "one function", lambda: bench.compare({"a": lambda: 1}), "fns"),
    Case("bench.compare", "unknown baseline", lambda: bench.compare(TWO, baseline="c"), "baseline"),
    Case("bench.compare", "zero rounds", lambda: bench.compare(TWO, rounds=0), "rounds"),
    Case("bench.compare", "fractional repeats", lambda: bench.compare(TWO, repeats=2.5), "repeats"),
    Case(
        "bench.compare",
        "a result for a function",
        lambda: bench.compare({"a": lambda: 1, "b": 2}),
        "fns",
    ),
    Case(
        "bench.count_parameters",
        "a string for model",
        lambda: bench.count_parameters("mlp"),
        "model",
    ),
    Case("bench.count_macs", "a string for model", lambda: bench.count_macs("mlp", X), "model"),
    Case(
        "bench.count_macs",
        "a list for example",
        lambda: bench.count_macs(MLP, [1, 2, 3, 4]),
        "example",
    ),
    Case("bench.model_size_bytes", "None for model", lambda: bench.model_size_bytes(None), "model"),
    Case(
        "bench.serialized_size_bytes",
        "a dict for model",
        lambda: bench.serialized_size_bytes({}),
        "model",
    ),
    Case(
        "bench.pareto_front",
        "points of 3 numbers",
        lambda: bench.pareto_front([(1, 2, 3)]),
        "points",
    ),
    Case(
        "bench.pareto_front",
        "a NaN point",
        lambda: bench.pareto_front([(NAN, 1.0), (1.0, 2.0)]),
        "points",
    ),
    Case(
        "bench.best_under_budget",
        "an unknown limit key",
        lambda: bench.best_under_budget([{"accuracy": 0.9, "ms": 1}], {"size": 2}),
        "limits",
    ),
    Case(
        "bench.best_under_budget",
        "an unknown value key",
        lambda: bench.best_under_budget([{"accuracy": 0.9, "ms": 1}], {"ms": 2}, value="acc"),
        "value",
    ),
    Case("bench.peak_memory", "a string for fn", lambda: bench.peak_memory("fn"), "fn"),
    Case(
        "bench.roofline_point",
        "zero bytes moved",
        lambda: bench.roofline_point(lambda: 1, 1e6, 0),
        "bytes_moved",
    ),
    Case(
        "bench.roofline_point",
        "negative flops",
        lambda: bench.roofline_point(lambda: 1, -1.0, 10.0),
        "flops",
    ),
    Case(
        "data.digits_loaders",
        "zero batch size",
        lambda: data.digits_loaders(batch_size=0),
        "batch_size",
    ),
    Case(
        "data.digits_loaders",
        "negative subset",
        lambda: data.digits_loaders(train_subset=-5),
        "train_subset",
    ),
    Case("data.digits", "a string seed", lambda: data.digits(seed="0"), "seed"),
    Case("data.encode", "an unknown character", lambda: data.encode("abz", STOI), "text"),
    Case("data.encode", "a list for text", lambda: data.encode(["a"], STOI), "text"),
    Case("data.decode", "an unknown token id", lambda: data.decode([0, 7], ITOS), "ids"),
    Case("data.decode", "a negative token id", lambda: data.decode([0, -1], ITOS), "ids"),
    Case("data.load_text", "a missing file", lambda: data.load_text("/no/such/file.txt"), "path"),
    Case("data.load_text", "zero characters", lambda: data.load_text(max_chars=0), "max_chars"),
    Case(
        "data.load_text", "negative characters", lambda: data.load_text(max_chars=-10), "max_chars"
    ),
    Case("env.set_threads", "zero threads", lambda: env.set_threads(0), "n"),
    Case("env.set_threads", "fractional threads", lambda: env.set_threads(1.5), "n"),
    Case("env.seed_everything", "a string seed", lambda: env.seed_everything("0"), "seed"),
    Case("env.seed_everything", "a negative seed", lambda: env.seed_everything(-1), "seed"),
    Case("models.mlp", "zero classes", lambda: models.mlp(num_classes=0), "num_classes"),
    Case("models.mlp", "zero input features", lambda: models.mlp(in_features=0), "in_features"),
    Case("models.mlp", "fractional width", lambda: models.mlp(width=12.5), "width"),
    Case("models.mlp", "dropout of 1.5", lambda: models.mlp(dropout=1.5), "dropout"),
    Case("models.cnn", "zero classes", lambda: models.cnn(num_classes=0), "num_classes"),
    Case("models.cnn", "fractional width", lambda: models.cnn(width=7.5), "width"),
    Case("models.cnn", "zero depth", lambda: models.cnn(depth=0), "depth"),
    Case(
        "models.fold_batchnorm", "a string for model", lambda: models.fold_batchnorm("cnn"), "model"
    ),
    Case("train.accuracy", "labels of another length", lambda: train.accuracy(MLP, X, Y[:3]), "y"),
    Case("train.accuracy", "empty inputs", lambda: train.accuracy(MLP, X[:0], Y[:0]), "x"),
    Case("train.accuracy", "float labels", lambda: train.accuracy(MLP, X, Y.float()), "y"),
    Case("train.evaluate", "a tensor for loader", lambda: train.evaluate(MLP, X), "loader"),
    Case("train.fit", "a string for model", lambda: train.fit("mlp", [(X, Y)]), "model"),
    Case("train.fit", "zero epochs", lambda: train.fit(MLP, [(X, Y)], epochs=0), "epochs"),
    Case("train.fit", "negative learning rate", lambda: train.fit(MLP, [(X, Y)], lr=-0.1), "lr"),
    Case("train.fit", "NaN learning rate", lambda: train.fit(MLP, [(X, Y)], lr=NAN), "lr"),
    Case(
        "plots.line",
        "a y series of another length",
        lambda: plots.line([1, 2, 3], {"a": [1, 2]}, xlabel="x", ylabel="y", title="t"),
        "ys",
    ),
    Case(
        "plots.line",
        "no series",
        lambda: plots.line([1, 2], {}, xlabel="x", ylabel="y", title="t"),
        "ys",
    ),
    Case(
        "plots.histogram",
        "zero bins",
        lambda: plots.histogram({"a": [1.0, 2.0]}, bins=0, xlabel="x", ylabel="y", title="t"),
        "bins",
    ),
    Case(
        "plots.histogram",
        "no samples",
        lambda: plots.histogram({}, bins=10, xlabel="x", ylabel="y", title="t"),
        "samples",
    ),
    Case(
        "probes.peak_tensor_bytes", "a string for fn", lambda: probes.peak_tensor_bytes("fn"), "fn"
    ),
    Case(
        "probes.exact_cpu_memory_accounting",
        "a negative threshold",
        lambda: probes.exact_cpu_memory_accounting(-1),
        "threshold_bytes",
    ),
    Case(
        "checks.check",
        "an unknown exercise key",
        lambda: checks.check("quant.no_such", lambda: 1),
        "key",
    ),
    Case(
        "checks.exercise",
        "an unknown exercise key",
        lambda: checks.exercise("no.such", lambda: 1),
        "key",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_gets_a_clear_error(case: Case) -> None:
    assert outcome(case) == "clear"
