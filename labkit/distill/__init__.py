"""Knowledge distillation (notebooks/03_knowledge_distillation.ipynb).

- ``losses.py``: soft targets softmax(z / T), the loss (1 - alpha) CE + alpha T^2 KL, why T^2,
  and the FitNets hint loss on features.
- ``training.py``: the teachers, the student, shift augmentation, the transfer set (teacher
  outputs computed once), the student losses and the training loop.
- ``stats.py``: mean ± std over seeds and the t-test that says whether a gain is clear.
- ``omitted.py``: Hinton's omitted-class experiment (a digit left out of the transfer set).
- ``exercises.py``, ``widget.py``: the notebook's exercises and temperature explorer.
"""

from labkit.distill.losses import (  # noqa: I001 (packed to keep the face short)
    distillation_loss, entropy_bits, hint_loss, soft_grad_norm, soft_loss, softmax_t,
)  # fmt: skip
from labkit.distill.omitted import class_bias_sweep, recognised, without_class
from labkit.distill.stats import Difference, difference, mean_std
from labkit.distill.training import (
    TransferSet, ce_loss, ensemble_logits, feature_dim, hint_kd_loss, kd_loss, kd_loss_fn,
    linear_schedule, load_teachers, shift_augment, shifted_copies, split_head, student_model,
    take, teacher_models, train_student, train_teachers, transfer_set,
)  # fmt: skip

__all__ = [
    "Difference", "TransferSet", "ce_loss", "class_bias_sweep", "difference", "distillation_loss",
    "entropy_bits", "ensemble_logits", "feature_dim", "hint_kd_loss", "hint_loss", "kd_loss",
    "kd_loss_fn", "linear_schedule", "load_teachers", "mean_std", "recognised", "shift_augment",
    "shifted_copies", "soft_grad_norm", "soft_loss", "softmax_t", "split_head", "student_model",
    "take", "teacher_models", "train_student", "train_teachers", "transfer_set", "without_class",
]  # fmt: skip
