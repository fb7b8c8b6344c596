"""Meta-training: the trainer, checkpoints and resume, distributed data parallelism, logs."""

from metaloop.engine.loop import meta_train
from metaloop.engine.trainer import Trainer, TrainHistory, TrainOptions

__all__ = ["TrainHistory", "TrainOptions", "Trainer", "meta_train"]
