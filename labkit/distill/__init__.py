"""Knowledge distillation: a small student learns from a big teacher's softened outputs.

Softened probabilities at temperature T (logits z of shape (N, C)):

    p_i(T) = exp(z_i / T) / sum_j exp(z_j / T)

Distillation loss (Hinton et al., 2015), student logits s, teacher logits t, labels y:

    L = (1 - alpha) * CE(s, y) + alpha * T^2 * KL(p_t(T) || p_s(T))

KL is computed from log-softmax (numerically stable) and averaged over the batch
("batchmean": sum over classes, mean over examples). The T^2 factor keeps the soft
gradient's size independent of T: d KL / d s is (p_s(T) - p_t(T)) / (N T), and p_s - p_t
itself shrinks like 1/T, so without T^2 the soft term fades as 1/T^2.

Also here: feature ("hint", FitNets) distillation on the features entering the last
Linear layer, multi-teacher averaging, born-again self-distillation, shift augmentation
for 8x8 digits, and the fast student-training loop of notebook 03. The teachers' outputs
on the (augmented) training images are computed once (``transfer_set``), so training a
student costs no teacher forward passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from labkit import assets, data, models, train
from labkit.core.env import threads as threads_ctx
from labkit.core.errors import check_fraction, check_positive, check_tensor
from labkit.core.train import accuracy as accuracy  # re-export: the one accuracy of the course

TEACHER_ASSET = "kd_teachers"
MAX_STUDENT_BYTES = 2**30  # refuse a student above 1 GiB of weights before allocating it


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    check_tensor(student_logits, "student_logits", ndim=2)
    check_tensor(teacher_logits, "teacher_logits", ndim=2)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_logits "
            f"{tuple(teacher_logits.shape)} must have the same shape (N, C)."
        )


def softmax_t(logits: torch.Tensor, T: float) -> torch.Tensor:
    """Softened probabilities softmax(logits / T) over the last dimension; same shape.

    Taught in notebooks/03_knowledge_distillation.ipynb, "1. Soft targets and the temperature".
    """
    check_tensor(logits, "logits")
    check_positive(T, "T (temperature)")
    return torch.softmax(logits / T, dim=-1)


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy -sum p log2 p over the last dimension (bits); shape probs.shape[:-1].

    Zero probabilities contribute 0 (the limit of p log p); the result is >= 0.
    Taught in notebooks/03_knowledge_distillation.ipynb, "1. Soft targets and the temperature".
    """
    check_tensor(probs, "probs")
    p = probs.clamp_min(0)
    h = -(p * torch.log2(p.clamp_min(1e-30))).sum(-1)
    return h.clamp_min(0) + 0.0  # + 0.0 turns -0.0 into 0.0 (prints as 0.00, not -0.00)


def soft_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float, scale_t2: bool = True
) -> torch.Tensor:
    """T^2 * KL(p_t(T) || p_s(T)), batchmean; without the T^2 factor if scale_t2=False.

    Shapes: both (N, C) -> scalar. The teacher is detached (no gradient flows into it).
    Taught in notebooks/03_knowledge_distillation.ipynb, "2. The distillation loss".
    """
    _check_logits(student_logits, teacher_logits)
    T = check_positive(T, "T (temperature)")
    log_p_s = F.log_softmax(student_logits / T, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach() / T, dim=-1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return kl * T * T if scale_t2 else kl


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    T: float,
    alpha: float,
) -> torch.Tensor:
    """(1 - alpha) * CE(student, labels) + alpha * T^2 * KL(p_t(T) || p_s(T)).

    student_logits, teacher_logits: (N, C) float; labels: (N,) int64 in [0, C); T > 0;
    alpha in [0, 1] (alpha = 0: plain cross-entropy, alpha = 1: soft targets only).
    Returns a scalar. KL uses log-softmax of both and reduction 'batchmean'; the teacher
    is detached.
    Taught in notebooks/03_knowledge_distillation.ipynb, "2. The distillation loss".
    """
    _check_logits(student_logits, teacher_logits)
    check_tensor(labels, "labels", floating=False, ndim=1)
    if labels.shape[0] != student_logits.shape[0]:
        raise ValueError(
            f"labels has {labels.shape[0]} entries but the logits have "
            f"{student_logits.shape[0]} rows."
        )
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be class indices (int64), got dtype {labels.dtype}.")
    n_classes = student_logits.shape[1]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels must be class indices in [0, {n_classes}).")
    alpha = check_fraction(alpha, "alpha", include_one=True)
    hard = F.cross_entropy(student_logits, labels)
    return (1 - alpha) * hard + alpha * soft_loss(student_logits, teacher_logits, T)


