"""Gradient accumulation (notebook 02, parts 1-5): a big batch's gradient from k small micro-batches.

For a mean loss over a batch of N examples split into micro-batches B_1..B_k (sizes n_i),

    grad (1/N) sum_j l_j  =  sum_i (n_i / N) * grad mean_{j in B_i} l_j

so each micro-batch's mean loss is multiplied by n_i / N before backward() (loss / k when all
micro-batches have the same size), gradients add up in .grad, and the optimizer steps once.
Only one micro-batch's activations are alive at a time: peak memory falls with the micro-batch.
It is exact only for layers that treat examples independently: BatchNorm (statistics per
micro-batch) and dropout (fresh masks) break the equality.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from labkit.core.errors import (
    check_choice,
    check_int,
    check_model,
    check_nonempty,
    check_number,
    check_positive,
    check_same_shape,
    check_tensor,
)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def gradients(model: nn.Module) -> list[torch.Tensor]:
    """Copies of every parameter's .grad (zeros where a parameter got no gradient).

    Used by every gradient function of labkit/accumulation/ and by its exercises.py.
    """
    check_model(model)
    return [
        p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
        for p in model.parameters()
    ]


def max_abs_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """max over tensors of max |a - b| (two gradient lists of the same model).

    Taught in notebooks/02_gradient_accumulation.ipynb, "1. The rule, proved".
    """
    _check_grad_lists(a, b)
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


def max_rel_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """max |a - b| / max |b| over all tensors: the error relative to b's scale.

    Taught in notebooks/02_gradient_accumulation.ipynb, "2. The wrong versions, measured".
    """
    _check_max_rel_diff(a, b)
    return max_abs_diff(a, b) / max(float(t.abs().max()) for t in b)


def allclose(
    a: list[torch.Tensor], b: list[torch.Tensor], rtol: float = 1e-5, atol: float = 1e-6
) -> bool:
    """torch.allclose on every pair of tensors: |a - b| <= atol + rtol * |b| everywhere.

    Taught in notebooks/02_gradient_accumulation.ipynb, "1. The rule, proved".
    """
    _check_allclose(a, b, rtol, atol)
    return all(torch.allclose(x, y, rtol=rtol, atol=atol) for x, y in zip(a, b, strict=True))


def micro_batches(
    x: torch.Tensor, y: torch.Tensor, micro_batch_size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive slices of (x, y) of ``micro_batch_size`` rows (the last may be smaller):
    k = ceil(N / micro_batch_size) micro-batches, views of x and y (no copy).

    Taught in notebooks/02_gradient_accumulation.ipynb, "1. The rule, proved".
    """
    _check_batch(x, y, micro_batch_size)
    return [
        (x[i : i + micro_batch_size], y[i : i + micro_batch_size])  # (<= mb, ...) views
        for i in range(0, len(x), micro_batch_size)
    ]


def big_batch_gradients(
    model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor
) -> list[torch.Tensor]:
    """Gradients of loss_fn(model(x), y) on the whole batch at once (the reference).

    Taught in notebooks/02_gradient_accumulation.ipynb, "1. The rule, proved".
    """
    _check_step(model, loss_fn, x, y)
    model.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    return gradients(model)


def accumulate_gradients(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    micro_batch_size: int,
) -> list[torch.Tensor]:
    """Gradients accumulated over micro-batches, each mean loss weighted by n_i / N.

        grad = sum_i grad(mean loss on B_i * n_i / N)
    Equal to big_batch_gradients for a mean loss (up to float rounding) whatever the sizes.
    The exercise "accumulation.accumulate_gradients" has a worked solution in
    solutions/n02_gradient_accumulation.py, a deliberate copy checked against this function.
    Taught in notebooks/02_gradient_accumulation.ipynb, "1. The rule, proved".
    """
    _check_step(model, loss_fn, x, y, micro_batch_size)
    model.zero_grad(set_to_none=True)
    n = len(x)
    for xb, yb in micro_batches(x, y, micro_batch_size):
        (loss_fn(model(xb), yb) * (len(xb) / n)).backward()  # .grad += (n_i / N) grad mean_i
    return gradients(model)


