"""iMAML: meta-learning with implicit gradients (Rajeswaran et al., NeurIPS 2019).

The inner loop solves the proximal problem ``min_phi L_s(phi) + lam/2 ||phi - theta||^2`` by
gradient descent without any graph (Alg. 2, "GD" inner solver); the meta-gradient comes from the
implicit function theorem via conjugate gradient (:mod:`metaloop.core.implicit`), so memory is the
same for 5 or 500 inner steps (Sec. 3). ``meta_loss`` returns a scalar whose value is the mean
query loss and whose gradient is that implicit meta-gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metaloop.algorithms.registry import register
from metaloop.core.implicit import implicit_task_gradients, proximal_descent, proximal_newton_cg
from metaloop.core.inner import Params
from metaloop.core.learner import GradientLearner
from metaloop.core.strategies import resolve_strategy
from metaloop.tasks.episode import EpisodeBatch


@register("imaml")
class IMAML(GradientLearner):
    """Beyond GradientLearner: ``lam`` (proximal strength lambda), ``cg_steps`` (CG iterations) and
    ``cg_lam``: the lambda of the linear system ``(I + H / cg_lam) v = g`` (default ``lam``, the
    theorem's). Where the inner problem is non-convex and not solved to stationarity, ``I + H/lam``
    need not be positive definite and CG can return a poor direction; a larger ``cg_lam`` damps the
    system towards the first-order gradient (``cg_lam -> inf`` gives ``v = g``), measured by
    ``benchmarks/imaml_gradient_check.py``.

    ``cg_min_curvature`` (kappa, default 0) truncates CG at the first direction ``p`` with
    ``p^T A p <= kappa p^T p`` (Steihaug's negative-curvature stop; Nocedal & Wright Alg. 7.2) and
    keeps the iterate found so far. CG assumes ``A`` positive definite; on Omniglot ``I + H/lam``
    at the 16-step ``phi`` is not (Rayleigh quotients down to -0.5 within 5 CG steps), and an
    unguarded step along such a direction returned meta-gradients up to 64x the query gradient's
    norm, uncorrelated with the exact derivative (``benchmarks/imaml_diagnose.py``). Where ``A``
    is positive definite the guard never fires and the solve is the plain CG one.
    ``cg_min_curvature=None`` disables the guard (the old behaviour).

    ``inner_line_search`` (default off: plain GD with step ``inner_lr``) backtracks the inner step
    whenever it fails to decrease the proximal objective (Armijo; see
    :func:`metaloop.core.implicit.proximal_descent`). The implicit gradient is that of a *fixed
    point*; plain GD with a fixed step is one only while ``inner_lr (h_max + lam) < 2``, and
    meta-training sharpens the support loss past that bound (Omniglot: ``h_max`` 15-42 at init,
    up to 161 after 600 iterations, bound 18), after which the inner solve oscillates and the
    meta-gradient no longer describes it (``benchmarks/imaml_inner_probe.py``).

    ``meta_gradient="unrolled"`` replaces the implicit gradient by the exact derivative of the
    same ``inner_steps``-step solve (backpropagation through it, memory growing with the steps):
    a diagnostic upper bound on what a better implicit approximation could give, not iMAML.

    ``inner_solver`` picks how the proximal problem is solved: ``"gd"`` (default; ``inner_steps``
    steps of size ``inner_lr``, with ``inner_line_search``) or ``"newton_cg"``, the paper's
    "Hessian-free" variant (Table 2): ``inner_steps`` truncated-Newton steps, each with
    ``newton_cg_steps`` CG iterations on ``(H + lam I) d = -grad F`` (truncated at curvature
    ``<= newton_min_curvature``) and a backtracking line search from the full Newton step
    (:func:`metaloop.core.implicit.proximal_newton_cg`; ``inner_lr`` and ``inner_line_search`` do
    not apply). Its step adapts to the curvature's scale, so a sharper support loss neither
    destabilises it (plain GD) nor starves it of accepted steps (GD with backtracking)."""

    supported_strategies = ("auto", "loop", "vmap")

    def __init__(
        self,
        model: nn.Module,
        *,
        lam: float = 1.0,
        cg_steps: int = 5,
        cg_lam: float | None = None,
        cg_min_curvature: float | None = 0.0,
        inner_lr: float = 0.1,
        inner_steps: int = 10,
        inner_line_search: bool = False,
        meta_gradient: str = "implicit",
        inner_solver: str = "gd",
        newton_cg_steps: int = 5,
        newton_min_curvature: float | None = 0.0,
        newton_backtracks: int = 8,
        **kwargs,
    ) -> None:
        if lam <= 0 or cg_steps < 1:
            raise ValueError(f"lam must be > 0 and cg_steps >= 1, got {lam} and {cg_steps}")
        if cg_lam is not None and cg_lam <= 0:
            raise ValueError(f"cg_lam must be > 0 (or None for lam), got {cg_lam}")
        if cg_min_curvature is not None and cg_min_curvature < 0:
            raise ValueError(f"cg_min_curvature must be >= 0 (or None), got {cg_min_curvature}")
        if meta_gradient not in ("implicit", "unrolled"):
            raise ValueError(f"meta_gradient must be 'implicit' or 'unrolled', got {meta_gradient!r}")
        if kwargs.get("checkpoint_steps"):
            raise ValueError(
                "checkpoint_steps does not apply to iMAML: its implicit meta-gradient keeps no "
                "inner-step graph (memory is already independent of inner_steps)"
            )
        if inner_solver not in ("gd", "newton_cg"):
            raise ValueError(f"inner_solver must be 'gd' or 'newton_cg', got {inner_solver!r}")
        if inner_solver == "newton_cg" and meta_gradient != "implicit":
            raise ValueError("meta_gradient='unrolled' differentiates the GD solve; "
                             "it is not implemented for inner_solver='newton_cg'")
        if newton_cg_steps < 1 or newton_backtracks < 0:
            raise ValueError(f"newton_cg_steps must be >= 1 and newton_backtracks >= 0, got "
                             f"{newton_cg_steps} and {newton_backtracks}")
        if kwargs.get("first_order"):
            raise ValueError("iMAML's meta-gradient is implicit; first_order does not apply")
        super().__init__(model, inner_lr=inner_lr, inner_steps=inner_steps, **kwargs)
        self.lam = float(lam)
        self.cg_steps = int(cg_steps)
        self.cg_lam = self.lam if cg_lam is None else float(cg_lam)
        self.cg_min_curvature = None if cg_min_curvature is None else float(cg_min_curvature)
        self.inner_line_search = bool(inner_line_search)
        self.meta_gradient = meta_gradient
        self.inner_solver = inner_solver
        self.newton_cg_steps = int(newton_cg_steps)
        self.newton_min_curvature = None if newton_min_curvature is None else float(newton_min_curvature)
        self.newton_backtracks = int(newton_backtracks)

    def _split(self, params: Params) -> tuple[Params, Params]:
        adapted = {n: params[n] for n in self.adapted_names}
        return adapted, {n: p for n, p in params.items() if n not in adapted}

    def _losses(self, rest_frozen: Params, x: Tensor, y: Tensor):
        def loss(adapted: Params, rest: Params) -> Tensor:
            return self.loss(self.forward_fn({**rest_frozen, **rest, **adapted}, x), y)

        return loss

    def _solve_inner(self, theta: Params, x: Tensor, y: Tensor, steps: int) -> Params:
        """Gradient descent on the proximal objective, graph-free (Eq. 4), with the Armijo
        backtracking of :func:`proximal_descent` where ``inner_line_search``; or ``steps``
        Newton-CG steps (:func:`proximal_newton_cg`) where ``inner_solver == "newton_cg"``."""
        anchor, rest = self._split(theta)
        support = self._losses({}, x, y)
        if self.inner_solver == "newton_cg":
            phi = proximal_newton_cg(
                lambda p: support(p, rest), anchor, self.lam, steps, self.newton_cg_steps,
                self.newton_min_curvature, self.newton_backtracks,
            )
            return {**rest, **phi}
        vg = torch.func.grad_and_value(support)

        def value_and_grad(phi: Params):
            g, value = vg(phi, rest)
            return value, g

        phi = proximal_descent(
            value_and_grad, anchor, self.inner_lr, self.lam, steps, self.inner_line_search
        )
        return {**rest, **phi}

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None) -> Params:
        steps = (self.inner_steps if self.training else self.eval_steps) if steps is None else steps
        theta = {n: p.detach() for n, p in self.meta_params().items()}
        with torch.no_grad():
            return self._solve_inner(theta, support_x, support_y, steps)

    def _task(self, theta: Params, sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor):
        phi_all = self._solve_inner(theta, sx, sy, self.inner_steps)
        phi, _ = self._split(phi_all)
        _, rest = self._split(theta)
        trainable = {n: p for n, p in rest.items() if n in self._trainable}
        frozen = {n: p for n, p in rest.items() if n not in trainable}
        return implicit_task_gradients(
            self._losses(frozen, sx, sy),
            self._losses(frozen, qx, qy),
            phi,
            trainable,
            self.lam,
            self.cg_steps,
            system_lam=self.cg_lam,
            min_curvature=self.cg_min_curvature,
        )

    def _unrolled_task(self, params: Params, sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor):
        """Query loss after the inner solve, differentiable through every step."""
        anchor, rest = self._split(params)
        support = self._losses({}, sx, sy)

        def value_and_grad(phi: Params):
            value = support(phi, rest)
            grads = torch.autograd.grad(value, list(phi.values()), create_graph=True)
            return value, dict(zip(phi, grads, strict=True))

        phi = proximal_descent(
            value_and_grad, anchor, self.inner_lr, self.lam, self.inner_steps, self.inner_line_search
        )
        return self.loss(self.forward_fn({**rest, **phi}, qx), qy)

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        if not self.training:
            return super().meta_loss(batch)
        if self.meta_gradient == "unrolled":
            params = self.meta_params()
            return torch.stack([
                self._unrolled_task(params, batch.support_x[i], batch.support_y[i],
                                    batch.query_x[i], batch.query_y[i])
                for i in range(len(batch))
            ]).mean()
        strategy = resolve_strategy(self, batch, self.supported_strategies)
        params = self.meta_params()
        self._trainable = {n for n, p in params.items() if p.requires_grad}
        theta = {n: p.detach() for n, p in params.items()}
        data = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
        if strategy == "vmap":
            values, v, g = torch.func.vmap(
                lambda *d: self._task(theta, *d), randomness="different"
            )(*data)
            v = {n: t.mean(0) for n, t in v.items()}
            g = {n: t.mean(0) for n, t in g.items()}
        else:
            outs = [self._task(theta, *(d[i] for d in data)) for i in range(len(batch))]
            values = torch.stack([o[0] for o in outs])
            v = {n: torch.stack([o[1][n] for o in outs]).mean(0) for n in outs[0][1]}
            g = {n: torch.stack([o[2][n] for o in outs]).mean(0) for n in outs[0][2]}
        grads = {**v, **g}
        surrogate = sum((params[n] * grads[n].detach()).sum() for n in grads)
        return values.detach().mean() + surrogate - surrogate.detach()

