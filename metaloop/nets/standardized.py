"""A batch-norm Conv-4 whose output features are standardized by a non-affine batch norm.

Why: sequence learners that read Conv-4 features from pixels (MANN's LSTM controller, the
in-context transformer) sat at chance end to end: ReLU-pooled features are non-negative and share
a large common component, so at initialisation every image looks alike to the learner reading them.
Standardizing each of the 64 features (zero mean, unit variance over the batch) removes that common
component. Batch statistics mix the images of a meta-batch only in training, as in every
BN-trained few-shot network; in ``eval()`` each image is embedded alone with running statistics.
"""

from __future__ import annotations

from torch import nn

from metaloop.nets.fast_conv4 import ChannelsLastConv4


class StandardizedConv4(nn.Sequential):
    """``Conv4(norm="batch")`` (child ``0``, loadable from a metric learner's Conv-4; channels-last
    on CPU) then a non-affine ``BatchNorm1d`` over its ``embedding_dim`` outputs (child ``1``)."""

    def __init__(self, in_channels: int = 1, hidden: int = 64, image_size: int = 28) -> None:
        conv = ChannelsLastConv4(in_channels, None, hidden=hidden, image_size=image_size, norm="batch")
        super().__init__(conv, nn.BatchNorm1d(conv.embedding_dim, affine=False))
        self.embedding_dim = conv.embedding_dim
