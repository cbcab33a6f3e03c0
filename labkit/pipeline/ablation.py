"""Does the order of the compression steps matter? Two ablations, measured over seeds.

Quantise last or first (same channels removed, same bits, same training epochs):

    prune -> quantise:  prune_channels(ratio) + BN re-estimation + fine-tune (epochs)
                        -> QAT at ``bits`` (qat_epochs)
    quantise -> prune:  QAT at ``bits`` (qat_epochs) -> export_float (BN folded, weights on the
                        grid) -> prune_channels(ratio) + fine-tune (epochs), which moves the
                        weights off the grid -> static PTQ at ``bits`` (the deliverable must be
                        ``bits``-bit; no training left in the budget)

Distil before or after the cut (the only difference: which phase uses the teacher):

    distil -> prune:    train with KD (alpha) -> prune + BN + fine-tune with plain CE
    prune -> distil:    train with plain CE   -> prune + BN + fine-tune with KD (alpha)

Plain CE here is distill.kd_loss_fn with alpha = 0: the same shift augmentation and the same
batches, only the teacher's term switched off. Every run starts from seed ``seed``; a row is

    {"order", "seed", "accuracy" (fraction of the test split), "bytes" (qat.size_bytes of the
     result at its bits: BN folded, per-channel scales)}

and the verdict compares two orders paired by seed (distill.difference, a paired t-test).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from labkit import distill, prune, qat
from labkit.core import models, train
from labkit.core.errors import (
    check_bits,
    check_fraction,
    check_int,
    check_loader,
    check_model,
    check_nonempty,
    check_number,
    check_tensor,
)
from labkit.pipeline.lesson import export_float, quantization_aware

QUANT_ORDERS = ("prune → quantise", "quantise → prune")
DISTIL_ORDERS = ("distil → prune", "prune → distil")


def prune_then_quantise(
    model: nn.Sequential,
    loader: DataLoader,
    *,
    ratio: float = 0.5,
    bits: int = 4,
    epochs: int = 1,
    qat_epochs: int = 1,
    seed: int = 0,
) -> nn.Module:
    """Cut ``ratio`` of the channels, repair (BN statistics, ``epochs`` of CE), then QAT.

    Returns the fake-quantised model (its weights on the ``bits`` grid the QAT trained for).
    Used by order_ablation (labkit/pipeline/ablation.py).
    """
    _check_orders(model, loader, ratio, bits, epochs, qat_epochs)
    torch.manual_seed(seed)
    small = prune.prune_channels(model, ratio)  # conv channels * (1 - ratio)
    prune.recalibrate_bn(small, loader)
    prune.finetune(small, loader, epochs=epochs, lr=3e-3)
    return quantization_aware(small, loader, bits=bits, epochs=qat_epochs, seed=seed)


def quantise_then_prune(
    model: nn.Sequential,
    loader: DataLoader,
    *,
    ratio: float = 0.5,
    bits: int = 4,
    epochs: int = 1,
    qat_epochs: int = 1,
    seed: int = 0,
) -> nn.Module:
    """QAT first, then cut and repair, then re-quantise with static PTQ (same ``bits``).

    The fine-tune after the cut moves the weights off the grid the QAT fitted, so the
    deliverable is quantised again without training: what "quantise first" leaves you with.
    Used by order_ablation (labkit/pipeline/ablation.py).
    """
    _check_orders(model, loader, ratio, bits, epochs, qat_epochs)
    q = quantization_aware(model, loader, bits=bits, epochs=qat_epochs, seed=seed)
    torch.manual_seed(seed)
    small = prune.prune_channels(export_float(q), ratio)  # BN folded: nothing to re-estimate
    prune.finetune(small, loader, epochs=epochs, lr=3e-3)
    return qat.static_ptq(small, qat.calibration_batches(loader, 4), bits).eval()


def order_ablation(
    teacher: nn.Module,
    loader: DataLoader,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    width: int = 16,
    ratio: float = 0.5,
    bits: int = 4,
    epochs: int = 2,
    finetune_epochs: int = 1,
) -> list[dict[str, Any]]:
    """Both ablations for every seed: one row per (order, seed), orders as in QUANT_ORDERS
    then DISTIL_ORDERS. The quantisation orders start from the "distil -> prune" run's
    distilled model, so all four share the seed's training data order.
    x (N, 1, 8, 8), y (N,): the test split the accuracy is measured on.
    Taught in notebooks/13_capstone_pipeline.ipynb, "10. Does the order matter? An ablation".
    """
    _check_ablation(teacher, loader, x, y, seeds, width, ratio, bits, epochs, finetune_epochs)
    rows = []
    for s in seeds:
        # the distilled model: both quantisation orders and "distil -> prune" start here
        base = _train(teacher, loader, width, epochs, 0.9, s)
        plain = _train(teacher, loader, width, epochs, 0.0, s)  # same batches, no teacher
        kw = {"ratio": ratio, "bits": bits, "epochs": finetune_epochs, "seed": s}
        cut = (ratio, finetune_epochs)
        done = {
            QUANT_ORDERS[0]: (prune_then_quantise(base, loader, **kw), bits),
            QUANT_ORDERS[1]: (quantise_then_prune(base, loader, **kw), bits),
            DISTIL_ORDERS[0]: (_cut_and_repair(base, loader, teacher, *cut, 0.0, s), 32),
            DISTIL_ORDERS[1]: (_cut_and_repair(plain, loader, teacher, *cut, 0.9, s), 32),
        }
        for order, (m, b) in done.items():
            with torch.inference_mode():
                acc = train.accuracy(m.eval(), x, y)
            rows.append({"order": order, "seed": s, "accuracy": acc, "bytes": _bytes(m, b)})
    return rows


def order_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per order: {"order", "seeds", "mean", "std" (sample, n-1), "min", "max"} of
    the accuracy (fractions) and "bytes" (the same for every seed, else a ValueError).
    Taught in notebooks/13_capstone_pipeline.ipynb, "10. Does the order matter? An ablation".
    """
    by = _check_rows(rows)
    out = []
    for order, rs in by.items():
        accs = [r["accuracy"] for r in rs]
        mean, std = distill.mean_std(accs)
        out.append({
            "order": order, "seeds": len(rs), "mean": mean, "std": std,
            "min": min(accs), "max": max(accs), "bytes": rs[0]["bytes"],
        })  # fmt: skip
    return out