def accumulate_wrong(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    micro_batch_size: int,
    mistake: str,
) -> list[torch.Tensor]:
    """The two classic mistakes, for demonstration.

    mistake="no_divide":   backward(mean loss of each micro-batch): k times the gradient.
    mistake="divide_by_k": backward(loss / k) even when the last micro-batch is smaller:
                           its examples get too much weight.
    Taught in notebooks/02_gradient_accumulation.ipynb, "2. The wrong versions, measured".
    """
    _check_step(model, loss_fn, x, y, micro_batch_size, mistake)
    chunks = micro_batches(x, y, micro_batch_size)
    model.zero_grad(set_to_none=True)
    for xb, yb in chunks:
        loss = loss_fn(model(xb), yb)
        (loss if mistake == "no_divide" else loss / len(chunks)).backward()
    return gradients(model)


def train_accumulated(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float,
    micro_batch_size: int | None = None,
    loss_fn: LossFn = nn.functional.cross_entropy,
) -> nn.Module:
    """``steps`` SGD steps on the batch (x, y): one backward, or accumulation over micro-batches.

        w <- w - lr * grad,  grad = big_batch_gradients or accumulate_gradients
    Same data, same lr: accumulation gives the same weights as the big batch.
    Taught in notebooks/02_gradient_accumulation.ipynb, "3. Same weights after training, and the learning rate".
    """
    _check_train(model, loss_fn, x, y, micro_batch_size, steps, lr)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        if micro_batch_size is None:
            big_batch_gradients(model, loss_fn, x, y)
        else:
            accumulate_gradients(model, loss_fn, x, y, micro_batch_size)
        opt.step()
    return model


def _rel_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """max over layers of ||a - b|| / ||b||."""
    return max(float((p - q).norm() / q.norm()) for p, q in zip(a, b, strict=True))


