"""Notebook 03, setup and part 4: teachers, the student, the transfer set and its training loop.

The teachers' outputs on the (shift-augmented) training images are computed once
(``transfer_set``), so training a student costs no teacher forward pass: ``train_student``
runs Adam on a tiny MLP with a student loss (``ce_loss``, ``kd_loss``, ``hint_kd_loss``).
``kd_loss_fn`` is the online version for labkit.train.fit (a teacher forward on every batch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from labkit.core import assets, data, models, train
from labkit.core.env import threads as threads_ctx
from labkit.core.errors import (
    check_bool,
    check_fraction,
    check_generator,
    check_int,
    check_model,
    check_nonempty,
    check_number,
    check_positive,
    check_tensor,
)
from labkit.distill.losses import distillation_loss, hint_loss

TEACHER_ASSET = "kd_teachers"
MAX_STUDENT_BYTES = 2**30  # refuse a student above 1 GiB of weights before allocating it
MAX_COPIES_BYTES = 2**30  # refuse shifted copies above 1 GiB before allocating them
MAX_EPOCHS, MAX_BATCH = 1000, 2**20  # beyond these a run takes many minutes: a typo


# ---- data augmentation ----------------------------------------------------------------


def shift_augment(
    x: torch.Tensor, generator: torch.Generator | None = None, max_shift: int = 1
) -> torch.Tensor:
    """Shift each image by a random offset of up to ``max_shift`` pixels in x and y.

    x (N, 1, H, W) -> same shape: image i takes shifted copy (r, c) of shifted_copies, r and c
    drawn uniformly from 0..2s. Uncovered borders get x.min(), the digits' background.
    Used by kd_loss_fn (this module).
    """
    _check_shift_augment(x, generator, max_shift)
    copies = shifted_copies(x, max_shift)  # ((2s+1)^2 N, 1, H, W)
    n, side = len(x), 2 * max_shift + 1
    shifts = torch.randint(0, side, (n, 2), generator=generator)  # (N, 2): row, column offset
    k = shifts[:, 0] * side + shifts[:, 1]  # (N,): which copy each image takes
    return copies[k * n + torch.arange(n)]  # (N, 1, H, W)


def shifted_copies(x: torch.Tensor, max_shift: int = 1) -> torch.Tensor:
    """Every shift of every image: x (N, 1, H, W) -> ((2s+1)^2 * N, 1, H, W), s = max_shift.

    Copy k of image i is row k * N + i (shift-major); copy (2s+1)^2 // 2 is the unshifted x.
    Used by transfer_set (this module).
    """
    _check_images(x, max_shift)
    h, w, s = x.shape[-2], x.shape[-1], max_shift
    pad = F.pad(x, (s,) * 4, value=float(x.min()))  # (N, C, H + 2s, W + 2s)
    shifts = [(i, j) for i in range(2 * s + 1) for j in range(2 * s + 1)]
    return torch.cat([pad[..., i : i + h, j : j + w] for i, j in shifts])  # ((2s+1)^2 N, C, H, W)


# ---- models as body + head: features for hint distillation ------------------------------


def split_head(model: nn.Sequential) -> tuple[nn.Sequential, nn.Linear]:
    """(body, head) of a Sequential whose last layer is the classifier Linear.

    Used by feature_dim, transfer_set and hint_kd_loss (this module).
    """
    _check_split_head(model)
    return model[:-1], model[-1]


def feature_dim(model: nn.Sequential) -> int:
    """Size of the feature vector that enters the classifier Linear.

    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    return split_head(model)[1].in_features


# ---- teachers ---------------------------------------------------------------------------


