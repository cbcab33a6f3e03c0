"""Hardware-aware NAS: a per-layer latency lookup table and a regularised-evolution search.

The search space (MnasNet-style, one choice per layer): an architecture is a tuple of 2-4
blocks, each block a (channels, kernel) pair with channels in CHANNELS and kernel in KERNELS:
    [Conv k x k (c_i) -> BN -> ReLU] x depth, a 2x2 max-pool after the second block,
    Flatten, Linear(c_last * 4 * 4 -> 10);  input (1, 1, 8, 8).
Latency lookup table (FBNet / ProxylessNAS / MnasNet's latency model): every op a model can
contain is keyed by what fixes its cost, (kind, c_in, c_out, kernel, H), and timed once on
this CPU at its input shape (labkit.bench.latency, one thread, batch 1). The predicted latency
of an architecture is the sum of its ops' entries:
    lat_hat(a) = sum_{op in ops(a)} LUT[op]
MnasNet reward (Tan et al. 2019), target T, soft constraint w = alpha = beta = -0.07:
    R(a) = acc(a) * (lat(a) / T)^w,   w = alpha if lat(a) <= T else beta.
Regularised evolution (Real et al. 2019): keep a population of P models; each cycle draw S at
random (the tournament), mutate the best of them (one block's channels or kernel, or the
depth), evaluate the child, append it and remove the OLDEST member (aging), until the budget of
evaluations is spent. Random search spends the same budget on uniform samples.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
from torch import nn

from labkit.core import bench, train
from labkit.core.data import Loaders
from labkit.core.errors import check_int, check_nonempty, check_number, check_positive
from labkit.edge.checks import _check_loaders

CHANNELS = (4, 8, 16, 32)
KERNELS = (3, 5)
NAS_DEPTHS = (2, 3, 4)
Arch = tuple[tuple[int, int], ...]  # ((channels, kernel), ...) one pair per block
OpKey = tuple[str, int, int, int, int]  # (kind, c_in, c_out, kernel, H)
OP_KINDS = ("block", "pool", "flatten", "linear", "model")
MAX_REPEATS, MAX_THREADS, MAX_EVALS = 100_000, 256, 100_000  # a typo's limits, not the lesson's


def build(arch: Arch) -> nn.Sequential:
    """The model of an architecture (see the module docstring), in eval mode.

    Used by measure_latency and train_arch (labkit/edge/nas.py).
    """
    _check_arch(arch)
    layers: list[nn.Module] = []
    c_in = 1
    for i, (c, k) in enumerate(arch):
        layers.append(_block(c_in, c, k))  # (1, c, H, H)
        if i == 1:
            layers.append(nn.MaxPool2d(2))  # 8x8 -> 4x4
        c_in = c
    layers += [nn.Flatten(), nn.Linear(c_in * 4 * 4, 10)]  # (1, 10)
    return nn.Sequential(*layers).eval()


def lut_keys(arch: Arch) -> list[OpKey]:
    """The lookup-table keys of an architecture's ops, in order.

    Taught in notebooks/10_edge_deployment.ipynb, "6. Hardware-aware NAS with a latency lookup table".
    """
    _check_arch(arch)
    keys, c_in, h = [], 1, 8
    for i, (c, k) in enumerate(arch):
        keys.append(("block", c_in, c, k, h))
        if i == 1:
            keys.append(("pool", c, c, 2, h))
            h = 4
        c_in = c
    keys += [("flatten", c_in, c_in * h * h, 1, h), ("linear", c_in * h * h, 10, 1, 1)]
    return keys + [("model", 1, 10, 0, 8)]  # the outer nn.Sequential call itself


def op_module(key: OpKey) -> tuple[nn.Module, torch.Tensor]:
    """(module, example input) of one lookup-table key, to be timed. Used by latency_lut."""
    kind, c_in, c_out, k, h = key
    if kind == "block":
        return _block(c_in, c_out, k).eval(), torch.randn(1, c_in, h, h)
    if kind == "pool":
        return nn.MaxPool2d(2), torch.randn(1, c_in, h, h)
    if kind == "flatten":
        return nn.Flatten(), torch.randn(1, c_in, h, h)
    if kind == "model":  # an empty Sequential: the cost of the wrapper's own call
        return nn.Sequential(), torch.randn(1, 1, h, h)
    return nn.Linear(c_in, c_out).eval(), torch.randn(1, c_in)


def all_op_keys() -> list[OpKey]:
    """Every key any architecture of the space can use (the table to measure), sorted."""
    found: set[OpKey] = set()
    for c_prev in (1, *CHANNELS):
        for c in CHANNELS:
            for k in KERNELS:
                found.add(("block", c_prev, c, k, 8))  # block 0 (c_prev = 1) or block 1
                if c_prev != 1:
                    found.add(("block", c_prev, c, k, 4))  # blocks 2 and 3, after the pool
        if c_prev != 1:
            found |= {("pool", c_prev, c_prev, 2, 8), ("flatten", c_prev, c_prev * 16, 1, 4)}
            found.add(("linear", c_prev * 16, 10, 1, 1))
    return sorted(found | {("model", 1, 10, 0, 8)})


def latency_lut(
    keys: list[OpKey] | None = None, *, repeats: int = 100, threads: int = 1
) -> dict[OpKey, float]:
    """Median latency (ms, batch 1, ``threads`` threads) of every op, each timed at its input shape.

    Taught in notebooks/10_edge_deployment.ipynb, "6. Hardware-aware NAS with a latency lookup table".
    """
    _check_lut(keys, repeats, threads)
    table = {}
    with torch.no_grad():
        for key in all_op_keys() if keys is None else keys:
            module, x = op_module(key)
            table[key] = (
                bench.latency(module, x, warmup=5, repeats=repeats, threads=threads).median * 1e3
            )
    return table


def predict_latency(arch: Arch, lut: dict[OpKey, float]) -> float:
    """lat_hat = sum of the lookup-table entries of the architecture's ops (ms).

    Taught in notebooks/10_edge_deployment.ipynb, "6. Hardware-aware NAS with a latency lookup table".
    """
    _check_predict(arch, lut)
    return sum(lut[key] for key in lut_keys(arch))


def measure_latency(arch: Arch, *, repeats: int = 100, threads: int = 1) -> float:
    """Measured median latency (ms, batch 1) of the whole model, timed like the table's ops.

    Taught in notebooks/10_edge_deployment.ipynb, "6. Hardware-aware NAS with a latency lookup table".
    """
    _check_measure(arch, repeats, threads)
    model, x = build(arch), torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        return bench.latency(model, x, warmup=5, repeats=repeats, threads=threads).median * 1e3


def mean_abs_pct_error(predicted: list[float], measured: list[float]) -> float:
    """MAPE = 100/n * sum |p_i - m_i| / m_i (percent).

    Taught in notebooks/10_edge_deployment.ipynb, "6. Hardware-aware NAS with a latency lookup table".
    """
    _check_pairs(predicted, measured)
    return (
        100 * sum(abs(p - m) / m for p, m in zip(predicted, measured, strict=True)) / len(measured)
    )


def mnas_reward(
    accuracy: float, latency_ms: float, target_ms: float, alpha: float = -0.07, beta: float = -0.07
) -> float:
    """MnasNet's reward acc * (lat / T)^w, w = alpha if lat <= T else beta (-0.07: soft).

    Used by random_search and regularized_evolution (labkit/edge/nas.py).
    """
    _check_reward(accuracy, latency_ms, target_ms, alpha, beta)
    w = alpha if latency_ms <= target_ms else beta
    return accuracy * (latency_ms / target_ms) ** w


def random_arch(rng: random.Random) -> Arch:
    """One architecture drawn uniformly: a depth, then a (channels, kernel) per block.

    Taught in notebooks/10_edge_deployment.ipynb, "6. Hardware-aware NAS with a latency lookup table".
    """
    _check_rng(rng)
    return tuple((rng.choice(CHANNELS), rng.choice(KERNELS)) for _ in range(rng.choice(NAS_DEPTHS)))


def mutate(arch: Arch, rng: random.Random) -> Arch:
    """One random change: a block's channels, a block's kernel, or the depth (+-1 block).

    Used by regularized_evolution (labkit/edge/nas.py).
    """
    _check_mutate(arch, rng)
    blocks = list(arch)
    what, i = rng.choice(("channels", "kernel", "depth")), rng.randrange(len(blocks))
    if what == "channels":
        blocks[i] = (rng.choice([c for c in CHANNELS if c != blocks[i][0]]), blocks[i][1])
    elif what == "kernel":
        blocks[i] = (blocks[i][0], rng.choice([k for k in KERNELS if k != blocks[i][1]]))
    elif len(blocks) < max(NAS_DEPTHS) and (len(blocks) == min(NAS_DEPTHS) or rng.random() < 0.5):
        blocks.insert(i + 1, blocks[i])  # deeper: repeat a block
    else:
        del blocks[i]  # shallower
    return tuple(blocks)


Scorer = Callable[[Arch], float]


def random_search(
    evaluate: Scorer, latency: Scorer, target_ms: float, budget: int, seed: int = 0
) -> list[dict]:
    """``budget`` uniform samples, each scored; returns the history (arch, accuracy, latency_ms, reward).

    Taught in notebooks/10_edge_deployment.ipynb, "6. Hardware-aware NAS with a latency lookup table".
    """
    _check_search(evaluate, latency, target_ms, budget)
    rng = random.Random(seed)
    return [_score(random_arch(rng), evaluate, latency, target_ms) for _ in range(budget)]


def regularized_evolution(
    evaluate: Scorer,
    latency: Scorer,
    target_ms: float,
    budget: int,
    population: int = 8,
    sample: int = 3,
    seed: int = 0,
) -> list[dict]:
    """Aging evolution: tournament of ``sample``, mutate the winner, add the child, drop the oldest.

    The first ``population`` evaluations are random; every evaluation counts against ``budget``.
    Returns the history in evaluation order.
    Taught in notebooks/10_edge_deployment.ipynb, "6. Hardware-aware NAS with a latency lookup table".
    """
    _check_evolution(evaluate, latency, target_ms, budget, population, sample)
    rng = random.Random(seed)
    pop = [_score(random_arch(rng), evaluate, latency, target_ms) for _ in range(population)]
    history = list(pop)
    while len(history) < budget:
        parent = max(rng.sample(pop, sample), key=lambda r: r["reward"])  # the tournament
        child = _score(mutate(parent["arch"], rng), evaluate, latency, target_ms)
        pop.append(child)  # youngest in
        pop.pop(0)  # oldest out (aging), whatever its reward
        history.append(child)
    return history


def train_arch(arch: Arch, loaders: Loaders, *, epochs: int = 2, seed: int = 0) -> float:
    """The search's accuracy proxy: train build(arch) briefly from a fixed seed; validation accuracy.

    The same proxy as section 4's edge.train_candidate.
    Taught in notebooks/10_edge_deployment.ipynb, "6. Hardware-aware NAS with a latency lookup table".
    """
    _check_train_arch(arch, loaders, epochs)
    torch.manual_seed(seed)
    model = build(arch).train()
    train.fit(model, loaders.train, epochs=epochs, lr=3e-3)
    return train.evaluate(model, loaders.val)["accuracy"]


def best_so_far(history: list[dict]) -> list[float]:
    """Running maximum of the reward after each evaluation (the search's progress curve).

    Taught in notebooks/10_edge_deployment.ipynb, "6. Hardware-aware NAS with a latency lookup table".
    """
    _check_history(history)
    out, best = [], float("-inf")
    for rec in history:
        best = max(best, rec["reward"])
        out.append(best)
    return out


def _block(c_in: int, c_out: int, k: int) -> nn.Sequential:
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU())


def _score(arch: Arch, evaluate: Scorer, latency: Scorer, target_ms: float) -> dict:
    acc, lat = float(evaluate(arch)), float(latency(arch))
    return {
        "arch": arch,
        "accuracy": acc,
        "latency_ms": lat,
        "reward": mnas_reward(acc, lat, target_ms),
    }


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_arch(arch: object) -> None:
    ok = isinstance(arch, tuple | list) and len(arch) in NAS_DEPTHS
    ok = ok and all(
        isinstance(b, tuple | list) and len(b) == 2 and b[0] in CHANNELS and b[1] in KERNELS
        for b in arch
    )
    if not ok:
        raise ValueError(
            f"arch must be a tuple of {min(NAS_DEPTHS)}-{max(NAS_DEPTHS)} (channels, kernel) pairs with "
            f"channels in {CHANNELS} and kernel in {KERNELS}, got {arch!r}."
        )


def _check_lut(keys: object, repeats: object, threads: object) -> None:
    """None (every key of the space) or a non-empty list of (kind, c_in, c_out, kernel, H)."""
    if keys is not None:
        ok = isinstance(keys, list | tuple) and len(keys) > 0
        for key in keys if ok else ():  # type: ignore[union-attr]
            ok = ok and isinstance(key, tuple | list) and len(key) == 5 and key[0] in OP_KINDS
            ok = ok and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in key[1:]
            )
        if not ok:
            raise ValueError(
                f"keys must be None (the whole table) or a non-empty list of lut_keys "
                f"(kind in {OP_KINDS}, c_in, c_out, kernel, H), got {keys!r}."
            )
    _check_timing(repeats, threads)


def _check_timing(repeats: object, threads: object) -> None:
    check_int(repeats, "repeats (timed calls)", low=1, high=MAX_REPEATS)
    check_int(threads, "threads", low=1, high=MAX_THREADS)


def _check_predict(arch: object, lut: object) -> None:
    _check_arch(arch)
    if not isinstance(lut, dict):
        raise ValueError(f"lut must be the dict of latency_lut, got {type(lut).__name__}.")
    for key in lut_keys(arch):  # type: ignore[arg-type]
        if key not in lut:
            raise ValueError(f"lut has no entry for {key}; build it with latency_lut() first.")
        check_number(lut[key], f"lut[{key}] (ms)", low=0)


def _check_measure(arch: object, repeats: object, threads: object) -> None:
    _check_arch(arch)
    _check_timing(repeats, threads)


def _check_pairs(predicted: object, measured: object) -> None:
    check_nonempty(measured, "measured")
    if isinstance(predicted, str) or isinstance(measured, str):
        raise ValueError("predicted and measured must be lists of latencies (ms), not text.")
    if len(predicted) != len(measured):  # type: ignore[arg-type]
        raise ValueError("predicted and measured need the same length: one pair per architecture.")
    for i, (p, m) in enumerate(zip(predicted, measured, strict=True)):  # type: ignore[call-overload]
        check_number(_as_float(p), f"predicted[{i}]")
        check_positive(_as_float(m), f"measured[{i}] (every measured latency must be > 0)")


def _as_float(value: object) -> object:
    """A latency as a float (a Python or numpy number, or a one-element tensor); else as is."""
    if isinstance(value, str | bytes | bool):
        return value
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return value


def _check_reward(
    accuracy: object, latency_ms: object, target_ms: object, alpha: object = 0.0, beta: object = 0.0
) -> None:
    check_number(accuracy, "accuracy", low=0.0, high=1.0)
    check_positive(latency_ms, "latency_ms")
    check_positive(target_ms, "target_ms")
    check_number(alpha, "alpha (exponent when lat <= T)")
    check_number(beta, "beta (exponent when lat > T)")


def _check_rng(rng: object) -> None:
    if not isinstance(rng, random.Random):
        raise ValueError(
            f"rng must be a random.Random, got {type(rng).__name__}; use random.Random(0)."
        )


def _check_mutate(arch: object, rng: object) -> None:
    _check_arch(arch)
    _check_rng(rng)


def _check_search(evaluate: object, latency: object, target_ms: object, budget: object) -> None:
    for fn, name in ((evaluate, "evaluate"), (latency, "latency")):
        if not callable(fn):
            raise ValueError(f"{name} must be a function arch -> float, got {type(fn).__name__}.")
    check_positive(target_ms, "target_ms")
    check_int(budget, "budget (evaluations)", low=1, high=MAX_EVALS)


def _check_evolution(
    evaluate: object,
    latency: object,
    target_ms: object,
    budget: object,
    population: object,
    sample: object,
) -> None:
    _check_search(evaluate, latency, target_ms, 1)
    check_int(population, "population", low=2)
    check_int(sample, "sample (tournament size, at most population)", low=1, high=population)  # type: ignore[arg-type]
    check_int(budget, "budget (evaluations, at least population)", low=population, high=MAX_EVALS)  # type: ignore[arg-type]


def _check_train_arch(arch: object, loaders: object, epochs: object) -> None:
    _check_arch(arch)
    _check_loaders(loaders, epochs)


def _check_history(history: object) -> None:
    """The records of random_search / regularized_evolution, each with a finite reward."""
    if not isinstance(history, list | tuple):
        raise ValueError(
            f"history must be the list a search returns, got {type(history).__name__}."
        )
    for i, rec in enumerate(history):
        if not isinstance(rec, dict) or "reward" not in rec:
            raise ValueError(f"history[{i}] must be a record of a search, with a 'reward'.")
        check_number(rec["reward"], f"history[{i}]['reward']")