def batchnorm_effect(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    micro_batch_size: int,
    warmup_updates: int = 50,
) -> dict[str, float]:
    """How BatchNorm (train mode) breaks accumulation, on the gradient and on the running stats.

    Gradient: each micro-batch is normalised with its own mean and variance, not the big
    batch's -> "grad_rel_error" = max |g_acc - g_big| / max |g_big|.

    Running statistics r <- (1 - m) r + m * stat (momentum m = 0.1) are updated once per step
    with the big batch, but k times per step with accumulation. Right after initialisation
    (r = 0 for the mean) that alone makes them differ: one update gives m * mu, k updates give
    (1 - (1 - m)^k) * mu, a relative difference of (1 - (1 - m)^k) / m - 1 ("ema_prediction")
    that is the EMA warming up, not an effect of accumulation ("cold_mean_rel_diff", measured).

    The fair comparison is between warmed-up EMAs (weights fixed). The big-batch regime's EMA
    converges to the big batch's own statistics (set here directly: one forward pass with
    m = 1). The accumulation regime starts there and runs whole steps of k micro-batch updates
    until at least ``warmup_updates`` updates have happened ((1 - m)^50 < 1 %: the start is
    forgotten). "warm_mean_rel_diff" / "warm_var_rel_diff" = max over layers of
    ||r_acc - r_big|| / ||r_big||. What is left is real: the accumulated EMA is weighted
    towards the last micro-batches and carries the noise of their small-sample statistics.
    Taught in notebooks/02_gradient_accumulation.ipynb, "4.1 BatchNorm".
    """
    bns = _check_batchnorm(model, x, y, micro_batch_size, warmup_updates)
    chunks = micro_batches(x, y, micro_batch_size)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    momentum = [bn.momentum for bn in bns]
    model.train()
    ref = big_batch_gradients(model, nn.functional.cross_entropy, x, y)
    cold_big = [bn.running_mean.clone() for bn in bns]
    model.load_state_dict(state)
    acc = accumulate_gradients(model, nn.functional.cross_entropy, x, y, micro_batch_size)
    cold_acc = [bn.running_mean.clone() for bn in bns]
    with torch.no_grad():
        model.load_state_dict(state)
        for bn in bns:
            bn.momentum = 1.0  # r <- the big batch's statistics: the big regime's fixed point
        model(x)
        for bn, m in zip(bns, momentum, strict=True):
            bn.momentum = m
        big_mean = [bn.running_mean.clone() for bn in bns]
        big_var = [bn.running_var.clone() for bn in bns]
        for _ in range(max(2, -(-warmup_updates // len(chunks)))):  # whole steps, >= 2
            for xb, _yb in chunks:
                model(xb)
        acc_mean = [bn.running_mean.clone() for bn in bns]
        acc_var = [bn.running_var.clone() for bn in bns]
    model.load_state_dict(state)
    m, k = float(momentum[0]), len(chunks)
    return {
        "grad_rel_error": max_rel_diff(acc, ref),
        "cold_mean_rel_diff": _rel_diff(cold_acc, cold_big),
        "ema_prediction": (1 - (1 - m) ** k) / m - 1,
        "warm_mean_rel_diff": _rel_diff(acc_mean, big_mean),
        "warm_var_rel_diff": _rel_diff(acc_var, big_var),
    }


def dropout_effect(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, micro_batch_size: int, seed: int = 0
) -> dict[str, float]:
    """Dropout with accumulation: same seed, yet micro-batches draw different masks.

    Returns {"grad_rel_error": accumulated vs big batch (same seed, train mode),
             "eval_rel_error": the same with dropout off (model.eval()): float rounding only}.
    Taught in notebooks/02_gradient_accumulation.ipynb, "4.2 Dropout".
    """
    _check_dropout(model, x, y, micro_batch_size, seed)
    model.train()
    torch.manual_seed(seed)
    ref = big_batch_gradients(model, nn.functional.cross_entropy, x, y)
    torch.manual_seed(seed)
    acc = accumulate_gradients(model, nn.functional.cross_entropy, x, y, micro_batch_size)
    model.eval()
    ref_eval = big_batch_gradients(model, nn.functional.cross_entropy, x, y)
    acc_eval = accumulate_gradients(model, nn.functional.cross_entropy, x, y, micro_batch_size)
    model.train()
    return {
        "grad_rel_error": max_rel_diff(acc, ref),
        "eval_rel_error": max_rel_diff(acc_eval, ref_eval),
    }


def clip_order_effect(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    micro_batch_size: int,
    max_norm: float,
    init_scale: float = 2.0**16,
) -> dict[str, float]:
    """AMP + accumulation + clipping: clip the *unscaled* gradient.

    Accumulates scaled micro-batch losses with a torch.amp.GradScaler("cpu") and returns the
    gradient norms {"true_norm", "right_order" (unscale_ then clip: <= max_norm),
    "wrong_order" (clip the scaled gradient, then unscale: max_norm / S, far too small)}.
    Taught in notebooks/02_gradient_accumulation.ipynb, "5. With AMP: unscale before clipping".
    """
    _check_clip(model, x, y, micro_batch_size, max_norm, init_scale)
    out = {}
    for order in ("right_order", "wrong_order"):
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
        model.zero_grad(set_to_none=True)
        for xb, yb in micro_batches(x, y, micro_batch_size):
            loss = nn.functional.cross_entropy(model(xb), yb) * (len(xb) / len(x))
            scaler.scale(loss).backward()
        if order == "right_order":
            scaler.unscale_(opt)
            out["true_norm"] = _grad_norm(model)
            nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        else:
            nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            scaler.unscale_(opt)
        out[order] = _grad_norm(model)
        scaler.step(opt)
        scaler.update()
    return out


def _grad_norm(model: nn.Module) -> float:
    """Global L2 norm of all gradients: sqrt(sum_p ||grad_p||^2) (what clip_grad_norm_ clips)."""
    return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters())))


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_grad_lists(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    if not isinstance(a, (list, tuple)) or not isinstance(b, (list, tuple)) or not a or not b:
        raise ValueError("a and b must be non-empty lists of gradients (accumulation.gradients).")
    if len(a) != len(b):
        raise ValueError(
            f"a and b differ in length ({len(a)} vs {len(b)} tensors): pass the gradients of "
            "the same model, one tensor per parameter (accumulation.gradients(model))."
        )
    for i, (p, q) in enumerate(zip(a, b, strict=True)):  # the same parameter of the same model
        check_same_shape(check_tensor(p, f"a[{i}]"), check_tensor(q, f"b[{i}]"), f"a[{i}], b[{i}]")


def _check_batch(x: torch.Tensor, y: torch.Tensor, micro_batch_size: int) -> None:
    check_int(micro_batch_size, "micro_batch_size", low=1)
    check_tensor(y, "y", floating=False)
    if check_tensor(x, "x", floating=False).ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            f"x and y must have the same length (one label per example), got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}."
        )
    check_nonempty(x, "x")


