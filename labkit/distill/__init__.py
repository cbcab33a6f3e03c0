"""Knowledge distillation (notebooks/03_knowledge_distillation.ipynb).

- ``losses.py``: soft targets softmax(z / T), (1 - alpha) CE + alpha T^2 KL, the FitNets hint loss.
- ``training.py``: teachers, student, shift augmentation, the transfer set, the training loop.
- ``stats.py``: mean ± std over seeds, a t-test; ``omitted.py``: Hinton's omitted class.
- ``relational.py``: attention transfer, relational KD; ``multi_teacher.py``: assistants, weights.
- ``compare.py``: every variant with its own T and alpha from validation, over seeds.
- ``exercises.py``, ``widget.py``: the notebook's exercises and temperature explorer.
"""

from labkit.distill.compare import (  # noqa: I001 (packed to keep the face short)
    VARIANTS, choose_on_validation, train_variant, variant_sets, winner_verdict,
)  # fmt: skip
from labkit.distill.losses import (  # noqa: I001
    distillation_loss, entropy_bits, hint_loss, soft_grad_norm, soft_loss, softmax_t,
)  # fmt: skip
from labkit.distill.multi_teacher import (  # noqa: I001
    assistant_chain, confidence_weights, multi_teacher_loss, multi_transfer_set,
)  # fmt: skip
from labkit.distill.omitted import class_bias_sweep, recognised, without_class
from labkit.distill.relational import (  # noqa: I001
    at_kd_loss, at_loss, attention_map, rkd_angle_loss, rkd_distance_loss, rkd_kd_loss,
)  # fmt: skip
from labkit.distill.stats import Difference, difference, mean_std
from labkit.distill.training import (  # noqa: I001
    TransferSet, ce_loss, ensemble_logits, feature_dim, hint_kd_loss, kd_loss, kd_loss_fn,
    linear_schedule, load_teachers, shift_augment, shifted_copies, split_head, student_model,
    take, teacher_models, train_student, train_teachers, transfer_set,
)  # fmt: skip

__all__ = [
    "VARIANTS", "assistant_chain", "at_kd_loss", "at_loss", "attention_map", "choose_on_validation",
    "confidence_weights", "multi_teacher_loss", "multi_transfer_set", "rkd_angle_loss",
    "rkd_distance_loss", "rkd_kd_loss", "train_variant", "variant_sets", "winner_verdict",
    "Difference", "TransferSet", "ce_loss", "class_bias_sweep", "difference", "distillation_loss",
    "entropy_bits", "ensemble_logits", "feature_dim", "hint_kd_loss", "hint_loss", "kd_loss",
    "kd_loss_fn", "linear_schedule", "load_teachers", "mean_std", "recognised", "shift_augment",
    "shifted_copies", "soft_grad_norm", "soft_loss", "softmax_t", "split_head", "student_model",
    "take", "teacher_models", "train_student", "train_teachers", "transfer_set", "without_class",
]  # fmt: skip
