"""Knowledge distillation: a small student learns from a big teacher's softened outputs.

Softened probabilities at temperature T (logits z of shape (N, C)):

    p_i(T) = exp(z_i / T) / sum_j exp(z_j / T)

Distillation loss (Hinton et al., 2015), student logits s, teacher logits t, labels y:

    L = (1 - alpha) * CE(s, y) + alpha * T^2 * KL(p_t(T) || p_s(T))

KL is computed from log-softmax (numerically stable) and averaged over the batch
("batchmean": sum over classes, mean over examples). The T^2 factor keeps the soft
gradient's size independent of T: d KL / d s is (p_s(T) - p_t(T)) / T, and p_s - p_t
itself shrinks like 1/T, so without T^2 the soft term fades as 1/T^2.

Also here: feature ("hint", FitNets) distillation on the features entering the last
Linear layer, multi-teacher averaging, born-again self-distillation, shift augmentation
for 8x8 digits, and the train-student / train-teacher routines the notebook times.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from labkit import data, models, train
from labkit.errors import check_fraction, check_positive, check_tensor

TEACHER_ASSET = "kd_teachers"


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    check_tensor(student_logits, "student_logits", ndim=2)
    check_tensor(teacher_logits, "teacher_logits", ndim=2)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_logits "
            f"{tuple(teacher_logits.shape)} must have the same shape (N, C)."
        )


def softmax_t(logits: torch.Tensor, T: float) -> torch.Tensor:
    """Softened probabilities softmax(logits / T) over the last dimension; same shape."""
    check_tensor(logits, "logits")
    check_positive(T, "T (temperature)")
    return torch.softmax(logits / T, dim=-1)


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy -sum p log2 p over the last dimension (bits); shape probs.shape[:-1]."""
    check_tensor(probs, "probs")
    p = probs.clamp_min(0)
    return -(p * torch.log2(p.clamp_min(1e-30))).sum(-1)


def soft_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float, scale_t2: bool = True
) -> torch.Tensor:
    """T^2 * KL(p_t(T) || p_s(T)), batchmean; without the T^2 factor if scale_t2=False.

    Shapes: both (N, C) -> scalar. The teacher is detached (no gradient flows into it).
    """
    _check_logits(student_logits, teacher_logits)
    check_positive(T, "T (temperature)")
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

    student_logits, teacher_logits: (N, C) float; labels: (N,) int64; T > 0; alpha in [0, 1].
    Returns a scalar. KL uses log-softmax of both and reduction 'batchmean'.
    """
    _check_logits(student_logits, teacher_logits)
    check_tensor(labels, "labels", floating=False, ndim=1)
    if labels.shape[0] != student_logits.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} entries but the logits have {student_logits.shape[0]} rows.")
    alpha = check_fraction(alpha, "alpha", include_one=True)
    hard = F.cross_entropy(student_logits, labels)
    return (1 - alpha) * hard + alpha * soft_loss(student_logits, teacher_logits, T)


def soft_grad_norm(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float, scale_t2: bool = True
) -> float:
    """L2 norm of d soft_loss / d student_logits (mean over the batch is inside the loss)."""
    s = student_logits.detach().clone().requires_grad_(True)
    soft_loss(s, teacher_logits, T, scale_t2).backward()
    assert s.grad is not None
    return float(s.grad.norm())


# ---- data augmentation ----------------------------------------------------------------


def shift_augment(x: torch.Tensor, generator: torch.Generator | None = None, max_shift: int = 1) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels in x and y (zeros fill in); x (N, 1, H, W).

    The background value of normalised digits is x.min(), so that is what fills in.
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


# ---- models as body + head: features for hint distillation ------------------------------


def split_head(model: nn.Sequential) -> tuple[nn.Sequential, nn.Linear]:
    """(body, head) of a Sequential whose last layer is the classifier Linear."""
    if not isinstance(model, nn.Sequential) or not isinstance(model[-1], nn.Linear):
        raise ValueError("split_head needs an nn.Sequential ending in nn.Linear (labkit.models.cnn/mlp).")
    return model[:-1], model[-1]


def feature_dim(model: nn.Sequential) -> int:
    """Size of the feature vector that enters the classifier Linear."""
    return split_head(model)[1].in_features


def hint_loss(student_features: torch.Tensor, teacher_features: torch.Tensor, regressor: nn.Module) -> torch.Tensor:
    """FitNets hint loss: mean((regressor(f_s) - f_t)^2); f_s (N, d_s), f_t (N, d_t) -> scalar."""
    check_tensor(student_features, "student_features", ndim=2)
    check_tensor(teacher_features, "teacher_features", ndim=2)
    return F.mse_loss(regressor(student_features), teacher_features.detach())


# ---- teachers ---------------------------------------------------------------------------


@torch.no_grad()
def ensemble_logits(teachers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Multi-teacher target: the mean of the teachers' logits, (N, C). Teachers run in eval."""
    if not teachers:
        raise ValueError("ensemble_logits needs at least one teacher.")
    outs = []
    for t in teachers:
        t.eval()
        outs.append(t(x))
    return torch.stack(outs).mean(0)


