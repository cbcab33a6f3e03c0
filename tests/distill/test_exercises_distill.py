"""Planted wrong answers to notebook 03's exercises must be rejected."""

import pytest
import torch
import torch.nn.functional as F

from labkit import checks
from solutions.n03_knowledge_distillation import distillation_loss, softmax_t


def _kd(
    s, t, y, T, alpha, *, t2=True, reverse=False, probs=False, reduction="batchmean", swap=False
):
    """The KD loss with one planted mistake switched on."""
    t = t.detach()
    hard = F.cross_entropy(s, y)
    if probs:  # softmax where kl_div expects log-probabilities
        inp = F.softmax(s / T, dim=-1)
    else:
        inp = F.log_softmax(s / T, dim=-1)
    target = F.softmax(t / T, dim=-1)
    if reverse:  # KL(p_s || p_t)
        inp, target = F.log_softmax(t / T, dim=-1), F.softmax(s / T, dim=-1)
    soft = F.kl_div(inp, target, reduction=reduction) * (T * T if t2 else 1.0)
    a = 1 - alpha if swap else alpha
    return (1 - a) * hard + a * soft


def test_solutions_pass() -> None:
    assert checks.check("distill.softmax_t", softmax_t).passed
    assert checks.check("distill.distillation_loss", distillation_loss).passed
    assert checks.check("distill.distillation_loss", _kd).passed


def test_missing_t_squared_is_rejected() -> None:
    res = checks.check("distill.distillation_loss", lambda *a: _kd(*a, t2=False))
    assert not res.passed and "T=4" in res.message


def test_reversed_kl_is_rejected() -> None:
    assert not checks.check("distill.distillation_loss", lambda *a: _kd(*a, reverse=True)).passed


def test_softmax_instead_of_log_softmax_is_rejected() -> None:
    assert not checks.check("distill.distillation_loss", lambda *a: _kd(*a, probs=True)).passed


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
def test_mean_over_all_elements_is_rejected() -> None:
    res = checks.check("distill.distillation_loss", lambda *a: _kd(*a, reduction="mean"))
    assert not res.passed and "wrong value" in res.message


def test_sum_reduction_is_rejected() -> None:
    assert not checks.check("distill.distillation_loss", lambda *a: _kd(*a, reduction="sum")).passed


def test_alpha_the_wrong_way_round_is_rejected() -> None:
    assert not checks.check("distill.distillation_loss", lambda *a: _kd(*a, swap=True)).passed


def test_dividing_by_t_squared_is_rejected() -> None:
    def over_t2(s, t, y, T, alpha):
        soft = F.kl_div(
            F.log_softmax(s / T, -1), F.softmax(t.detach() / T, -1), reduction="batchmean"
        )
        return (1 - alpha) * F.cross_entropy(s, y) + alpha * soft / (T * T)

    assert not checks.check("distill.distillation_loss", over_t2).passed


def test_not_attempted_is_reported() -> None:
    def stub(*a):
        raise NotImplementedError

    res = checks.check("distill.distillation_loss", stub)
    assert not res.passed and not res.attempted


def _softmax(z, T, *, shift="row", divide="before", dim=-1):
    """A hand-written softmax(z / T) with one planted mistake switched on."""
    x = z / T if divide == "before" else z
    if shift == "row":
        x = x - x.max(dim=dim, keepdim=True).values
    elif shift == "global":  # one max for the whole batch
        x = x - x.max()
    elif shift == "unscaled":  # the max of z, not of z / T
        x = x - z.max(dim=-1, keepdim=True).values
    e = torch.exp(x)
    p = e / e.sum(dim=dim, keepdim=True)
    return p / T if divide == "after" else p


def test_planted_softmax_helper_is_right_when_nothing_is_planted() -> None:
    assert checks.check("distill.softmax_t", _softmax).passed


def test_softmax_without_temperature_is_rejected() -> None:
    res = checks.check("distill.softmax_t", lambda z, T: _softmax(z, 1.0))
    assert not res.passed and "T = 4" in res.message


