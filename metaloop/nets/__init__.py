"""Backbones shared by every algorithm family."""

from metaloop.nets.batchnorm import TaskBatchNorm, task_batch_norm
from metaloop.nets.conv4 import Conv4
from metaloop.nets.mlp import MLP
from metaloop.nets.standardized import StandardizedConv4

__all__ = ["MLP", "Conv4", "StandardizedConv4", "TaskBatchNorm", "task_batch_norm"]
