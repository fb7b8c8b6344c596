"""External memory with content-based reads and least-recently-used writes (Santoro et al. 2016).

Sec. 3.1 ("Least Recently Used Access"): reads are a softmax over the cosine similarity between a
key and every memory row (eqs. 2-4); writes go either to the rows just read (to update a binding)
or to the least-used rows (to store a new one), mixed by a learned gate ``sigmoid(alpha)`` (eq. 7).
Usage decays by ``gamma`` and accumulates read and write weights (eq. 5); the ``n`` least-used rows,
``n`` the number of read heads, form ``w_lu`` (eq. 6) and are zeroed before each write.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class MemoryState:
    """All per-sequence memory state, with a leading batch dimension ``B``."""

    memory: Tensor  # [B, slots, dim]
    usage: Tensor  # [B, slots]                  w^u_{t-1}
    read_weights: Tensor  # [B, heads, slots]    w^r_{t-1}
    least_used: Tensor  # [B, slots]             w^lu_{t-1}
    reads: Tensor  # [B, heads * dim]            r_{t-1}

    def expand(self, batch: int) -> MemoryState:
        """Broadcast a single-sequence state (``B == 1``) to ``batch`` independent copies."""
        return MemoryState(*(t.expand(batch, *t.shape[1:]) for t in self.as_tuple()))

    def repeat_interleave(self, repeats: int) -> MemoryState:
        return MemoryState(*(t.repeat_interleave(repeats, dim=0) for t in self.as_tuple()))

    def as_tuple(self) -> tuple[Tensor, ...]:
        return (self.memory, self.usage, self.read_weights, self.least_used, self.reads)


def least_used_weights(usage: Tensor, n: int) -> Tensor:
    """Eq. 6: 1 on the ``n`` rows with smallest usage, 0 elsewhere (ties go to the lower index)."""
    order = usage.argsort(dim=-1, stable=True)[..., :n]
    return torch.zeros_like(usage).scatter(-1, order, 1.0)


class LRUMemory:
    """The memory update rule; stateless itself (state travels in :class:`MemoryState`)."""

    def __init__(self, slots: int = 128, dim: int = 40, heads: int = 4, gamma: float = 0.95,
                 init_value: float = 1e-6) -> None:
        if heads > slots:
            raise ValueError(f"heads ({heads}) cannot exceed memory slots ({slots})")
        self.slots, self.dim, self.heads, self.gamma, self.init_value = slots, dim, heads, gamma, init_value

    def initial_state(self, batch: int, device=None, dtype=torch.float32) -> MemoryState:
        """Empty memory (a tiny constant, so cosine similarity is defined), zero usage and reads."""
        usage = torch.zeros(batch, self.slots, device=device, dtype=dtype)
        return MemoryState(
            memory=torch.full((batch, self.slots, self.dim), self.init_value, device=device, dtype=dtype),
            usage=usage,
            read_weights=torch.zeros(batch, self.heads, self.slots, device=device, dtype=dtype),
            least_used=least_used_weights(usage, self.heads),
            reads=torch.zeros(batch, self.heads * self.dim, device=device, dtype=dtype),
        )

    def write_weights(self, state: MemoryState, gate_logit: Tensor) -> Tensor:
        """Eq. 7: ``w^w_t = sigmoid(alpha) w^r_{t-1} + (1 - sigmoid(alpha)) w^lu_{t-1}``, per head."""
        gate = torch.sigmoid(gate_logit).unsqueeze(-1)  # [B, heads, 1]
        return gate * state.read_weights + (1 - gate) * state.least_used.unsqueeze(1)

    def step(self, state: MemoryState, keys: Tensor, gate_logit: Tensor,
             strength: Tensor | None = None) -> tuple[Tensor, MemoryState]:
        """Write ``keys`` ([B, heads, dim]) then read with them; returns ``(r_t [B, heads*dim], state)``.

        ``strength`` ([B, heads], optional) multiplies the cosines before the softmax: the key
        strength beta of the Neural Turing Machine (Graves et al. 2014, eq. 5) that Santoro et al.'s
        eq. 3 leaves out. Without it a cosine in [-1, 1] can raise one slot's weight at most e^2
        times above an unrelated slot's, so over 128 slots a perfect match gets ~2 % of the read.
        """
        w_write = self.write_weights(state, gate_logit)
        # The least-used rows (computed from w^u_{t-1}) are erased before writing (Sec. 3.1).
        memory = state.memory * (1 - state.least_used).unsqueeze(-1)
        memory = memory + torch.einsum("bhs,bhd->bsd", w_write, keys)
        similarity = F.cosine_similarity(keys.unsqueeze(2), memory.unsqueeze(1), dim=-1, eps=1e-8)
        if strength is not None:
            similarity = similarity * strength.unsqueeze(-1)
        w_read = similarity.softmax(dim=-1)  # [B, heads, slots]
        reads = torch.einsum("bhs,bsd->bhd", w_read, memory).flatten(1)
        usage = self.gamma * state.usage + w_read.sum(1) + w_write.sum(1)
        new = MemoryState(memory, usage, w_read, least_used_weights(usage, self.heads), reads)
        return reads, new
