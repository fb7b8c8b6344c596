"""Implicit meta-gradients (Rajeswaran, Finn, Kakade & Levine, NeurIPS 2019).

The inner problem is proximal, ``phi* = argmin_phi L_s(phi) + lam/2 ||phi - theta||^2`` (Eq. 4),
so ``dphi*/dtheta = (I + H/lam)^{-1}`` with ``H = d^2 L_s/dphi^2`` at ``phi*`` (Lemma 1), and the
meta-gradient is ``v = (I + H/lam)^{-1} g`` with ``g = dL_q/dphi``. ``v`` is found by conjugate
gradient with Hessian-vector products (reverse-over-reverse, :func:`torch.func.vjp` of
:func:`torch.func.grad`, linearised once per task), so memory does not depend on how many
inner steps found ``phi*``.
Parameters left out of the inner loop (psi) get ``dL_q/dpsi - (d^2 L_s/dpsi dphi) v / lam``.
Everything here is written with torch.func so one task's computation can be vmapped.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Params = dict[str, Tensor]


def _dot(a: Params, b: Params) -> Tensor:
    return sum((a[n] * b[n]).sum() for n in a)


def conjugate_gradient(
    matvec: Callable[[Params], Params], b: Params, steps: int, min_curvature: float | None = None
) -> Params:
    """``steps`` iterations of CG for ``A x = b`` from ``x = 0`` (Nocedal & Wright, Alg. 5.2).

    ``min_curvature`` (kappa) truncates CG at the first search direction with ``p^T A p <= kappa
    p^T p`` (Steihaug's negative-curvature stop, Alg. 7.2): from there on ``x`` stays as it is.
    CG assumes ``A`` positive definite; iMAML's ``I + H/lam`` at an inexactly solved non-convex
    inner problem is not, and a step along such a direction can return an arbitrarily long,
    wrong-signed solution. ``None`` never truncates. Data-dependent stops are masks, not branches,
    so one task's solve can be vmapped; divisions are guarded so that an exactly converged residual
    stays at zero instead of producing NaN.
    """
    x = {n: torch.zeros_like(t) for n, t in b.items()}
    r = dict(b)
    p = dict(b)
    rr = _dot(r, r)
    tiny = torch.finfo(rr.dtype).tiny
    active = torch.ones_like(rr, dtype=torch.bool)
    for _ in range(steps):
        ap = matvec(p)
        p_ap = _dot(p, ap)
        if min_curvature is not None:
            active = active & (p_ap > min_curvature * _dot(p, p))
        ok = active & (p_ap.abs() > tiny)
        alpha = torch.where(ok, rr / torch.where(ok, p_ap, 1.0), 0.0)
        x = {n: x[n] + alpha * p[n] for n in x}
        r = {n: r[n] - alpha * ap[n] for n in r}
        rr_new = _dot(r, r)
        beta = torch.where(rr > tiny, rr_new / torch.where(rr > tiny, rr, 1.0), 0.0)
        p = {n: r[n] + beta * p[n] for n in p}
        rr = rr_new
    return x


def implicit_task_gradients(
    support_loss: Callable[[Params, Params], Tensor],
    query_loss: Callable[[Params, Params], Tensor],
    phi: Params,
    rest: Params,
    lam: float,
    cg_steps: int,
    system_lam: float | None = None,
    min_curvature: float | None = None,
) -> tuple[Tensor, Params, Params]:
    """Query loss and the implicit meta-gradients ``(v for adapted, g for the rest)`` of one task.

    ``support_loss(adapted, rest)`` and ``query_loss(adapted, rest)`` take the adapted parameters
    and the non-adapted ones; ``phi`` is the (approximate) inner solution. ``system_lam`` (default
    ``lam``) is the lambda of the CG system ``(I + H / system_lam) v = g``; a larger one damps it.
    ``min_curvature``: see :func:`conjugate_gradient`.
    """
    system_lam = lam if system_lam is None else system_lam
    (g_phi, g_rest), value = torch.func.grad_and_value(query_loss, argnums=(0, 1))(phi, rest)
    support_grad = torch.func.grad(support_loss, argnums=0)

    _, hvp = torch.func.vjp(lambda a: support_grad(a, rest), phi)

    def matvec(u: Params) -> Params:
        (hu,) = hvp(u)  # H is symmetric: the vector-Jacobian product of the gradient is H u
        return {n: u[n] + hu[n] / system_lam for n in u}

    v = conjugate_gradient(matvec, g_phi, cg_steps, min_curvature)
    if rest:
        mixed = torch.func.grad(lambda r: _dot(support_grad(phi, r), v))(rest)
        g_rest = {n: g_rest[n] - mixed[n] / system_lam for n in rest}
    return value, v, g_rest
