"""Planted wrong answers to notebook 02's exercises must be rejected (gradient equality)."""

import torch
import torch.nn.functional as F

from labkit import checks


def _chunks(x, y, mb):
    return [(x[i : i + mb], y[i : i + mb]) for i in range(0, len(x), mb)]


def test_no_division_is_rejected() -> None:
    def no_div(model, x, y, mb):
        model.zero_grad()
        for xb, yb in _chunks(x, y, mb):
            F.cross_entropy(model(xb), yb).backward()
        return [p.grad.clone() for p in model.parameters()]

    res = checks.check("accumulation.accumulate_gradients", no_div)
    assert not res.passed and "micro-batch 8" in res.message


def test_divide_by_k_with_an_uneven_last_batch_is_rejected() -> None:
    def by_k(model, x, y, mb):
        model.zero_grad()
        chunks = _chunks(x, y, mb)
        for xb, yb in chunks:
            (F.cross_entropy(model(xb), yb) / len(chunks)).backward()
        return [p.grad.clone() for p in model.parameters()]

    res = checks.check("accumulation.accumulate_gradients", by_k)
    assert not res.passed and "last micro-batch" in res.message


def test_forgetting_zero_grad_is_rejected() -> None:
    def stale(model, x, y, mb):
        for xb, yb in _chunks(x, y, mb):
            (F.cross_entropy(model(xb), yb) * len(xb) / len(x)).backward()
        return [p.grad.clone() for p in model.parameters()]

    assert not checks.check("accumulation.accumulate_gradients", stale).passed


def test_sum_reduction_is_rejected() -> None:
    def summed(model, x, y, mb):
        model.zero_grad()
        for xb, yb in _chunks(x, y, mb):
            F.cross_entropy(model(xb), yb, reduction="sum").backward()
        return [p.grad.clone() for p in model.parameters()]

    assert not checks.check("accumulation.accumulate_gradients", summed).passed


def _clip(model, x, y, mb, max_norm, scaler, *, order="right"):
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    model.zero_grad()
    for xb, yb in _chunks(x, y, mb):
        scaler.scale(F.cross_entropy(model(xb), yb) * len(xb) / len(x)).backward()
    if order == "right":
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    elif order == "wrong":
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        scaler.unscale_(opt)
    else:  # never unscaled
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return [p.grad.clone() for p in model.parameters()]


def test_clipping_before_unscaling_is_rejected() -> None:
    res = checks.check("accumulation.clip_accumulated", lambda *a: _clip(*a, order="wrong"))
    assert not res.passed and "clipping active" in res.message


def test_never_unscaling_is_rejected() -> None:
    res = checks.check("accumulation.clip_accumulated", lambda *a: _clip(*a, order="never"))
    assert not res.passed and ("unscale_" in res.message or "no clipping" in res.message)


def _plain(model, x, y, mb):
    model.zero_grad()
    for xb, yb in _chunks(x, y, mb):
        (F.cross_entropy(model(xb), yb) * len(xb) / len(x)).backward()


def test_never_calling_the_scaler_is_rejected() -> None:
    """Issue 19: plain backward + clip gives the right numbers without any loss scaling."""

    def no_scaler(model, x, y, mb, max_norm, scaler):
        _plain(model, x, y, mb)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        return [p.grad.clone() for p in model.parameters()]

    res = checks.check("accumulation.clip_accumulated", no_scaler)
    assert not res.passed and "never called scaler.scale" in res.message


def test_unscaling_by_hand_is_rejected() -> None:
    """Dividing by get_scale() gives the numbers, but scaler.step would unscale again."""

    def by_hand(model, x, y, mb, max_norm, scaler):
        model.zero_grad()
        for xb, yb in _chunks(x, y, mb):
            scaler.scale(F.cross_entropy(model(xb), yb) * len(xb) / len(x)).backward()
        for p in model.parameters():
            p.grad /= scaler.get_scale()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        return [p.grad.clone() for p in model.parameters()]

    res = checks.check("accumulation.clip_accumulated", by_hand)
    assert not res.passed and "never called scaler.unscale_" in res.message


def test_clipping_the_scaled_gradient_at_s_times_max_norm_is_rejected() -> None:
    """Same numbers as the right order, but the scaled gradient was clipped before unscale_."""

    def clip_scaled(model, x, y, mb, max_norm, scaler):
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        model.zero_grad()
        for xb, yb in _chunks(x, y, mb):
            scaler.scale(F.cross_entropy(model(xb), yb) * len(xb) / len(x)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm * scaler.get_scale())
        scaler.unscale_(opt)
        return [p.grad.clone() for p in model.parameters()]

    res = checks.check("accumulation.clip_accumulated", clip_scaled)
    assert not res.passed and "Unscale first, then clip" in res.message


def test_unscaling_twice_is_rejected() -> None:
    def twice(model, x, y, mb, max_norm, scaler, *, how):
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        model.zero_grad()
        for xb, yb in _chunks(x, y, mb):
            scaler.scale(F.cross_entropy(model(xb), yb) * len(xb) / len(x)).backward()
        scaler.unscale_(opt)
        if how == "unscale_ again":
            scaler.unscale_(opt)  # GradScaler refuses: already unscaled since the last update()
        elif how == "a second optimizer":
            scaler.unscale_(torch.optim.SGD(model.parameters(), lr=0.0))
        else:  # and once more by hand
            for p in model.parameters():
                p.grad /= scaler.get_scale()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        return [p.grad.clone() for p in model.parameters()]

    for how in ("unscale_ again", "a second optimizer", "by hand"):
        res = checks.check("accumulation.clip_accumulated", lambda *a, h=how: twice(*a, how=h))
        assert not res.passed, how


def test_right_order_passes() -> None:
    assert checks.check("accumulation.clip_accumulated", _clip).passed


def test_zero_grad_inside_the_loop_is_rejected() -> None:
    def only_last(model, x, y, mb):
        for xb, yb in _chunks(x, y, mb):
            model.zero_grad()  # throws away what the earlier micro-batches added
            (F.cross_entropy(model(xb), yb) * len(xb) / len(x)).backward()
        return [p.grad.clone() for p in model.parameters()]

    res = checks.check("accumulation.accumulate_gradients", only_last)
    assert not res.passed and "micro-batch 8" in res.message


def _clip_variant(model, x, y, mb, max_norm, scaler, *, mistake):
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    if mistake != "no_zero_grad":
        model.zero_grad()
    chunks = _chunks(x, y, mb)
    for xb, yb in chunks:
        loss = F.cross_entropy(model(xb), yb)
        if mistake == "no_division":
            pass
        elif mistake == "divide_by_k":
            loss = loss / len(chunks)
        else:
            loss = loss * len(xb) / len(x)
        scaler.scale(loss).backward()
        if mistake == "clip_each":
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm * scaler.get_scale())
    scaler.unscale_(opt)
    if mistake == "clip_value":
        torch.nn.utils.clip_grad_value_(model.parameters(), max_norm)
    elif mistake != "clip_each":
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return [p.grad.clone() for p in model.parameters()]


def test_clip_planted_mistakes_are_rejected() -> None:
    for mistake in ("no_division", "divide_by_k", "clip_each", "no_zero_grad", "clip_value"):
        res = checks.check(
            "accumulation.clip_accumulated",
            lambda *a, m=mistake: _clip_variant(*a, mistake=m),
        )
        assert not res.passed, mistake
    assert checks.check(
        "accumulation.clip_accumulated", lambda *a: _clip_variant(*a, mistake=None)
    ).passed