def soft_grad_norm(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float, scale_t2: bool = True
) -> float:
    """L2 norm of d soft_loss / d student_logits (the 1/N of batchmean is inside the loss).

    Taught in notebooks/03_knowledge_distillation.ipynb, "3. Why $T^2$: the soft gradient, measured".
    """
    s = student_logits.detach().clone().requires_grad_(True)
    soft_loss(s, teacher_logits, T, scale_t2).backward()
    assert s.grad is not None
    return float(s.grad.norm())


# ---- data augmentation ----------------------------------------------------------------


def shift_augment(
    x: torch.Tensor, generator: torch.Generator | None = None, max_shift: int = 1
) -> torch.Tensor:
    """Shift each image by a random offset of up to ``max_shift`` pixels in x and y.

    x (N, 1, H, W) -> same shape. The background value of normalised digits is x.min(),
    so that is what fills the uncovered border.
    Taught in notebooks/03_knowledge_distillation.ipynb, "Setup".
    """
    check_tensor(x, "x", ndim=4)
    n = x.shape[0]
    fill = float(x.min())
    pad = F.pad(x, (max_shift,) * 4, value=fill)
    shifts = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    h, w = x.shape[-2:]
    rows = torch.arange(h)[None, :] + shifts[:, :1]  # (N, H)
    cols = torch.arange(w)[None, :] + shifts[:, 1:]  # (N, W)
    idx_n = torch.arange(n)[:, None, None]
    out = pad[idx_n, 0, rows[:, :, None], cols[:, None, :]]  # (N, H, W)
    return out.unsqueeze(1)


def shifted_copies(x: torch.Tensor, max_shift: int = 1) -> torch.Tensor:
    """Every shift of every image: x (N, 1, H, W) -> ((2s+1)^2 * N, 1, H, W), s = max_shift.

    Copy k of image i is row k * N + i (shift-major); copy (2s+1)^2 // 2 is the unshifted x.
    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    check_tensor(x, "x", ndim=4)
    if not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be an integer >= 0, got {max_shift!r}.")
    h, w, s = x.shape[-2], x.shape[-1], max_shift
    pad = F.pad(x, (s,) * 4, value=float(x.min()))
    return torch.cat(
        [pad[..., i : i + h, j : j + w] for i in range(2 * s + 1) for j in range(2 * s + 1)]
    )


# ---- models as body + head: features for hint distillation ------------------------------


def split_head(model: nn.Sequential) -> tuple[nn.Sequential, nn.Linear]:
    """(body, head) of a Sequential whose last layer is the classifier Linear.

    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    if not isinstance(model, nn.Sequential) or not isinstance(model[-1], nn.Linear):
        raise ValueError(
            "split_head needs an nn.Sequential ending in nn.Linear (labkit.models.cnn/mlp)."
        )
    return model[:-1], model[-1]


def feature_dim(model: nn.Sequential) -> int:
    """Size of the feature vector that enters the classifier Linear.

    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    return split_head(model)[1].in_features


def hint_loss(
    student_features: torch.Tensor, teacher_features: torch.Tensor, regressor: nn.Module
) -> torch.Tensor:
    """FitNets hint loss: mean((regressor(f_s) - f_t)^2); f_s (N, d_s), f_t (N, d_t) -> scalar.

    The regressor maps the student's d_s features to the teacher's d_t (e.g. nn.Linear);
    it is trained with the student. The teacher features are detached.
    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    check_tensor(student_features, "student_features", ndim=2)
    check_tensor(teacher_features, "teacher_features", ndim=2)
    mapped = regressor(student_features)
    if mapped.shape != teacher_features.shape:
        raise ValueError(
            f"regressor maps the student features to {tuple(mapped.shape)} but the teacher "
            f"features are {tuple(teacher_features.shape)}; use nn.Linear(d_s, d_t)."
        )
    return F.mse_loss(mapped, teacher_features.detach())


# ---- teachers ---------------------------------------------------------------------------