def test_softmax_times_t_is_rejected() -> None:
    assert not checks.check("distill.softmax_t", lambda z, T: _softmax(z, 1 / T)).passed


def test_softmax_over_the_wrong_dim_is_rejected() -> None:
    res = checks.check("distill.softmax_t", lambda z, T: _softmax(z, T, dim=0))
    assert not res.passed and "batch" in res.message


def test_naive_exp_overflows_and_is_rejected() -> None:
    res = checks.check("distill.softmax_t", lambda z, T: _softmax(z, T, shift="none"))
    assert not res.passed and "large logits" in res.message and "NaN" in res.message


def test_global_max_instead_of_row_max_is_rejected() -> None:
    """Issue 19: one max for the whole batch gives NaN on [[1000, 999], [0, -1]]."""
    res = checks.check("distill.softmax_t", lambda z, T: _softmax(z, T, shift="global"))
    assert not res.passed and "[[1000, 999], [0, -1]]" in res.message and "own" in res.message


def test_max_of_the_unscaled_logits_is_rejected() -> None:
    res = checks.check("distill.softmax_t", lambda z, T: _softmax(z, T, shift="unscaled"))
    assert not res.passed and "NaN" in res.message


def test_temperature_after_the_softmax_is_rejected() -> None:
    res = checks.check("distill.softmax_t", lambda z, T: _softmax(z, T, divide="after"))
    assert not res.passed and "T = 4" in res.message


def test_temperature_after_a_stable_shift_cancels_and_is_rejected() -> None:
    def after_exp(z, T):
        e = torch.exp(z - z.max(-1, keepdim=True).values) / T  # T cancels in the ratio
        return e / e.sum(-1, keepdim=True)

    assert not checks.check("distill.softmax_t", after_exp).passed


def test_max_without_keepdim_is_rejected() -> None:
    def no_keepdim(z, T):
        x = z / T
        e = torch.exp(x - x.max(-1).values)  # (N,) broadcasts along the wrong axis
        return e / e.sum(-1)

    assert not checks.check("distill.softmax_t", no_keepdim).passed


@pytest.mark.parametrize(
    "torch_softmax",
    [
        lambda z, T: torch.softmax(z / T, dim=-1),
        lambda z, T: F.softmax(z / T, dim=-1),
        lambda z, T: (z / T).softmax(-1),
        lambda z, T: torch.exp(F.log_softmax(z / T, -1)),
        lambda z, T: torch.exp(z / T - torch.logsumexp(z / T, -1, keepdim=True)),
    ],
    ids=["torch.softmax", "F.softmax", "Tensor.softmax", "log_softmax", "logsumexp"],
)
def test_torch_doing_the_shift_is_refused(torch_softmax) -> None:
    """The one-liner passes every value check: the exercise is to write the shift."""
    res = checks.check("distill.softmax_t", torch_softmax)
    assert not res.passed and "yourself" in res.message


def test_stable_manual_softmax_passes() -> None:
    def manual(z, T):
        z = z / T
        e = torch.exp(z - z.max(-1, keepdim=True).values)
        return e / e.sum(-1, keepdim=True)

    def amax_first(z, T):  # subtract the row max of z, then divide: also stable and right
        e = torch.exp((z - z.amax(-1, keepdim=True)) / T)
        return e / e.sum(-1, keepdim=True)

    assert checks.check("distill.softmax_t", manual).passed
    assert checks.check("distill.softmax_t", amax_first).passed


def test_detached_student_is_rejected() -> None:
    """Issue 13: the right value, but no gradient reaches the student."""

    def detached(s, t, y, T, alpha):
        return distillation_loss(s.detach(), t, y, T, alpha)

    res = checks.check("distill.distillation_loss", detached)
    assert not res.passed and res.attempted and "no gradient" in res.message