@torch.no_grad()
def ensemble_logits(teachers: nn.Module | Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Multi-teacher target: the mean of the teachers' logits, (N, C). Teachers run in eval.

    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    _check_ensemble(teachers, x)
    outs = [t.eval()(x) for t in _teachers(teachers)]  # K x (N, C)
    return torch.stack(outs).mean(0)  # (N, C)


def teacher_models() -> list[nn.Sequential]:
    """The three teacher architectures of notebook 03 (untrained): two CNNs and a wide MLP.

    Used by train_teachers and the kd_teachers checkpoint (labkit.assets).
    """
    return [
        models.cnn(width=32, depth=3),
        models.cnn(width=24, depth=4),
        models.mlp(width=256, depth=2, dropout=0.1),
    ]


def train_teachers(epochs: int = 30, seed: int = 0) -> tuple[nn.ModuleList, dict[str, str]]:
    """Train the three teachers on all 1,077 labelled training digits (with shift augmentation).

    Returns (the teachers as one nn.ModuleList, metadata with their test accuracies);
    labkit.assets saves the pair as data/kd_teachers.safetensors
    (``python -m labkit.course.train_assets kd_teachers``). Used by load_teachers(retrain=True).
    """
    loaders = data.digits_loaders(batch_size=64, seed=seed)
    teachers = teacher_models()
    for i, t in enumerate(teachers):
        torch.manual_seed(seed + i)
        loss_fn = _augmented_ce(seed + i)
        train.fit(t, loaders.train, epochs=epochs, lr=3e-3, loss_fn=loss_fn, weight_decay=1e-4)
    accs = [train.evaluate(t, loaders.test)["accuracy"] for t in teachers]
    meta = {"test_accuracy": ",".join(f"{a:.4f}" for a in accs), "epochs": str(epochs)}
    return nn.ModuleList(teachers), meta


assets.register(
    TEACHER_ASSET, build=lambda meta: nn.ModuleList(teacher_models()), train=train_teachers
)


def load_teachers(retrain: bool = False) -> tuple[list[nn.Sequential], dict[str, str]]:
    """The trained teachers of data/kd_teachers.safetensors and its metadata (labkit.assets.load).

    retrain=True (or a missing file) trains them again first. Returned in eval mode with
    requires_grad off: a teacher is only ever read.
    Taught in notebooks/03_knowledge_distillation.ipynb, "Setup".
    """
    _check_retrain(retrain)
    group, meta = assets.load(TEACHER_ASSET, retrain=retrain)
    return list(group.requires_grad_(False)), meta  # type: ignore[return-value]


def kd_loss_fn(
    teachers: nn.Module | Sequence[nn.Module],
    T: float = 4.0,
    alpha: float = 0.9,
    seed: int = 0,
    augment: bool = True,
) -> train.LossFn:
    """distillation_loss on augmented batches for train.fit; several teachers -> mean logits.

    The online version of kd_loss: the teachers run on every (shifted) batch.
    Used by distill_student and prune_and_finetune (labkit/pipeline/lesson.py).
    """
    _check_kd_loss_fn(teachers, T, alpha, seed)
    group, gen = _teachers(teachers), torch.Generator().manual_seed(seed)

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = shift_augment(x, gen) if augment else x  # (B, 1, H, W)
        return distillation_loss(model(x), ensemble_logits(group, x), y, T, alpha)

    return loss_fn


# ---- the experiment of notebook 03: a precomputed transfer set ---------------------------


class _TransferSetFields(NamedTuple):
    x: torch.Tensor
    y: torch.Tensor
    teacher_logits: torch.Tensor | None = None
    teacher_features: torch.Tensor | None = None


class TransferSet(_TransferSetFields):
    """Training tensors with the teacher's outputs computed once (made by transfer_set).

    x (M, 1, H, W), y (M,) int64, teacher_logits (M, C) or None, teacher_features (M, d_t)
    or None (the teacher's features entering its classifier, for hint distillation).
    """

    __slots__ = ()

    def __new__(
        cls,
        x: torch.Tensor,
        y: torch.Tensor,
        teacher_logits: torch.Tensor | None = None,
        teacher_features: torch.Tensor | None = None,
    ) -> TransferSet:
        _check_rows(x, y, teacher_logits, teacher_features)  # one row per example in each
        return super().__new__(cls, x, y, teacher_logits, teacher_features)


@torch.no_grad()
def transfer_set(
    x: torch.Tensor,
    y: torch.Tensor,
    teachers: nn.Module | Sequence[nn.Module] = (),
    *,
    max_shift: int = 1,
    features: bool = False,
) -> TransferSet:
    """Augment (every shift of every image) and label the copies with the teachers' outputs.

    x (N, 1, H, W), y (N,) -> a TransferSet of M = (2s+1)^2 N rows. Several teachers: their
    mean logits (multi-teacher averaging). features=True also stores the first teacher's
    features (split_head). Teachers run in eval mode, without gradients.
    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    _check_transfer_set(x, y, teachers, max_shift, features)
    group = _teachers(teachers)
    xa = shifted_copies(x, max_shift)  # (M, 1, H, W), M = (2s+1)^2 N
    ya = y.repeat(len(xa) // len(x))  # (M,): copy k of image i is row k N + i
    if not group:
        return TransferSet(xa, ya)
    logits = ensemble_logits(group, xa)  # (M, C); the teachers are now in eval mode
    feats = split_head(group[0])[0](xa) if features else None  # (M, d_t)
    return TransferSet(xa, ya, logits, feats)


def take(ts: TransferSet, idx: torch.Tensor) -> TransferSet:
    """The rows ``idx`` of every tensor of a TransferSet (None stays None).

    Used by train_student (this module).
    """
    _check_take(ts, idx)
    return TransferSet(*(t[idx] if t is not None else None for t in ts))


# A student loss: (student, batch, progress in [0, 1)) -> scalar loss.
StudentLoss = Callable[[nn.Module, TransferSet, float], torch.Tensor]
Schedule = float | Callable[[float], float]


def ce_loss() -> StudentLoss:
    """Plain cross-entropy on the labels (the 'student alone' baseline).

    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """

    def loss(student: nn.Module, b: TransferSet, progress: float) -> torch.Tensor:
        return F.cross_entropy(student(b.x), b.y)

    return loss


def kd_loss(T: float = 4.0, alpha: Schedule = 0.9) -> StudentLoss:
    """distillation_loss against the stored teacher logits.

    alpha is a number or a schedule alpha(progress), progress = step / total steps in [0, 1).
    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    _check_kd_loss(T, alpha)

    def loss(student: nn.Module, b: TransferSet, progress: float) -> torch.Tensor:
        a = alpha(progress) if callable(alpha) else alpha
        return distillation_loss(student(b.x), b.teacher_logits, b.y, T, a)  # type: ignore[arg-type]

    return loss


def hint_kd_loss(
    regressor: nn.Module, T: float = 4.0, alpha: float = 0.9, beta: float = 1.0
) -> StudentLoss:
    """distillation_loss + beta * hint_loss(student features, teacher features).

    The student must be a Sequential ending in its classifier Linear (split_head); pass the
    regressor to train_student(extra=...) so it is trained too.
    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    _check_hint_kd_loss(regressor, T, alpha, beta)

    def loss(student: nn.Module, b: TransferSet, progress: float) -> torch.Tensor:
        body, head = split_head(student)  # type: ignore[arg-type]
        f_s = body(b.x)  # (B, d_s)
        kd = distillation_loss(head(f_s), b.teacher_logits, b.y, T, alpha)  # type: ignore[arg-type]
        return kd + beta * hint_loss(f_s, b.teacher_features, regressor)  # type: ignore[arg-type]

    return loss


def linear_schedule(start: float, end: float) -> Callable[[float], float]:
    """alpha(progress) going linearly from ``start`` (progress 0) to ``end`` (progress 1).

    Taught in notebooks/03_knowledge_distillation.ipynb, "5.2 $\\alpha$ schedules".
    """
    _check_schedule(start, end)
    return lambda progress: start + (end - start) * progress


def student_model(width: int = 32) -> nn.Sequential:
    """The small student: an MLP with one hidden layer of ``width`` units on (N, 1, 8, 8) input.

    Parameters: 64 * width + width + width * 10 + 10 (2,410 at width 32).
    Taught in notebooks/03_knowledge_distillation.ipynb, "Setup".
    """
    _check_width(width)
    return models.mlp(width=width, depth=1)


def train_student(
    ts: TransferSet,
    loss: StudentLoss,
    *,
    seed: int,
    epochs: int = 40,
    batch_size: int = 256,
    lr: float = 2e-2,
    width: int = 32,
    extra: nn.Module | None = None,
    threads: int = 1,
) -> nn.Sequential:
    """Train a fresh student (init and batch order from ``seed``) on a TransferSet with Adam.

    ``extra`` modules (a hint regressor) are optimised together with the student. Runs with
    ``threads`` torch threads (1 by default: the student's matmuls are so small that a
    second thread only adds synchronisation, which costs 5-10x on a busy CPU). Returns the
    student in eval mode.
    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    _check_train_student(ts, loss, seed, epochs, batch_size, lr, width, extra, threads)
    torch.manual_seed(seed)
    student = student_model(width)
    params = list(student.parameters()) + (list(extra.parameters()) if extra is not None else [])
    opt = torch.optim.Adam(params, lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    m = len(ts.y)
    steps_per_epoch = math.ceil(m / batch_size)
    total = epochs * steps_per_epoch
    student.train()
    with threads_ctx(threads):
        for epoch in range(epochs):
            order = torch.randperm(m, generator=gen)  # (M,)
            for i in range(steps_per_epoch):
                batch = take(ts, order[i * batch_size : (i + 1) * batch_size])
                value = loss(student, batch, (epoch * steps_per_epoch + i) / total)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
    return student.eval()


def _teachers(teachers: object) -> list[object]:
    """One teacher or a sequence of them, as a list (anything else: a list of it, to check)."""
    single = (nn.Module, str, bytes, dict, torch.Tensor)
    many = isinstance(teachers, Iterable) and not isinstance(teachers, single)
    return list(teachers) if many else [teachers]  # type: ignore[arg-type]


def _augmented_ce(seed: int = 0) -> train.LossFn:
    """Cross-entropy on shift-augmented batches (how the teachers are trained)."""
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(shift_augment(x, gen)), y)

    return loss_fn


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_images(x: object, max_shift: object) -> None:
    t = check_tensor(x, "x", ndim=4)
    check_nonempty(t, "x")
    s = check_int(max_shift, "max_shift", low=0, high=max(t.shape[-2:]))
    n_bytes = (2 * s + 1) ** 2 * t.numel() * t.element_size()
    if n_bytes > MAX_COPIES_BYTES:
        raise ValueError(
            f"max_shift={s} makes {(2 * s + 1) ** 2} copies of x: {n_bytes / 2**30:.1f} GiB "
            f"(limit {MAX_COPIES_BYTES / 2**30:.0f} GiB); use max_shift=1 or fewer images."
        )


def _check_split_head(model: object, name: str = "model") -> None:
    if (
        not isinstance(model, nn.Sequential)
        or not len(model)
        or not isinstance(model[-1], nn.Linear)
    ):
        last = (
            f" ending in {type(model[-1]).__name__}"
            if isinstance(model, nn.Sequential) and len(model)
            else ""
        )
        raise ValueError(
            f"{name} must be an nn.Sequential ending in nn.Linear (labkit.models.cnn/mlp) to "
            f"split it into body and head, got {type(model).__name__}{last}."
        )


def _check_shift_augment(x: object, generator: object, max_shift: object) -> None:
    check_generator(generator)
    _check_images(x, max_shift)


def _check_retrain(retrain: object) -> None:
    why = "True trains the teachers again (minutes) and overwrites data/kd_teachers.safetensors"
    check_bool(retrain, "retrain", why)


def _check_kd_loss_fn(teachers: object, T: object, alpha: object, seed: object) -> None:
    _check_teacher_list(teachers)
    check_positive(T, "T (temperature)")
    check_fraction(alpha, "alpha", include_one=True)
    check_int(seed, "seed")


def _check_rows(x: object, y: object, logits: object, features: object) -> None:
    t = check_tensor(x, "x", floating=False)
    if t.ndim == 0:
        raise ValueError("x must hold one row per image, got a 0-dim tensor.")
    for name, v in (("y", y), ("teacher_logits", logits), ("teacher_features", features)):
        if v is None and name != "y":
            continue
        if not isinstance(v, torch.Tensor) or v.ndim == 0 or len(v) != len(t):
            got = f"shape {tuple(v.shape)}" if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(
                f"{name} must be a tensor with one row per image of x ({len(t)} rows), got "
                f"{got}; build the set with distill.transfer_set(x, y, teacher)."
            )


def _check_take(ts: object, idx: object) -> None:
    if not isinstance(ts, TransferSet):
        raise ValueError(
            f"ts must be a TransferSet, got {type(ts).__name__}; build it with "
            "distill.transfer_set(x, y, teacher)."
        )
    try:
        k = torch.as_tensor(idx)  # a tensor or a list of row indices
    except (TypeError, ValueError, RuntimeError):
        k = None
    ok = k is not None and k.ndim == 1 and not k.is_floating_point() and k.dtype != torch.bool
    if not ok or (k.numel() and (int(k.min()) < 0 or int(k.max()) >= len(ts.y))):  # type: ignore[union-attr]
        raise ValueError(
            f"idx must be a 1-D tensor (or list) of row indices in [0, {len(ts.y)}), got {idx!r}."
        )


def _check_student_loss_fn(loss: object) -> None:
    factory = getattr(loss, "__module__", "").startswith(
        "labkit.distill"
    ) and "<locals>" not in getattr(
        loss, "__qualname__", "<locals>"
    )  # distill.kd_loss itself, not the loss distill.kd_loss(T, alpha) builds
    if factory:
        raise ValueError(
            f"loss is the factory {loss.__name__} itself: call it to build the student loss, "  # type: ignore[union-attr]
            f"e.g. loss=distill.{loss.__name__}(...)."  # type: ignore[union-attr]
        )
    if not callable(loss) or isinstance(loss, nn.Module):
        raise ValueError(
            f"loss must be a student loss such as distill.kd_loss(T, alpha), got {loss!r}."
        )


def _check_teacher_list(teachers: object, *, allow_none: bool = False) -> None:
    group = _teachers(teachers)
    if not group and not allow_none:
        raise ValueError("teachers is empty: ensemble_logits needs at least one teacher.")
    for i, t in enumerate(group):
        check_model(t, f"teachers[{i}]")


def _check_ensemble(teachers: object, x: object) -> None:
    _check_teacher_list(teachers)
    check_nonempty(check_tensor(x, "x"), "x")


def _check_kd_loss(T: object, alpha: object) -> None:
    check_positive(T, "T (temperature)")
    if not callable(alpha):
        check_fraction(alpha, "alpha", include_one=True)


def _check_hint_kd_loss(regressor: object, T: object, alpha: object, beta: object) -> None:
    check_model(regressor, "regressor")
    _check_kd_loss(T, alpha)
    check_number(beta, "beta", low=0)


def _check_transfer_set(
    x: torch.Tensor, y: object, teachers: object, max_shift: object, features: object
) -> None:
    _check_images(x, max_shift)
    _check_labels(x, y)
    _check_teacher_list(teachers, allow_none=True)
    group = _teachers(teachers)
    if features and not group:
        raise ValueError("features=True needs a teacher.")
    if features:
        _check_split_head(group[0], "teachers[0]")


def _check_labels(x: torch.Tensor, y: object) -> None:
    labels = check_tensor(y, "y", floating=False, ndim=1)
    if len(x) != len(labels):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(labels)}.")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(
            f"y must hold class indices (int64), got dtype {labels.dtype}; use y.long()."
        )


