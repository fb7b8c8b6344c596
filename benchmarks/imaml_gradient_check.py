"""How close is iMAML's implicit meta-gradient to the exact derivative of the inner solve it used?

    python benchmarks/imaml_gradient_check.py [WEIGHTS] [--tasks 4] [--cg 1 5 20] [--lam-cg 2 4 10]

The tests check the implicit gradient where its theorem holds (exact inner minimiser, convex
quadratic inner problem). On Omniglot the inner problem is non-convex and solved by 16 GD steps, so
this script measures, per training task, the cosine between the implicit gradient (CG on
``I + H/lam``, several CG step counts and damped ``lam``) and the *unrolled* gradient
(autograd through the same 16 proximal GD steps, second order), beside the first-order gradient
(query gradient at phi*), with query accuracy before and after adaptation. WEIGHTS defaults to the
``repro_optim`` checkpoint of ``imaml_omniglot_5w1s``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.imaml_probe import (  # noqa: E402
    DEFAULT_WEIGHTS,
    load_probe,
    probe_batch,
    unrolled_gradient,
)
from metaloop.core.implicit import implicit_task_gradients  # noqa: E402


def flat(ts) -> torch.Tensor:
    return torch.cat([t.flatten() for t in ts])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights", nargs="?", default=DEFAULT_WEIGHTS)
    ap.add_argument("--preset", default="imaml_omniglot_5w1s")
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--cg", type=int, nargs="+", default=[1, 5, 20])
    ap.add_argument("--lam-cg", type=float, nargs="+", default=None,
                    help="lambda used in the CG system only (damping); default: the preset's")
    args = ap.parse_args(argv)
    _, sources, algo = load_probe(args.preset, args.weights)
    lams = args.lam_cg or [algo.lam]
    batch = probe_batch(sources, args.tasks)
    theta = {n: p.detach() for n, p in algo.meta_params().items()}
    steps, lr = algo.inner_steps, algo.inner_lr
    for i in range(args.tasks):
        sx, sy, qx, qy = batch.support_x[i], batch.support_y[i], batch.query_x[i], batch.query_y[i]
        with torch.no_grad():
            phi_star = algo._solve_inner(theta, sx, sy, steps)
            acc = [float((algo.forward_fn(p, qx).argmax(-1) == qy).float().mean()) for p in (theta, phi_star)]
        # the same proximal GD steps, differentiated (second order)
        unrolled = flat(unrolled_gradient(algo, theta, sx, sy, qx, qy, steps, lr, algo.lam,
                                              algo.inner_line_search).values())
        at_star = {n: t.clone().requires_grad_() for n, t in phi_star.items()}
        first_order = flat(torch.autograd.grad(F.cross_entropy(algo.forward_fn(at_star, qx), qy),
                                               list(at_star.values())))
        cosines = {}
        for lam in lams:
            for cg in args.cg:
                _, v, _ = implicit_task_gradients(algo._losses({}, sx, sy), algo._losses({}, qx, qy),
                                                  phi_star, {}, lam, cg)
                implicit = flat(v[n] for n in theta)
                cosines[f"lam{lam:g}/cg{cg}"] = round(float(F.cosine_similarity(unrolled, implicit, 0)), 3)
        fo = round(float(F.cosine_similarity(unrolled, first_order, 0)), 3)
        print(f"task {i}: query acc {acc[0]:.2f} -> {acc[1]:.2f} after {steps} steps; cosine to the "
              f"unrolled gradient: implicit {cosines}, first-order {fo}", flush=True)


if __name__ == "__main__":
    main()
