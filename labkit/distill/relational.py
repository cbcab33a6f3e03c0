"""Notebook 03, part 6: feature and relational distillation beside the FitNets hint.

Attention transfer (Zagoruyko and Komodakis, 2017). A feature map A (N, C, H, W) becomes one
spatial attention map per example, the channel sum of |A|^p (p = 2), flattened and L2-normalised:

    Q = vec( sum_c |A_c|^p ),   q = Q / ||Q||_2                      (N, H W)
    L_AT = mean_n || q_s(n) - q_t(n) ||_2

Only the maps' shapes must agree (H W), not the channel counts: a student with 2 channels can
copy a teacher with 64.

Relational KD (Park et al., 2019) copies the geometry of a batch, not the features themselves,
so the student and teacher embeddings may have any widths (N, d_s) and (N, d_t):

    distance:  psi_D(i, j) = ||e_i - e_j||_2 / mu,  mu = mean_{i != j} ||e_i - e_j||_2
               L_D = mean_{i != j} huber(psi_D^s(i, j) - psi_D^t(i, j))
    angle:     psi_A(i, j, k) = < (e_i - e_j) / ||e_i - e_j||, (e_k - e_j) / ||e_k - e_j|| >
               L_A = mean_{i, j, k} huber(psi_A^s - psi_A^t)

huber is PyTorch's smooth_l1 (beta = 1): x^2 / 2 for |x| < 1, |x| - 1/2 beyond. The mean
normalisation makes L_D blind to the overall scale of each embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from labkit.core.errors import check_int, check_number, check_positive, check_tensor
from labkit.distill.losses import distillation_loss
from labkit.distill.training import StudentLoss, TransferSet, split_head

EPS = 1e-12  # keeps a zero map or a zero distance from dividing by 0
MAX_ANGLE_BYTES = 2**30  # refuse RKD-A's (N, N, N) angle tensors above 1 GiB before building them


def attention_map(features: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """q = vec(sum_c |A_c|^p) / ||vec(sum_c |A_c|^p)||_2: (N, C, H, W) -> (N, H W), rows of norm 1.

    Taught in notebooks/03_knowledge_distillation.ipynb, "6. Feature and relational distillation".
    """
    _check_attention_map(features, p)
    q = features.abs().pow(p).sum(dim=1).flatten(1)  # (N, H W): energy per position
    return q / q.norm(dim=1, keepdim=True).clamp_min(EPS)  # (N, H W), each row of L2 norm 1


def at_loss(
    student_features: torch.Tensor, teacher_features: torch.Tensor, p: float = 2.0
) -> torch.Tensor:
    """Attention transfer: mean_n ||q_s(n) - q_t(n)||_2 of the two attention maps; a scalar.

    student_features (N, C_s, H, W), teacher_features (N, C_t, H, W) (channels may differ);
    0 when the maps agree, at most 2 (unit vectors). The teacher is detached.
    Taught in notebooks/03_knowledge_distillation.ipynb, "6. Feature and relational distillation".
    """
    _check_pair(student_features, teacher_features, ndim=4, names="features")
    q_s = attention_map(student_features, p)  # (N, H W)
    q_t = attention_map(teacher_features.detach(), p)  # (N, H W)
    return (q_s - q_t).norm(dim=1).mean()


def pairwise_distances(emb: torch.Tensor) -> torch.Tensor:
    """psi_D: ||e_i - e_j||_2 divided by its mean over the pairs i != j; (N, d) -> (N, N).

    Used by rkd_distance_loss (this module).
    """
    sq = (emb * emb).sum(1)  # (N,): ||e_i||^2
    d2 = sq.unsqueeze(0) + sq.unsqueeze(1) - 2 * emb @ emb.T  # (N, N): ||e_i - e_j||^2
    d = d2.clamp_min(EPS).sqrt() * (1 - torch.eye(len(emb)))  # (N, N), 0 on the diagonal
    n = len(emb)
    mu = d.sum() / (n * (n - 1))  # mean over the N (N - 1) off-diagonal pairs
    return d / mu.clamp_min(EPS)  # (N, N)


def rkd_distance_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """RKD-D: mean over pairs i != j of huber(psi_D^s(i, j) - psi_D^t(i, j)); a scalar.

    student_emb (N, d_s), teacher_emb (N, d_t), N >= 2; any widths. The teacher is detached.
    Taught in notebooks/03_knowledge_distillation.ipynb, "6. Feature and relational distillation".
    """
    _check_pair(student_emb, teacher_emb, ndim=2, names="emb")
    s = pairwise_distances(student_emb)  # (N, N)
    t = pairwise_distances(teacher_emb.detach())  # (N, N)
    off = ~torch.eye(len(s), dtype=torch.bool)  # (N, N): the pairs i != j
    return F.smooth_l1_loss(s[off], t[off])


def triplet_angles(emb: torch.Tensor) -> torch.Tensor:
    """psi_A: cos of the angle at e_j between e_i and e_k, for every (i, j, k); (N, d) -> (N, N, N).

    Entry [j, i, k] = <u_ji, u_jk>, u_ji = (e_i - e_j) / ||e_i - e_j|| (0 where i = j).
    Used by rkd_angle_loss (this module).
    """
    diff = emb.unsqueeze(0) - emb.unsqueeze(1)  # (N, N, d): [j, i] = e_i - e_j
    u = diff / diff.norm(dim=-1, keepdim=True).clamp_min(EPS)  # (N, N, d) unit vectors
    return u @ u.transpose(1, 2)  # (N, N, N): [j, i, k] = <u_ji, u_jk>


def rkd_angle_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """RKD-A: mean over all triplets of huber(psi_A^s - psi_A^t); a scalar.

    student_emb (N, d_s), teacher_emb (N, d_t); costs N^3 (d_s + d_t), so pass a few dozen rows.
    Taught in notebooks/03_knowledge_distillation.ipynb, "6. Feature and relational distillation".
    """
    _check_angles(student_emb, teacher_emb)
    s = triplet_angles(student_emb)  # (N, N, N)
    t = triplet_angles(teacher_emb.detach())  # (N, N, N)
    return F.smooth_l1_loss(s, t)


# ---- student losses for train_student: the logit KD loss + beta * a feature loss -------------


def at_kd_loss(
    teacher_shape: tuple[int, int, int],
    student_shape: tuple[int, int, int],
    T: float = 4.0,
    alpha: float = 0.9,
    beta: float = 100.0,
) -> StudentLoss:
    """distillation_loss + beta * at_loss(student map, teacher map).

    The stored teacher features (M, C_t H W) are viewed as teacher_shape (C_t, H, W); the
    student's hidden features (B, C_s H W) as student_shape (C_s, H, W): an MLP has no spatial
    layout, so the loss gives its hidden units one.
    Taught in notebooks/03_knowledge_distillation.ipynb, "6. Feature and relational distillation".
    """
    _check_student_loss(T, alpha, beta, teacher_shape, student_shape)

    def loss(student: nn.Module, b: TransferSet, progress: float) -> torch.Tensor:
        body, head = split_head(student)  # type: ignore[arg-type]
        f_s = body(b.x)  # (B, C_s H W)
        kd = distillation_loss(head(f_s), b.teacher_logits, b.y, T, alpha)  # type: ignore[arg-type]
        a_s = f_s.view(len(f_s), *student_shape)  # (B, C_s, H, W)
        a_t = b.teacher_features.view(len(f_s), *teacher_shape)  # type: ignore[union-attr]
        return kd + beta * at_loss(a_s, a_t)

    return loss


def rkd_kd_loss(
    T: float = 4.0,
    alpha: float = 0.9,
    beta_d: float = 1.0,
    beta_a: float = 2.0,
    n_angle: int = 16,
) -> StudentLoss:
    """distillation_loss + beta_d * RKD-D (whole batch) + beta_a * RKD-A (first n_angle rows).

    Embeddings: the student's hidden features and the stored teacher features (any widths).
    beta_d = 1, beta_a = 2 are Park et al.'s weights.
    Taught in notebooks/03_knowledge_distillation.ipynb, "6. Feature and relational distillation".
    """
    _check_rkd_kd_loss(T, alpha, beta_d, beta_a, n_angle)

    def loss(student: nn.Module, b: TransferSet, progress: float) -> torch.Tensor:
        body, head = split_head(student)  # type: ignore[arg-type]
        f_s, f_t = body(b.x), b.teacher_features  # (B, d_s), (B, d_t)
        kd = distillation_loss(head(f_s), b.teacher_logits, b.y, T, alpha)  # type: ignore[arg-type]
        rel = beta_d * rkd_distance_loss(f_s, f_t)  # type: ignore[arg-type]
        return kd + rel + beta_a * rkd_angle_loss(f_s[:n_angle], f_t[:n_angle])  # type: ignore[index]

    return loss


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_attention_map(features: object, p: object) -> None:
    f = check_tensor(features, "features", ndim=4)
    if f.numel() == 0:
        raise ValueError(f"features has shape {tuple(f.shape)}: need N, C, H, W all >= 1.")
    check_positive(p, "p (the power of |A|)")


def _check_pair(student: object, teacher: object, *, ndim: int, names: str) -> None:
    s_name, t_name = f"student_{names}", f"teacher_{names}"
    s = check_tensor(student, s_name, ndim=ndim)
    t = check_tensor(teacher, t_name, ndim=ndim)
    if len(s) != len(t) or (ndim == 4 and s.shape[2:] != t.shape[2:]):
        raise ValueError(
            f"{s_name} {tuple(s.shape)} and {t_name} {tuple(t.shape)} must have "
            "the same rows (examples)" + (" and the same H, W" if ndim == 4 else "") + "."
        )
    if len(s) < 2 or s.numel() == 0 or t.numel() == 0:
        raise ValueError(
            f"{s_name} has shape {tuple(s.shape)}, {t_name} {tuple(t.shape)}: need at least 2 "
            "examples with non-empty features (a relation needs a pair, an attention map a "
            "position)."
        )


def _check_angles(student_emb: object, teacher_emb: object) -> None:
    _check_pair(student_emb, teacher_emb, ndim=2, names="emb")
    n, d = student_emb.shape  # type: ignore[union-attr]
    n_bytes = 4 * n * n * (n + max(d, teacher_emb.shape[1]))  # type: ignore[union-attr]
    if n_bytes > MAX_ANGLE_BYTES:
        raise ValueError(
            f"student_emb has {n} rows: the N^3 = {n**3:,} angles need {n_bytes / 2**30:.1f} GiB "
            f"(limit {MAX_ANGLE_BYTES / 2**30:.0f} GiB); pass a few dozen rows, e.g. emb[:16]."
        )


def _check_rkd_kd_loss(
    T: object, alpha: object, beta_d: object, beta_a: object, n_angle: object
) -> None:
    _check_student_loss(T, alpha, 0.0, (1, 1, 1), (1, 1, 1), n_angle)
    check_number(beta_d, "beta_d", low=0)
    check_number(beta_a, "beta_a", low=0)


def _check_student_loss(
    T: object,
    alpha: object,
    beta: object,
    teacher_shape: object,
    student_shape: object,
    n_angle: object = 3,
) -> None:
    check_positive(T, "T (temperature)")
    check_number(alpha, "alpha", low=0, high=1)
    check_number(beta, "beta", low=0)
    check_int(n_angle, "n_angle", low=3)
    for name, shape in (("teacher_shape", teacher_shape), ("student_shape", student_shape)):
        if not (
            isinstance(shape, tuple)
            and len(shape) == 3
            and all(isinstance(v, int) and v > 0 for v in shape)
        ):
            raise ValueError(f"{name} must be (C, H, W) of positive ints, got {shape!r}.")
    if teacher_shape[1:] != student_shape[1:]:  # type: ignore[index]
        raise ValueError(
            f"teacher_shape {teacher_shape} and student_shape {student_shape} need the same H, W."
        )