def test_student_detached_in_the_soft_term_only_is_rejected() -> None:
    def half_detached(s, t, y, T, alpha):
        soft = F.kl_div(
            F.log_softmax(s.detach() / T, -1), F.softmax(t.detach() / T, -1), reduction="batchmean"
        )
        return (1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * soft

    res = checks.check("distill.distillation_loss", half_detached)
    assert not res.passed and "gradient reaching the student" in res.message


def test_teacher_not_detached_is_rejected() -> None:
    def live_teacher(s, t, y, T, alpha):
        soft = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")
        return (1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * soft

    res = checks.check("distill.distillation_loss", live_teacher)
    assert not res.passed and "teacher" in res.message


def test_temperature_on_the_student_only_is_rejected() -> None:
    def student_only(s, t, y, T, alpha):
        soft = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t.detach(), -1), reduction="batchmean")
        return (1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * soft

    assert not checks.check("distill.distillation_loss", student_only).passed


def test_in_place_division_of_the_teacher_is_rejected() -> None:
    def in_place(s, t, y, T, alpha):
        t = t.detach()
        t /= T  # changes the caller's tensor: detach() shares its storage
        soft = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t, -1), reduction="batchmean")
        return (1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * soft

    res = checks.check("distill.distillation_loss", in_place)
    assert not res.passed and "in place" in res.message


def test_softmax_in_place_division_is_rejected() -> None:
    def in_place(z, T):
        z /= T
        return _softmax(z, 1.0)

    res = checks.check("distill.softmax_t", in_place)
    assert not res.passed and "in place" in res.message


def test_log_probabilities_instead_of_probabilities_are_rejected() -> None:
    assert not checks.check("distill.softmax_t", lambda z, T: _softmax(z, T).log()).passed


def test_hints_do_not_give_the_answer_away() -> None:
    from labkit.distill.exercises import EXERCISES

    for ex in EXERCISES.values():
        assert ex.formula and ex.hint
        assert "softmax(" not in ex.hint and "kl_div(" not in ex.hint


# ---- RKD distance loss: planted mistakes learners make


def _rkd(s, t, *, normalise="mean_offdiag", loss="huber", diagonal=False):
    """rkd_distance_loss with one planted mistake switched on."""

    def psi(e):
        n = len(e)
        d = torch.cdist(e, e)
        if normalise == "none":
            return d
        if normalise == "mean_all":  # the N zeros of the diagonal counted in the mean
            return d / d.mean()
        if normalise == "max":
            return d / d.max()
        return d / (d.sum() / (n * (n - 1)))

    ps, pt = psi(s), psi(t.detach())
    keep = (
        torch.ones_like(ps, dtype=torch.bool) if diagonal else ~torch.eye(len(s), dtype=torch.bool)
    )
    fn = F.smooth_l1_loss if loss == "huber" else F.mse_loss
    return fn(ps[keep], pt[keep])


def test_rkd_solution_and_planted_correct_version_pass() -> None:
    from solutions.n03_knowledge_distillation import rkd_distance_loss

    assert checks.check("distill.rkd_distance_loss", rkd_distance_loss).passed
    assert checks.check("distill.rkd_distance_loss", _rkd).passed


def test_rkd_without_mean_normalisation_is_rejected() -> None:
    assert not checks.check(
        "distill.rkd_distance_loss", lambda s, t: _rkd(s, t, normalise="none")
    ).passed


def test_rkd_mean_including_diagonal_is_rejected() -> None:
    res = checks.check("distill.rkd_distance_loss", lambda s, t: _rkd(s, t, normalise="mean_all"))
    assert not res.passed


def test_rkd_max_normalisation_is_rejected() -> None:
    assert not checks.check(
        "distill.rkd_distance_loss", lambda s, t: _rkd(s, t, normalise="max")
    ).passed


def test_rkd_squared_error_instead_of_huber_is_rejected() -> None:
    res = checks.check("distill.rkd_distance_loss", lambda s, t: _rkd(s, t, loss="mse"))
    assert not res.passed


def test_rkd_diagonal_in_the_loss_is_rejected() -> None:
    assert not checks.check(
        "distill.rkd_distance_loss", lambda s, t: _rkd(s, t, diagonal=True)
    ).passed
