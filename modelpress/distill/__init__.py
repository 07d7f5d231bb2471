"""Knowledge distillation: losses, teachers (one, an ensemble, a chain, or peers) and the ``distill`` stage.

* :mod:`~modelpress.distill.losses` — pure loss functions (logit KD with ``T^2``, FitNets hints, attention transfer,
  attention probabilities, embeddings);
* :mod:`~modelpress.distill.features` — forward hooks on layers by name, and the learned adapters;
* :mod:`~modelpress.distill.teachers` — combining several teachers' outputs (fixed or per-sample confidence weights);
* :mod:`~modelpress.distill.objective` — the objective the one fine-tuning loop minimizes, and the
  ``finetune: {distill: ...}`` hook (KD from the original model in any stage's fine-tuning);
* :mod:`~modelpress.distill.mutual` — online mutual learning of peer students;
* :mod:`~modelpress.distill.stage` — the ``distill`` stage (new student architecture, recorded for ``unpack``);
* :mod:`~modelpress.distill.transfer` — transfer sets: training batches perturbed on every pass;
* :mod:`~modelpress.distill.students` — small student (and teacher) architectures.

Example:
    >>> import torch
    >>> z = torch.tensor([[1.0, 2.0]])
    >>> round(float(kd_loss(z, z, None, temperature=4.0, alpha=1.0)), 4)
    0.0
"""

from modelpress.distill.features import FeatureTaps, make_adapter
from modelpress.distill.losses import (
    attention_map,
    attention_probs_loss,
    attention_transfer_loss,
    embedding_loss,
    hint_loss,
    kd_loss,
    soft_kl,
)
from modelpress.distill.mutual import MutualObjective, Peers
from modelpress.distill.objective import DistillObjective, FeaturePair, StudentWithAdapters, finetune_objective
from modelpress.distill.stage import DistillConfig, StudentSpec, build_student, distill
from modelpress.distill.teachers import Ensemble, TeacherSet, ensemble_probs
from modelpress.distill.transfer import AugmentConfig, TransferTask, augment_images, augment_tokens, mixup_batch

__all__ = [
    "AugmentConfig",
    "DistillConfig",
    "DistillObjective",
    "Ensemble",
    "FeaturePair",
    "FeatureTaps",
    "MutualObjective",
    "Peers",
    "StudentSpec",
    "StudentWithAdapters",
    "TeacherSet",
    "TransferTask",
    "attention_map",
    "attention_probs_loss",
    "attention_transfer_loss",
    "augment_images",
    "augment_tokens",
    "build_student",
    "distill",
    "embedding_loss",
    "ensemble_probs",
    "finetune_objective",
    "hint_loss",
    "kd_loss",
    "make_adapter",
    "mixup_batch",
    "soft_kl",
]
