"""Does iMAML's CG meet non-positive curvature? Per task: the Rayleigh quotients of CG's directions.

    python benchmarks/imaml_cg_probe.py [WEIGHTS|fresh] [--tasks 8] [--cg 5]

For each training task of one fixed batch it solves the 16-step proximal problem from the given
weights, runs *unguarded* CG on ``(I + H/lam) v = g`` (g: query gradient at phi) and prints
``|g|``, ``|v|``, their ratio, and ``p^T A p / p^T p`` for every CG direction ``p``. A quotient at
or below zero means ``A`` is not positive definite along ``p``; the unguarded step there is what
``IMAML(cg_min_curvature=...)`` now refuses to take.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.imaml_probe import DEFAULT_WEIGHTS, load_probe, probe_batch  # noqa: E402
from metaloop.core.implicit import _dot, conjugate_gradient  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights", nargs="?", default=DEFAULT_WEIGHTS)
    ap.add_argument("--preset", default="imaml_omniglot_5w1s")
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--cg", type=int, default=5)
    args = ap.parse_args(argv)
    _, sources, algo = load_probe(args.preset, args.weights)
    batch = probe_batch(sources, args.tasks)
    theta = {n: p.detach() for n, p in algo.meta_params().items()}
    lam = algo.lam
    for i in range(args.tasks):
        sx, sy, qx, qy = batch.support_x[i], batch.support_y[i], batch.query_x[i], batch.query_y[i]
        with torch.no_grad():
            phi = algo._solve_inner(theta, sx, sy, algo.inner_steps)
        g = torch.func.grad(algo._losses({}, qx, qy))(phi, {})
        support_grad = torch.func.grad(algo._losses({}, sx, sy))
        _, hvp = torch.func.vjp(lambda a, sg=support_grad: sg(a, {}), phi)

        quotients = []

        def matvec(u, hvp=hvp, quotients=quotients):  # CG calls it once per direction u = p
            (hu,) = hvp(u)
            au = {n: u[n] + hu[n] / lam for n in u}
            quotients.append(round(float(_dot(u, au) / _dot(u, u)), 3))
            return au

        x = conjugate_gradient(matvec, g, args.cg, min_curvature=None)  # unguarded, as trained before
        gn, xn = float(_dot(g, g) ** 0.5), float(_dot(x, x) ** 0.5)
        print(f"task {i}: |g| {gn:.3f} |v| {xn:.3f} ratio {xn / gn:.1f}  p'Ap/p'p per CG step {quotients}",
              flush=True)


if __name__ == "__main__":
    main()