def order_verdict(rows: Sequence[dict[str, Any]], a: str, b: str) -> str:
    """One sentence comparing order ``a`` with order ``b``, paired by seed:

    d_s = 100 (acc_a,s - acc_b,s) points; clear when |mean d| / (std d / sqrt(n)) is above
    the t quantile at 95 % (distill.difference, paired). Otherwise the sentence says
    "no difference beyond the spread".
    Taught in notebooks/13_capstone_pipeline.ipynb, "10. Does the order matter? An ablation".
    """
    by = _check_rows(rows, a, b)
    pa = {r["seed"]: 100 * r["accuracy"] for r in by[a]}
    pb = {r["seed"]: 100 * r["accuracy"] for r in by[b]}
    seeds = sorted(set(pa) & set(pb))
    d = distill.difference([pa[s] for s in seeds], [pb[s] for s in seeds], paired=True)
    stat = f"paired over {len(seeds)} seeds, t = {d.t:.1f}"
    if d.clear:
        side = "above" if d.diff > 0 else "below"
        return f"{a} is {abs(d.diff):.2f} points {side} {b}, beyond the spread ({stat})"
    return f"{a} vs {b}: {d.diff + 0.0:+.2f} points, no difference beyond the spread ({stat})"


# ---- helpers and checks


def _train(
    teacher: nn.Module, loader: DataLoader, width: int, epochs: int, alpha: float, seed: int
) -> nn.Sequential:
    """A fresh seeded models.cnn(width) trained for ``epochs`` with _kd(alpha)."""
    torch.manual_seed(seed)
    model = models.cnn(width=width, depth=3)
    train.fit(model, loader, epochs=epochs, lr=3e-3, loss_fn=_kd(teacher, alpha, seed))
    return model


