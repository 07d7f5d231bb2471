"""The one fine-tuning loop and its callbacks; every training-time technique hooks in here."""

from modelpress.train.callbacks import Callback, TrainState
from modelpress.train.loop import Objective, fit, seed_everything

__all__ = ["Callback", "Objective", "TrainState", "fit", "seed_everything"]
