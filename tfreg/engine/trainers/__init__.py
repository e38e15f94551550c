"""Registered trainers (``train.trainer: {name, ...}``): ``fit`` (default), ``loop``, ``alternating``, ``progressive``.

Importing this package registers them; see :mod:`tfreg.engine.trainers.base` for writing a new one.
"""

from tfreg.engine.trainers.alternating import AlternatingTrainer
from tfreg.engine.trainers.base import Trainer, TrainingRun, build_optimizer
from tfreg.engine.trainers.fit import FitTrainer
from tfreg.engine.trainers.loop import LoopTrainer
from tfreg.engine.trainers.progressive import ProgressiveTrainer

__all__ = [
    "Trainer",
    "TrainingRun",
    "build_optimizer",
    "FitTrainer",
    "LoopTrainer",
    "AlternatingTrainer",
    "ProgressiveTrainer",
]