def _cut_and_repair(
    model: nn.Sequential,
    loader: DataLoader,
    teacher: nn.Module,
    ratio: float,
    epochs: int,
    alpha: float,
    seed: int,
) -> nn.Sequential:
    """prune_channels(ratio), BN re-estimation, ``epochs`` of fine-tuning with _kd(alpha)."""
    torch.manual_seed(seed)
    small = prune.prune_channels(model, ratio)  # conv channels * (1 - ratio)
    prune.recalibrate_bn(small, loader)
    prune.finetune(small, loader, epochs=epochs, lr=3e-3, loss_fn=_kd(teacher, alpha, seed + 1))
    return small.eval()


def _kd(teacher: nn.Module, alpha: float, seed: int) -> train.LossFn:
    """distill.kd_loss_fn on shift-augmented batches; alpha = 0 is plain cross-entropy."""
    return distill.kd_loss_fn(teacher, T=4.0, alpha=alpha, seed=seed)


def _bytes(model: nn.Module, bits: int) -> int:
    """qat.size_bytes of the float model behind ``model`` (a fake-quant model is unwrapped)."""
    plain = export_float(model) if qat.quant_layers(model) else model
    return qat.size_bytes(plain, bits)


def _check_orders(
    model: object, loader: object, ratio: object, bits: object, epochs: object, qat_epochs: object
) -> None:
    """Both orders cut, fine-tune and quantise: every setting checked before the first step."""
    check_model(model)
    check_loader(loader)
    check_fraction(ratio, "ratio (the fraction of channels to remove)")
    check_bits(bits)
    check_int(epochs, "epochs (fine-tuning after the cut)", low=1, high=100)
    check_int(qat_epochs, "qat_epochs", low=1, high=1000)


def _check_ablation(
    teacher: object, loader: object, x: object, y: object, seeds: object, width: object,
    ratio: object, bits: object, epochs: object, finetune_epochs: object,
) -> None:  # fmt: skip
    check_model(teacher, "teacher")
    check_loader(loader)
    check_nonempty(check_tensor(x, "x", ndim=4), "x")
    if not isinstance(y, torch.Tensor) or y.shape != (len(x),):  # type: ignore[arg-type]
        raise ValueError("y must be a tensor with one label per image of x.")
    for i, s in enumerate(check_nonempty(seeds, "seeds")):
        check_int(s, f"seeds[{i}]", low=0)
    check_int(width, "width", low=1)
    check_fraction(ratio, "ratio (the fraction of channels to remove)")
    check_bits(bits)
    check_int(epochs, "epochs", low=1, high=1000)
    check_int(finetune_epochs, "finetune_epochs", low=1, high=100)


def _check_rows(rows: object, *orders: str) -> dict[str, list[dict[str, Any]]]:
    """Rows of order_ablation grouped by order; each named order (a, b) present, a != b."""
    by: dict[str, list[dict[str, Any]]] = {}
    for i, r in enumerate(check_nonempty(rows, "rows")):
        if not isinstance(r, dict) or not {"order", "seed", "accuracy", "bytes"} <= set(r):
            raise ValueError(
                f"rows[{i}] must be a row of order_ablation (order, seed, accuracy, bytes)."
            )
        check_number(r["accuracy"], f"rows[{i}]['accuracy'] (a fraction)", low=0, high=1)
        by.setdefault(r["order"], []).append(r)
    for name, order in zip(("a", "b"), orders, strict=False):
        if order not in by:
            raise ValueError(f"{name}={order!r} is not an order of the rows (orders: {list(by)}).")
    if len(orders) == 2 and orders[0] == orders[1]:
        raise ValueError(f"b must be another order than a, got {orders[1]!r} twice.")
    for order, rs in by.items():
        if len({r["bytes"] for r in rs}) != 1:
            raise ValueError(
                f"rows of order {order!r} have different sizes over seeds: not one setting."
            )
    return by
