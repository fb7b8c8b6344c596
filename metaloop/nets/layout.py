"""Memory layout hint for CPU passes that gain from channels-last (NHWC) activations.

oneDNN's convolutions, batch norm and above all max-pooling run much faster on channels-last
tensors on CPU (max-pool 12x on Conv-4's first block in our measurement). A 1-channel image cannot
carry the layout (its strides are both NCHW and NHWC), so the first convolution's output comes back
NCHW unless the network converts it. Networks call :func:`preferred_layout` after a convolution;
it converts only inside :func:`channels_last_activations`, which the ``split`` strategy enables for
its per-task query passes (outside ``vmap``, where a layout change is not supported).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

_CHANNELS_LAST = contextvars.ContextVar("metaloop_channels_last_activations", default=False)


@contextmanager
def channels_last_activations() -> Iterator[None]:
    """Inside this block :func:`preferred_layout` returns channels-last 4-D tensors."""
    token = _CHANNELS_LAST.set(True)
    try:
        yield
    finally:
        _CHANNELS_LAST.reset(token)


def to_channels_last(x: Tensor) -> Tensor:
    """``x`` (4-D) with NHWC strides, also when it has a single channel.

    ``contiguous(memory_format=channels_last)`` leaves a 1-channel tensor as it is (its strides are
    valid for both layouts, and torch reads them as NCHW), so a convolution on a 1-channel image
    with such weights runs in NCHW and its 64-channel output has to be copied to NHWC (forward)
    and back (backward). Giving the channel dimension stride 1 makes oneDNN pick NHWC: Conv-4's
    first convolution on 75 Omniglot queries, forward + backward, 31 ms -> 3.5 ms, no 15 MB copies.
    """
    if x.dim() == 4 and x.size(1) == 1:
        n, _, h, w = x.shape
        return torch.empty_strided(x.shape, (h * w, 1, w, 1), dtype=x.dtype, device=x.device).copy_(x)
    return x.contiguous(memory_format=torch.channels_last)


def preferred_layout(x: Tensor) -> Tensor:
    """``x`` in channels-last layout inside :func:`channels_last_activations`, else unchanged."""
    if _CHANNELS_LAST.get() and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x