@torch.no_grad()
def ensemble_logits(teachers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Multi-teacher target: the mean of the teachers' logits, (N, C). Teachers run in eval.

    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    if not teachers:
        raise ValueError("ensemble_logits needs at least one teacher.")
    outs = []
    for t in teachers:
        t.eval()
        outs.append(t(x))
    return torch.stack(outs).mean(0)


def teacher_models() -> list[nn.Sequential]:
    """The three teacher architectures of notebook 03 (untrained): two CNNs and a wide MLP.

    Taught in notebooks/03_knowledge_distillation.ipynb, "Setup".
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
    (``python -m labkit.course.train_assets kd_teachers``).
    Taught in notebooks/03_knowledge_distillation.ipynb, "Setup".
    """
    loaders = data.digits_loaders(batch_size=64, seed=seed)
    teachers = teacher_models()
    for i, t in enumerate(teachers):
        torch.manual_seed(seed + i)
        train.fit(
            t,
            loaders.train,
            epochs=epochs,
            lr=3e-3,
            loss_fn=augmented_ce(seed + i),
            weight_decay=1e-4,
        )
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
    group, meta = assets.load(TEACHER_ASSET, retrain=retrain)
    teachers = list(group.requires_grad_(False))
    return teachers, meta  # type: ignore[return-value]


# ---- online losses for labkit.train.fit (teacher forward on every batch) ---------------


def augmented_ce(seed: int = 0, augment: bool = True) -> train.LossFn:
    """Cross-entropy on shift-augmented batches (how the teachers are trained).

    Taught in notebooks/03_knowledge_distillation.ipynb, "Setup".
    """
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if augment:
            x = shift_augment(x, gen)
        return F.cross_entropy(model(x), y)

    return loss_fn


def kd_loss_fn(
    teachers: nn.Module | Sequence[nn.Module],
    T: float = 4.0,
    alpha: float = 0.9,
    seed: int = 0,
    augment: bool = True,
) -> train.LossFn:
    """distillation_loss on augmented batches for train.fit; several teachers -> mean logits.

    Taught in notebooks/13_capstone_pipeline.ipynb, "2. Distil a narrower student".
    """
    group = [teachers] if isinstance(teachers, nn.Module) else list(teachers)
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if augment:
            x = shift_augment(x, gen)
        return distillation_loss(model(x), ensemble_logits(group, x), y, T, alpha)

    return loss_fn


# ---- the experiment of notebook 03: a precomputed transfer set ---------------------------


class TransferSet(NamedTuple):
    """Training tensors with the teacher's outputs computed once.

    x (M, 1, H, W), y (M,) int64, teacher_logits (M, C) or None, teacher_features (M, d_t)
    or None (the teacher's features entering its classifier, for hint distillation).
    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """

    x: torch.Tensor
    y: torch.Tensor
    teacher_logits: torch.Tensor | None = None
    teacher_features: torch.Tensor | None = None


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
    check_tensor(x, "x", ndim=4)
    check_tensor(y, "y", floating=False, ndim=1)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}.")
    group = [teachers] if isinstance(teachers, nn.Module) else list(teachers)
    xa = shifted_copies(x, max_shift)
    ya = y.repeat(len(xa) // len(x))
    if not group:
        if features:
            raise ValueError("features=True needs a teacher.")
        return TransferSet(xa, ya)
    logits = ensemble_logits(group, xa)
    feats = None
    if features:
        body, _ = split_head(group[0])
        feats = body(xa)
    return TransferSet(xa, ya, logits, feats)


def take(ts: TransferSet, idx: torch.Tensor) -> TransferSet:
    """The rows ``idx`` of every tensor of a TransferSet (None stays None).

    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
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
    check_positive(T, "T (temperature)")

    def loss(student: nn.Module, b: TransferSet, progress: float) -> torch.Tensor:
        if b.teacher_logits is None:
            raise ValueError("kd_loss needs teacher_logits: build the set with a teacher.")
        a = alpha(progress) if callable(alpha) else alpha
        return distillation_loss(student(b.x), b.teacher_logits, b.y, T, a)

    return loss


def hint_kd_loss(
    regressor: nn.Module, T: float = 4.0, alpha: float = 0.9, beta: float = 1.0
) -> StudentLoss:
    """distillation_loss + beta * hint_loss(student features, teacher features).

    The student must be a Sequential ending in its classifier Linear (split_head); pass the
    regressor to train_student(extra=...) so it is trained too.
    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """

    def loss(student: nn.Module, b: TransferSet, progress: float) -> torch.Tensor:
        if b.teacher_logits is None or b.teacher_features is None:
            raise ValueError("hint_kd_loss needs transfer_set(..., features=True).")
        body, head = split_head(student)  # type: ignore[arg-type]
        f_s = body(b.x)
        kd = distillation_loss(head(f_s), b.teacher_logits, b.y, T, alpha)
        return kd + beta * hint_loss(f_s, b.teacher_features, regressor)

    return loss


def linear_schedule(start: float, end: float) -> Callable[[float], float]:
    """alpha(progress) going linearly from ``start`` (progress 0) to ``end`` (progress 1).

    Taught in notebooks/03_knowledge_distillation.ipynb, "5.2 $\\alpha$ schedules".
    """
    check_fraction(start, "start", include_one=True)
    check_fraction(end, "end", include_one=True)
    return lambda progress: start + (end - start) * progress


def student_model(width: int = 32) -> nn.Sequential:
    """The small student: an MLP with one hidden layer of ``width`` units on (N, 1, 8, 8) input.

    Parameters: 64 * width + width + width * 10 + 10 (2,410 at width 32).
    Taught in notebooks/03_knowledge_distillation.ipynb, "Setup".
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}.")
    n_bytes = (64 + 1 + 10) * width * 4
    if n_bytes > MAX_STUDENT_BYTES:
        raise ValueError(
            f"width={width:,} needs {n_bytes / 2**30:.1f} GiB of weights (limit "
            f"{MAX_STUDENT_BYTES / 2**30:.0f} GiB); the course's student uses width 32."
        )
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
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}.")
    check_positive(lr, "lr (learning rate)")
    if len(ts.y) == 0:
        raise ValueError("the transfer set is empty: build it from at least one image.")
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
            order = torch.randperm(m, generator=gen)
            for i in range(steps_per_epoch):
                batch = take(ts, order[i * batch_size : (i + 1) * batch_size])
                value = loss(student, batch, (epoch * steps_per_epoch + i) / total)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
    return student.eval()


