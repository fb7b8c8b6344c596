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


def _batched(t: Tensor) -> bool:
    """Whether ``t`` is a vmap-batched tensor (data-dependent branches are not allowed there)."""
    return torch._C._functorch.is_batchedtensor(t)


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


def proximal_descent(
    value_and_grad: Callable[[Params], tuple[Tensor, Params]],
    theta: Params,
    lr: float,
    lam: float,
    steps: int,
    line_search: bool = False,
    sufficient_decrease: float = 0.5,
) -> Params:
    """``steps`` gradient steps on ``F(phi) = L_s(phi) + lam/2 ||phi - theta||^2`` from ``theta``.

    ``value_and_grad(phi)`` returns ``(L_s(phi), dL_s/dphi)``. Plain GD (``line_search=False``) is
    stable only where ``lr (h + lam) < 2`` for every Hessian eigenvalue ``h`` of ``L_s``; beyond it
    the iterates oscillate or diverge, ``phi`` is no fixed point of the proximal problem and the
    implicit gradient, which assumes one, is meaningless (measured on Omniglot: ``h_max`` 15-42 at
    init and 22-161 after 600 meta-iterations against the bound 18 of ``lr = 0.1, lam = 2``).
    ``line_search=True`` makes the solve a descent method whatever the curvature: a step is taken
    only if ``F`` drops by at least ``sufficient_decrease * step * ||grad F||^2`` (Armijo; 1/2 is
    what a step ``<= 1/L`` guarantees on an L-smooth ``F``), otherwise it is rejected and the step
    is halved for the rest of the solve. A rejected trial uses up one of the ``steps`` evaluations,
    so the cost is ``steps + 1`` gradients either way. Masks, not branches: vmappable per task.
    """
    def objective(phi: Params) -> tuple[Tensor, Params]:
        value, grad = value_and_grad(phi)
        diff = {n: phi[n] - theta[n] for n in phi}
        value = value + 0.5 * lam * _dot(diff, diff)
        return value, {n: grad[n] + lam * diff[n] for n in phi}

    phi = dict(theta)
    if not line_search:
        for _ in range(steps):
            _, g = objective(phi)
            phi = {n: phi[n] - lr * g[n] for n in phi}
        return phi
    f, g = objective(phi)
    step = torch.full_like(f, lr)
    for _ in range(steps):
        trial = {n: phi[n] - step * g[n] for n in phi}
        f_trial, g_trial = objective(trial)
        ok = f_trial <= f - sufficient_decrease * step * _dot(g, g)  # NaN/inf: rejected
        phi = {n: torch.where(ok, trial[n], phi[n]) for n in phi}
        g = {n: torch.where(ok, g_trial[n], g[n]) for n in g}
        f = torch.where(ok, f_trial, f)
        step = torch.where(ok, step, step / 2)
    return phi


def proximal_newton_cg(
    loss: Callable[[Params], Tensor],
    theta: Params,
    lam: float,
    steps: int,
    cg_steps: int = 5,
    min_curvature: float | None = 0.0,
    backtracks: int = 8,
    sufficient_decrease: float = 1e-4,
) -> Params:
    """``steps`` truncated-Newton (Hessian-free, Newton-CG) steps on ``F(phi) = L_s(phi) + lam/2
    ||phi - theta||^2`` from ``theta``; ``loss(phi)`` is ``L_s``.

    iMAML's second inner solver (Rajeswaran et al. 2019, Table 2 caption: "iMAML with Hessian-free
    uses 5 CG steps to compute the search direction and performs line-search to pick step size";
    the number of Newton steps is not stated there). Each step (Nocedal & Wright, Alg. 7.1):

    * the direction ``d``: ``cg_steps`` iterations of CG on ``(H + lam I) d = -grad F`` with
      Hessian-vector products of ``L_s`` (reverse-over-reverse, ``torch.func.vjp`` of
      ``torch.func.grad_and_value``, linearised once per step, which also gives ``L_s`` and its
      gradient), truncated at the first direction with ``p^T (H + lam I) p <= min_curvature p^T p``
      (Steihaug; :func:`conjugate_gradient`). Every CG iterate before that stop is a descent
      direction; if the very first one is stopped, ``d = -grad F / lam`` (steepest descent, scaled
      as the proximal term alone would);
    * the step: backtracking on ``F`` along ``d`` from ``t = 1`` (Armijo, ``F(phi + t d) <= F(phi)
      + sufficient_decrease * t * grad F^T d``), halving ``t`` at most ``backtracks`` times; where
      no trial passes, ``phi`` stays (``F`` never rises) and the next step is a steepest-descent
      one, ``d = -grad F / lam``: near a kink (a ReLU, or a task-batch-norm unit whose input
      weight crosses zero) the Newton step can be far too long for any of the trials, and
      without this the solve would stop there for good.

    Unlike fixed-step GD, the Newton direction does not depend on the curvature's scale: a loss
    ten times sharper gives a ten times shorter step, not a diverging or backtracking-starved one.
    Cost per step: one gradient, ``cg_steps`` Hessian-vector products and ``backtracks + 1``
    forward evaluations of ``L_s`` at most: under vmap every trial is evaluated (masks, per
    task), eagerly the search stops at the first accepted trial (usually ``t = 1``).
    """
    value_grad = torch.func.grad_and_value(loss)
    phi = dict(theta)
    failed = torch.zeros((), dtype=torch.bool)
    for _ in range(steps):
        grad, linearised, value = torch.func.vjp(value_grad, phi, has_aux=True)
        diff = {n: phi[n] - theta[n] for n in phi}
        f = value + 0.5 * lam * _dot(diff, diff)
        g = {n: grad[n] + lam * diff[n] for n in phi}

        def matvec(u: Params, linearised=linearised) -> Params:
            (hu,) = linearised(u)  # H is symmetric: the vjp of the gradient is H u
            return {n: hu[n] + lam * u[n] for n in u}

        d = conjugate_gradient(matvec, {n: -t for n, t in g.items()}, cg_steps, min_curvature)
        # steepest descent where the first CG direction already had too little curvature, or
        # where the last step's search along the Newton direction found no decrease
        stopped = (_dot(d, d) == 0) | failed
        d = {n: torch.where(stopped, -g[n] / lam, d[n]) for n in d}
        slope = _dot(g, d)
        t_ok = torch.zeros_like(f)
        found = torch.zeros_like(f, dtype=torch.bool)
        t = 1.0
        for _ in range(backtracks + 1):
            trial = {n: phi[n] + t * d[n] for n in phi}
            trial_diff = {n: trial[n] - theta[n] for n in phi}
            f_trial = loss(trial) + 0.5 * lam * _dot(trial_diff, trial_diff)
            ok = ~found & (f_trial <= f + sufficient_decrease * t * slope)  # NaN/inf: rejected
            t_ok = torch.where(ok, t, t_ok)
            found = found | ok
            t /= 2
            if not _batched(found) and bool(found):  # one task, eagerly: skip the other trials
                break
        phi = {n: phi[n] + t_ok * d[n] for n in phi}
        failed = ~found
    return phi


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
