"""Data-parallel meta-training over ``torch.distributed``: shard the tasks, all-reduce the meta-gradient.

Each rank draws its share of the meta-batch from its own stream (``derive_seed(seed, stream, rank)``,
so tasks are disjoint across ranks), computes the meta-loss of its shard weighted by its share of the
batch, and the gradients are summed with an explicit ``all_reduce`` over the meta-parameters. The
result is the gradient of the mean meta-loss over the whole meta-batch, exactly what one process
computing the same batch would get (up to float summation order). An explicit all-reduce rather
than DDP because inner loops call ``autograd.grad`` with ``create_graph`` and functional parameters,
which DDP's bucketed backward hooks do not see.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard_size(self, meta_batch: int) -> int:
        """Tasks drawn by this rank: the meta-batch split as evenly as possible."""
        return meta_batch // self.world_size + (1 if self.rank < meta_batch % self.world_size else 0)

    def all_reduce_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Sum the (already batch-share weighted) gradients of every rank, in one flat buffer."""
        if not self.enabled:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def all_reduce_sum(self, value: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            value = value.detach().clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Start every rank from rank 0's weights (and buffers)."""
        if self.enabled:
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's buffers (e.g. batch-norm running statistics) everywhere, as DDP does each step."""
        if self.enabled:
            for t in module.buffers():
                dist.broadcast(t.data, src=0)

    def gather(self, obj):
        """Every rank's ``obj`` as a list on every rank (RNG states for rank-0 checkpoints)."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group torchrun set up (``RANK``/``WORLD_SIZE``); a single process otherwise.

    gloo on CPU, nccl on CUDA (each rank on ``cuda:LOCAL_RANK``).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size())


def local_device(device: torch.device, context: DistContext) -> torch.device:
    if device.type == "cuda" and context.enabled:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device