@torch.no_grad()
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n-1); std is 0 for a single value.

    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    vals = list(values)
    if not vals:
        raise ValueError("mean_std needs at least one value.")
    m = sum(vals) / len(vals)
    if len(vals) == 1:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


class Difference(NamedTuple):
    """mean(a) - mean(b) with its standard error and whether it is clear of the noise.

    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """

    diff: float
    se: float
    t: float
    df: float
    clear: bool
    paired: bool

    def verdict(self, a: str, b: str, unit: str = "points") -> str:
        """'a is 6.8 points above b (clear: t = 7.1, 4 dof)' or '... within noise ...'."""
        side = "above" if self.diff >= 0 else "below"
        how = "paired by seed, " if self.paired else ""
        stat = f"{how}t = {self.t:.1f}, {self.df:.0f} dof"
        if self.clear:
            return f"{a} is {abs(self.diff):.1f} {unit} {side} {b} (clear: {stat})"
        shown = round(self.diff, 1) + 0.0  # + 0.0: -0.0 prints as +0.0
        return f"{a} vs {b}: {shown:+.1f} {unit}, within noise ({stat})"


def difference(
    a: Sequence[float], b: Sequence[float], *, paired: bool = False, level: float = 0.95
) -> Difference:
    """Is mean(a) - mean(b) more than seed noise? A two-sided t-test at ``level``.

    Unpaired (Welch): se = sqrt(s_a^2 / n_a + s_b^2 / n_b), dof by Welch-Satterthwaite.
    Paired (same seeds, same batch order): d_i = a_i - b_i, se = s_d / sqrt(n), dof = n - 1.
    clear = |diff| / se > t_{(1 + level) / 2, dof}. With 3 seeds only a large gap is clear.
    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    from scipy import stats  # scikit-learn's dependency, always installed with the course

    xa, xb = [float(v) for v in a], [float(v) for v in b]
    if len(xa) < 2 or len(xb) < 2:
        raise ValueError("difference needs at least 2 values (seeds) on each side.")
    check_fraction(level, "level")
    if paired:
        if len(xa) != len(xb):
            raise ValueError(
                f"paired=True needs as many values in a as in b ({len(xa)} vs {len(xb)})."
            )
        d = [x - y for x, y in zip(xa, xb, strict=True)]
        diff, sd = mean_std(d)
        se, df = sd / math.sqrt(len(d)), float(len(d) - 1)
    else:
        (ma, sa), (mb, sb) = mean_std(xa), mean_std(xb)
        va, vb = sa**2 / len(xa), sb**2 / len(xb)
        diff, se = ma - mb, math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1)) if se else 1.0
    if se == 0:
        return Difference(
            diff, 0.0, math.copysign(math.inf, diff) if diff else 0.0, df, diff != 0, paired
        )
    t = diff / se
    crit = float(stats.t.ppf((1 + level) / 2, df))
    return Difference(diff, se, t, df, abs(t) > crit, paired)