def teacher_models() -> list[nn.Sequential]:
    """The three teacher architectures of notebook 03 (untrained): two CNNs and a wide MLP."""
    return [models.cnn(width=32, depth=3), models.cnn(width=24, depth=4), _flat_mlp(256, 2)]


def _flat_mlp(width: int, depth: int) -> nn.Sequential:
    """An MLP that takes (N, 1, 8, 8) images (its first layer flattens)."""
    return models.mlp(width=width, depth=depth, dropout=0.1)


def train_teachers(epochs: int = 30, save: bool = True, seed: int = 0) -> list[nn.Sequential]:
    """Train the three teachers on all 1,077 labelled training digits (with shift augmentation).

    Saves them together as data/kd_teachers.safetensors (test accuracy in the metadata).
    """
    loaders = data.digits_loaders(batch_size=64, seed=seed)
    teachers = teacher_models()
    for i, t in enumerate(teachers):
        torch.manual_seed(seed + i)
        train.fit(t, loaders.train, epochs=epochs, lr=3e-3, loss_fn=augmented_ce(seed + i), weight_decay=1e-4)
    if save:
        bundle = nn.ModuleList(teachers)
        accs = [train.evaluate(t, loaders.test)["accuracy"] for t in teachers]
        models.save(bundle, TEACHER_ASSET, {"test_accuracy": ",".join(f"{a:.4f}" for a in accs), "epochs": str(epochs)})
    return teachers


def save_teachers() -> object:
    """Asset entry point (labkit.train_assets): train and save the teachers, return the path."""
    train_teachers()
    return data.DATA_DIR / f"{TEACHER_ASSET}.safetensors"


def load_teachers(retrain: bool = False) -> tuple[list[nn.Sequential], dict[str, str]]:
    """The trained teachers from data/ (or retrain them when retrain=True or the file is missing)."""
    path = data.DATA_DIR / f"{TEACHER_ASSET}.safetensors"
    if retrain or not path.exists():
        train_teachers()
    teachers = teacher_models()
    meta = models.load(nn.ModuleList(teachers), TEACHER_ASSET)
    for t in teachers:
        t.eval()
    return teachers, meta


# ---- training losses for labkit.train.fit ----------------------------------------------


def augmented_ce(seed: int = 0, augment: bool = True) -> train.LossFn:
    """Cross-entropy on shift-augmented batches (the 'student alone' baseline)."""
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
    """distillation_loss on augmented batches; several teachers -> their mean logits."""
    group = [teachers] if isinstance(teachers, nn.Module) else list(teachers)
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if augment:
            x = shift_augment(x, gen)
        return distillation_loss(model(x), ensemble_logits(group, x), y, T, alpha)

    return loss_fn


def hint_loss_fn(
    teacher: nn.Sequential,
    regressor: nn.Module,
    student_head_split: Callable[[nn.Module], tuple[nn.Module, nn.Module]] = split_head,
    T: float = 4.0,
    alpha: float = 0.9,
    beta: float = 1.0,
    seed: int = 0,
    augment: bool = True,
) -> train.LossFn:
    """KD loss + beta * hint_loss on the features entering each model's classifier.

    The regressor (d_student -> d_teacher) is trained with the student: put its parameters
    in the optimizer (see train_student).
    """
    t_body, t_head = split_head(teacher)
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if augment:
            x = shift_augment(x, gen)
        body, head = student_head_split(model)
        f_s = body(x)
        with torch.no_grad():
            teacher.eval()
            f_t = t_body(x)
            t_logits = t_head(f_t)
        return distillation_loss(head(f_s), t_logits, y, T, alpha) + beta * hint_loss(f_s, f_t, regressor)

    return loss_fn


# ---- the experiment of notebook 03 ----------------------------------------------------


def student_model(width: int = 32) -> nn.Sequential:
    """The small student: an MLP with one hidden layer of ``width`` units on (N, 1, 8, 8) input."""
    return models.mlp(width=width, depth=1)


def train_student(
    loader: DataLoader,
    loss_fn: train.LossFn,
    *,
    seed: int,
    epochs: int = 60,
    lr: float = 3e-3,
    width: int = 32,
    extra: nn.Module | None = None,
) -> nn.Sequential:
    """Train a fresh student (seeded) with ``loss_fn``; ``extra`` modules (a hint regressor)
    are optimised together with it."""
    torch.manual_seed(seed)
    student = student_model(width)
    params = list(student.parameters()) + (list(extra.parameters()) if extra is not None else [])
    opt = torch.optim.Adam(params, lr=lr, weight_decay=1e-4)
    train.fit(student, loader, epochs=epochs, loss_fn=loss_fn, optimizer=opt)
    return student


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n-1); std is 0 for a single value."""
    vals = list(values)
    if not vals:
        raise ValueError("mean_std needs at least one value.")
    m = sum(vals) / len(vals)
    if len(vals) == 1:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))