def _check_schedule(start: object, end: object) -> None:
    check_fraction(start, "start", include_one=True)
    check_fraction(end, "end", include_one=True)


def _check_width(width: object, name: str = "width") -> None:
    w = check_int(width, name, low=1)  # fractional widths too
    n_bytes = (64 + 1 + 10) * w * 4
    if n_bytes > MAX_STUDENT_BYTES:
        raise ValueError(
            f"{name}={w:,} needs {n_bytes / 2**30:.1f} GiB of weights (limit "
            f"{MAX_STUDENT_BYTES / 2**30:.0f} GiB); the course's student uses width 32."
        )


def _check_train_student(
    ts: object,
    loss: object,
    seed: object,
    epochs: object,
    batch_size: object,
    lr: object,
    width: object,
    extra: object,
    threads: object,
) -> None:
    if not isinstance(ts, TransferSet):
        raise ValueError(
            f"ts must be a TransferSet, got {type(ts).__name__}; build it with "
            "distill.transfer_set(x, y, teacher)."
        )
    if len(ts.y) == 0:
        raise ValueError("the transfer set is empty: build it from at least one image.")
    _check_student_loss_fn(loss)
    check_int(seed, "seed")
    check_int(epochs, "epochs", low=1, high=MAX_EPOCHS)
    check_int(batch_size, "batch_size", low=1, high=MAX_BATCH)
    check_positive(lr, "lr (learning rate)")
    _check_width(width)
    if extra is not None:
        check_model(extra, "extra")
    check_int(threads, "threads", low=1, high=256)