def _check_step(model, loss_fn, x, y, micro_batch_size=1, mistake="no_divide") -> None:
    check_model(model)
    if not callable(loss_fn) or isinstance(loss_fn, type):
        got = (
            f"the class {loss_fn.__name__}" if isinstance(loss_fn, type) else type(loss_fn).__name__
        )
        raise ValueError(
            "loss_fn must be a callable (logits, targets) -> mean loss, e.g. "
            f"nn.functional.cross_entropy or nn.CrossEntropyLoss() (an instance), got {got}."
        )
    _check_batch(x, y, micro_batch_size)
    check_choice(mistake, "mistake", ("no_divide", "divide_by_k"))


def _check_train(model, loss_fn, x, y, micro_batch_size, steps, lr) -> None:
    _check_step(model, loss_fn, x, y, 1 if micro_batch_size is None else micro_batch_size)
    check_int(steps, "steps", low=1, high=100_000)  # optimizer steps on the whole batch
    check_positive(lr, "lr")


def _check_batchnorm(model, x, y, micro_batch_size, warmup_updates) -> list[nn.Module]:
    """The model's BatchNorm layers, after checking the demo can run on them."""
    _check_step(model, nn.functional.cross_entropy, x, y, micro_batch_size)
    check_int(warmup_updates, "warmup_updates", low=1, high=10_000)  # one forward pass each
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        raise ValueError("model has no BatchNorm layer; use labkit.models.cnn for this demo.")
    if any(bn.momentum is None or not bn.track_running_stats for bn in bns):
        raise ValueError(
            "this demo needs BatchNorm with running stats and a momentum (the default)."
        )
    return bns


def _check_max_rel_diff(a, b) -> None:
    _check_grad_lists(a, b)
    if all(float(t.abs().max()) == 0 for t in b if t.numel()):
        raise ValueError(
            "b is all zeros: max |a - b| / max |b| divides by 0; compare with "
            "accumulation.max_abs_diff(a, b) instead."
        )


def _check_allclose(a, b, rtol, atol) -> None:
    _check_grad_lists(a, b)
    check_number(rtol, "rtol", low=0)
    check_number(atol, "atol", low=0)


def _check_dropout(model, x, y, micro_batch_size, seed) -> None:
    _check_step(model, nn.functional.cross_entropy, x, y, micro_batch_size)
    check_int(seed, "seed")


def _check_clip(model, x, y, micro_batch_size, max_norm, init_scale) -> None:
    _check_step(model, nn.functional.cross_entropy, x, y, micro_batch_size)
    check_positive(max_norm, "max_norm")
    check_positive(init_scale, "init_scale")
