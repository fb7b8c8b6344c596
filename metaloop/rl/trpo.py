"""Trust-region pieces (Schulman et al. 2015, App. C): the natural-gradient direction by conjugate
gradient on Fisher-vector products (the core CG of :mod:`metaloop.core.implicit`) and a
backtracking line search under a KL constraint."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from metaloop.core.implicit import conjugate_gradient
from metaloop.rl.policies import Params


def flatten(tensors) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: Tensor, like: Params) -> Params:
    out, i = {}, 0
    for k, v in like.items():
        out[k] = vector[i : i + v.numel()].view_as(v)
        i += v.numel()
    return out


def trust_region_step(
    loss: Tensor,
    kl: Tensor,
    params: Params,
    evaluate: Callable[[Params], tuple[float, float]],
    max_kl: float = 1e-2,
    cg_iters: int = 10,
    cg_damping: float = 1e-5,
    ls_max_steps: int = 15,
    ls_backtrack: float = 0.8,
) -> tuple[Params, dict[str, float]]:
    """One TRPO update of ``params`` given the surrogate ``loss`` (to minimise) and mean ``kl``
    built from them; ``evaluate(new_params) -> (loss, kl)`` is used by the line search."""
    names = list(params)
    tensors = [params[k] for k in names]
    grad = flatten(torch.autograd.grad(loss, tensors, retain_graph=True)).detach()
    grad_kl = flatten(torch.autograd.grad(kl, tensors, create_graph=True))

    def fvp(v: Tensor) -> Tensor:
        hv = torch.autograd.grad(grad_kl @ v, tensors, retain_graph=True)
        return flatten(hv).detach() + cg_damping * v

    # the core CG works on parameter dicts; the Fisher system here is one flat vector
    direction = conjugate_gradient(lambda p: {"v": fvp(p["v"])}, {"v": grad}, cg_iters)["v"]
    shs = 0.5 * direction @ fvp(direction)
    step = direction / torch.sqrt(shs / max_kl).clamp_min(1e-12)
    old = flatten(tensors).detach()
    old_loss = float(loss.detach())
    info = {"loss_before": old_loss, "accepted": 0.0}
    for k in range(ls_max_steps):
        candidate = unflatten(old - (ls_backtrack**k) * step, params)
        new_loss, new_kl = evaluate(candidate)
        if new_loss < old_loss and new_kl < max_kl:
            info.update(loss_after=new_loss, kl=new_kl, accepted=1.0, backtracks=float(k))
            return candidate, info
    info.update(loss_after=old_loss, kl=0.0, backtracks=float(ls_max_steps))
    return {k: v.detach() for k, v in params.items()}, info
