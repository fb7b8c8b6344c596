"""SNAIL's building blocks (Mishra et al. 2018, Sec. 3 and Appendix A): dense blocks of causal
dilated convolutions, TC blocks, and causal soft attention. Sequences are ``[B, T, C]``; every
block concatenates its output to its input, so channel counts grow along the network.

Every block also has ``extend(prefix, last)``: the output at one more position appended to a shared
prefix, for many candidate last positions at once (``prefix [B, S, C]``, ``last [B, Q, C]`` →
``[B, Q, C_out]``). Because the blocks are causal, the prefix's own outputs do not depend on what is
appended, so a few-shot episode runs its support sequence once and each query as a single extra
position, instead of one full ``[support..., query]`` sequence per query: the same function, with
``S + Q`` positions to compute instead of ``Q (S + 1)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CausalConv1d(nn.Module):
    """Kernel-2 dilated convolution padded on the left only: output ``t`` sees inputs ``<= t``."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=2, dilation=dilation)

    def forward(self, x: Tensor) -> Tensor:  # x [B, T, C]
        y = self.conv(F.pad(x.transpose(1, 2), (self.dilation, 0)))
        return y.transpose(1, 2)

    def extend(self, prefix: Tensor, last: Tensor) -> Tensor:
        """Output at position ``S``: the kernel's taps at ``S - dilation`` (zero padding if it
        falls before the start) and at ``S`` itself."""
        w = self.conv.weight  # [out, in, 2]: tap 0 reads t - dilation, tap 1 reads t
        y = F.linear(last, w[:, :, 1], self.conv.bias)
        if prefix.shape[1] >= self.dilation:
            y = y + F.linear(prefix[:, -self.dilation], w[:, :, 0]).unsqueeze(1)
        return y


class DenseBlock(nn.Module):
    """``concat(x, tanh(conv_f(x)) * sigmoid(conv_g(x)))`` with a gated activation (App. A)."""

    def __init__(self, in_channels: int, filters: int, dilation: int) -> None:
        super().__init__()
        self.filter = CausalConv1d(in_channels, filters, dilation)
        self.gate = CausalConv1d(in_channels, filters, dilation)
        self.out_channels = in_channels + filters

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, torch.tanh(self.filter(x)) * torch.sigmoid(self.gate(x))], dim=-1)

    def extend(self, prefix: Tensor, last: Tensor) -> Tensor:
        gated = torch.tanh(self.filter.extend(prefix, last)) * torch.sigmoid(self.gate.extend(prefix, last))
        return torch.cat([last, gated], dim=-1)


class TCBlock(nn.Module):
    """Dense blocks with dilations 1, 2, 4, ... up to ``ceil(log2 T)`` blocks, so the receptive
    field covers a whole sequence of length ``T`` (App. A)."""

    def __init__(self, in_channels: int, seq_len: int, filters: int) -> None:
        super().__init__()
        blocks, channels = [], in_channels
        for i in range(max(1, math.ceil(math.log2(seq_len)))):
            blocks.append(DenseBlock(channels, filters, 2**i))
            channels = blocks[-1].out_channels
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)

    def extend(self, prefix: Tensor, last: Tensor) -> Tensor:
        return self.forward_extend(prefix, last)[1]

    def forward_extend(self, prefix: Tensor, last: Tensor) -> tuple[Tensor, Tensor]:
        """``(self(prefix), self.extend(prefix, last))`` with the prefix run through once."""
        return extend_sequential(self.blocks, prefix, last)


def causal_mask(length: int, device=None) -> Tensor:
    """``True`` where position ``i`` may not look: every ``j > i``."""
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)


class AttentionBlock(nn.Module):
    """Single-head causal soft attention, ``softmax(QK^T / sqrt(d_k))V`` concatenated to the input."""

    def __init__(self, in_channels: int, key_size: int, value_size: int) -> None:
        super().__init__()
        self.query = nn.Linear(in_channels, key_size)
        self.key = nn.Linear(in_channels, key_size)
        self.value = nn.Linear(in_channels, value_size)
        self.scale = 1.0 / math.sqrt(key_size)
        self.out_channels = in_channels + value_size

    def attention_weights(self, x: Tensor, keys: Tensor | None = None) -> Tensor:
        keys = self.key(x) if keys is None else keys
        logits = self.query(x) @ keys.transpose(1, 2) * self.scale
        logits = logits.masked_fill(causal_mask(x.shape[1], x.device), float("-inf"))
        return logits.softmax(dim=-1)  # [B, T, T], row i over positions j <= i

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.attention_weights(x) @ self.value(x)], dim=-1)

    def extend(self, prefix: Tensor, last: Tensor) -> Tensor:
        """The appended position attends to the whole prefix and to itself."""
        return self._extend(last, self.key(prefix), self.value(prefix))

    def forward_extend(self, prefix: Tensor, last: Tensor) -> tuple[Tensor, Tensor]:
        """``(self(prefix), self.extend(prefix, last))`` with the prefix's keys and values once."""
        keys, values = self.key(prefix), self.value(prefix)
        out = torch.cat([prefix, self.attention_weights(prefix, keys) @ values], dim=-1)
        return out, self._extend(last, keys, values)

    def _extend(self, last: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        q = self.query(last)  # [B, Q, k]
        to_prefix = q @ keys.transpose(1, 2)  # [B, Q, S]
        to_self = (q * self.key(last)).sum(-1, keepdim=True)  # [B, Q, 1]
        weights = (torch.cat([to_prefix, to_self], dim=-1) * self.scale).softmax(dim=-1)
        read = weights[..., :-1] @ values + weights[..., -1:] * self.value(last)
        return torch.cat([last, read], dim=-1)


def extend_sequential(blocks, prefix: Tensor, last: Tensor) -> tuple[Tensor, Tensor]:
    """Run causal blocks over ``prefix`` once and over each appended ``last`` position; returns
    (the prefix's outputs, the last positions' outputs). Blocks whose extension reuses work on the
    prefix (a TC block's inner blocks, attention's keys and values) do both in ``forward_extend``."""
    for block in blocks:
        if hasattr(block, "forward_extend"):
            prefix, last = block.forward_extend(prefix, last)
        else:
            prefix, last = block(prefix), block.extend(prefix, last)
    return prefix, last
