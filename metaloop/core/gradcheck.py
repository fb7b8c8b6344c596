"""Meta-gradient checks: a plain clone-style reference and a relative-error comparison.

The reference is deliberately unlike the library path: it deep-copies the module and assigns
adapted tensors as its attributes (learn2learn's ``clone`` idiom), loops over tasks and calls
``torch.autograd.grad``. Compared in float64, a correct strategy agrees to ~1e-13 relative; the
native batch norm under vmap bug of torch 2.13 shows up as ~1e-3 (see tests/core).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from metaloop.tasks.episode import EpisodeBatch


def load_tensors(module: nn.Module, tensors: Mapping[str, Tensor]) -> None:
    """Replace parameters of ``module`` (a throw-away copy) by arbitrary tensors, in place."""
    for name, t in tensors.items():
        *path, leaf = name.split(".")
        owner = module
        for part in path:
            owner = getattr(owner, part)
        owner._parameters.pop(leaf, None)
        setattr(owner, leaf, t)


def clone_adapt(
    module: nn.Module,
    weights: dict[str, Tensor],
    names: Sequence[str],
    lrs: Mapping[str, Tensor | float],
    loss_fn: Callable,
    x: Tensor,
    y: Tensor,
    steps: int,
    create_graph: bool,
) -> tuple[nn.Module, dict[str, Tensor]]:
    """Inner SGD steps on a deep copy of ``module`` (batch statistics always, as in train mode)."""
    fast = copy.deepcopy(module).train()
    for _ in range(steps):
        load_tensors(fast, weights)
        loss = loss_fn(fast(x), y)
        grads = torch.autograd.grad(loss, [weights[n] for n in names], create_graph=create_graph)
        weights = {
            **weights,
            **{n: weights[n] - lrs[n] * g for n, g in zip(names, grads, strict=True)},
        }
    load_tensors(fast, weights)
    return fast, weights


def reference_maml_loss(
    module: nn.Module,
    names: Sequence[str],
    lrs: Mapping[str, Tensor | float],
    loss_fn: Callable,
    batch: EpisodeBatch,
    steps: int,
    first_order: bool = False,
) -> Tensor:
    """Mean query loss after clone-style adaptation, differentiable w.r.t. ``module``'s params."""
    total = 0.0
    for ep in batch:
        weights = dict(module.named_parameters())
        fast, _ = clone_adapt(
            module,
            weights,
            names,
            lrs,
            loss_fn,
            ep.support_x,
            ep.support_y,
            steps,
            create_graph=not first_order,
        )
        total = total + loss_fn(fast(ep.query_x), ep.query_y)
    return total / len(batch)


def relative_error(grads: Sequence[Tensor | None], reference: Sequence[Tensor | None]) -> float:
    """``||g - g_ref|| / ||g_ref||`` over all tensors (``None`` counts as zero)."""

    def flat(ts: Sequence[Tensor | None], like: Sequence[Tensor | None]) -> Tensor:
        out = []
        for t, other in zip(ts, like, strict=True):
            shape_src = t if t is not None else other
            out.append((t if t is not None else torch.zeros_like(shape_src)).reshape(-1))
        return torch.cat(out)

    a, b = flat(grads, reference), flat(reference, grads)
    return float((a - b).norm() / b.norm().clamp_min(torch.finfo(b.dtype).tiny))


def meta_gradient(loss: Tensor, params: Sequence[Tensor]) -> list[Tensor | None]:
    return list(torch.autograd.grad(loss, list(params), allow_unused=True))
