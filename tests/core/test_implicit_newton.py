"""The Newton-CG (Hessian-free) proximal solver of iMAML: metaloop.core.implicit.proximal_newton_cg."""

import torch

from metaloop.core.implicit import proximal_newton_cg

f64 = torch.float64


def _spd(n, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g, dtype=f64)
    return a @ a.T + 0.1 * torch.eye(n, dtype=f64), torch.randn(n, generator=g, dtype=f64)


def _quadratic(q, c):
    """``L_s(w) = 1/2 (w - c)^T Q (w - c)``."""
    return lambda p: 0.5 * (p["w"] - c) @ q @ (p["w"] - c)


def test_one_newton_step_solves_a_convex_quadratic_proximal_problem_exactly():
    """With as many CG iterations as dimensions, one Newton step from theta lands on the closed-form
    proximal solution phi* = (Q + lam I)^-1 (Q c + lam theta), whatever the curvature's scale: a
    Hessian 1000x sharper, where GD at step 0.1 would diverge, changes nothing."""
    n, lam = 6, 2.0
    q, c = _spd(n, 0)
    theta = {"w": torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=f64)}
    for scale in (1.0, 1000.0):
        qs = scale * q
        exact = torch.linalg.solve(qs + lam * torch.eye(n, dtype=f64), qs @ c + lam * theta["w"])
        phi = proximal_newton_cg(_quadratic(qs, c), theta, lam, steps=1, cg_steps=n)
        assert torch.allclose(phi["w"], exact, rtol=1e-9, atol=1e-9)
        # more steps stay there (the gradient is ~0, the full step is accepted)
        phi = proximal_newton_cg(_quadratic(qs, c), theta, lam, steps=3, cg_steps=n)
        assert torch.allclose(phi["w"], exact, rtol=1e-9, atol=1e-9)


def _double_well(p):
    """A non-convex loss: ``sum (w^2 - 1)^2 + 0.3 * w0 * w1`` (curvature -4 at w = 0)."""
    w = p["w"]
    return ((w**2 - 1) ** 2).sum() + 0.3 * w[0] * w[1]


def _prox(theta, lam, phi):
    return float(_double_well(phi) + 0.5 * lam * ((phi["w"] - theta["w"]) ** 2).sum())


def test_newton_cg_never_raises_the_objective_on_a_non_convex_problem():
    """lam = 0.5 leaves F with negative curvature (down to -4 + 0.5) around theta, so the Newton
    system is indefinite there: CG is truncated (Steihaug) or falls back to steepest descent, and
    the line search keeps every step a decrease; the solve still reaches a stationary point."""
    lam = 0.5
    for start in ([0.05, -0.02], [0.0, 0.0], [1.5, -0.3], [0.3, 0.9]):
        theta = {"w": torch.tensor(start, dtype=f64)}
        values = [_prox(theta, lam, proximal_newton_cg(_double_well, theta, lam, k, cg_steps=2))
                  for k in range(25)]
        assert all(b <= a for a, b in zip(values, values[1:], strict=False)), values
        phi = proximal_newton_cg(_double_well, theta, lam, 25, cg_steps=2)
        def prox(p, theta=theta):
            return _double_well(p) + 0.5 * lam * ((p["w"] - theta["w"]) ** 2).sum()

        grad = torch.func.grad(prox)(phi)
        assert grad["w"].norm() < 1e-8, (start, grad)


def test_newton_cg_is_per_task_under_vmap():
    """Masks, not branches: a batch of problems (one convex, one with negative curvature at theta)
    gives, per task, what solving it alone gives."""
    lam, n = 0.5, 2
    thetas = torch.tensor([[0.05, -0.02], [1.5, -0.3]], dtype=f64)

    def solve(t):
        return proximal_newton_cg(_double_well, {"w": t}, lam, 6, cg_steps=n)["w"]

    both = torch.func.vmap(solve)(thetas)
    for i in range(len(thetas)):
        assert torch.allclose(both[i], solve(thetas[i]), rtol=0, atol=1e-12)
