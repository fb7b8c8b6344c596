"""Is iMAML's plateau the inner problem? Stability of the proximal GD solve and test-time variants.

    python benchmarks/imaml_inner_probe.py [WEIGHTS|fresh] [--tasks 8] [--episodes 200]
        [--set key=value ...] [--no-variants | --variants STEPS,LR,LAM ...]

On the probes' fixed meta-training batch (``imaml_probe.probe_batch``) it prints, per task, for the
preset's inner solve of ``F(phi) = L_s(phi) + lam/2 ||phi - theta||^2`` (plain GD, or the
backtracking one where ``algorithm.inner_line_search`` is true; the preset's default since then,
``--set algorithm.inner_line_search=false`` gives plain GD):

* ``F`` after 0 / 4 / 8 / 16 / 64 steps, how many of the 16 trial steps the line search rejected,
  and the relative stationarity residual ``||grad F(phi_16)|| / ||grad F(theta)||`` (the implicit
  gradient assumes ``grad F = 0``);
* the largest eigenvalue ``h_max`` of the support-loss Hessian at ``phi_16`` (power iteration on
  Hessian-vector products; its sign-shifted run gives ``h_min``). GD with step ``eta`` on ``F`` is
  stable only where ``eta (h + lam) < 2``, i.e. ``h_max < 2/eta - lam``; beyond it the 16-step map
  expands that direction by ``|1 - eta (h_max + lam)|`` per step, so the solve is not a fixed
  point and its exact derivative explodes.

With ``--set algorithm.inner_solver=newton_cg`` the solve is the Newton-CG one
(:func:`metaloop.core.implicit.proximal_newton_cg`; "steps" are then Newton steps and "rejected"
counts Newton steps whose line search found no decrease). Each task's line also gives the CPU
time of its ``steps``-step solve (single thread), the cost to compare solvers at.

Then (unless ``--no-variants``) the test accuracy of the same weights on the preset's first
``--episodes`` fixed test episodes for other test-time inner settings (steps, step size, lambda).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.imaml_probe import DEFAULT_WEIGHTS, load_probe, probe_batch  # noqa: E402
from metaloop.config import build  # noqa: E402
from metaloop.core.implicit import _dot  # noqa: E402
from metaloop.evaluate import evaluate  # noqa: E402


def hessian_extremes(loss_fn, phi, iters: int = 30) -> tuple[float, float]:
    """``(h_max, h_min)`` of ``loss_fn``'s Hessian at ``phi`` by power iteration (the second run on
    ``H - h_max I``)."""
    _, hvp = torch.func.vjp(torch.func.grad(loss_fn), phi)
    g = torch.Generator().manual_seed(0)

    def power(shift: float) -> float:
        v = {n: torch.randn(t.shape, generator=g) for n, t in phi.items()}
        est = 0.0
        for _ in range(iters):
            norm = _dot(v, v).sqrt()
            v = {n: t / norm for n, t in v.items()}
            (hv,) = hvp(v)
            hv = {n: hv[n] - shift * v[n] for n in v}
            est = float(_dot(v, hv))
            v = hv
        return est + shift

    h_max = power(0.0)
    return h_max, power(h_max)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights", nargs="?", default=DEFAULT_WEIGHTS)
    ap.add_argument("--preset", default="imaml_omniglot_5w1s")
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--no-variants", action="store_true")
    ap.add_argument("--variants", nargs="+", metavar="STEPS,LR,LAM",
                    help="test-time settings to score (default: a sweep around the preset's)")
    args = ap.parse_args(argv)
    config, sources, algo = load_probe(args.preset, args.weights, args.overrides)
    algo.train()
    lr, lam, steps = algo.inner_lr, algo.lam, algo.inner_steps
    solver = getattr(algo, "inner_solver", "gd")
    detail = (f"newton_cg cg_steps={algo.newton_cg_steps} min_curvature={algo.newton_min_curvature} "
              f"backtracks={algo.newton_backtracks}" if solver == "newton_cg"
              else f"line_search={algo.inner_line_search}")
    print(f"weights={args.weights} lr={lr} lam={lam} steps={steps} solver={solver} {detail}: "
          f"plain GD stable iff h_max < 2/lr - lam = {2 / lr - lam:.1f}", flush=True)
    batch = probe_batch(sources, args.tasks)
    theta = {n: p.detach() for n, p in algo.meta_params().items()}
    for i in range(len(batch)):
        sx, sy = batch.support_x[i], batch.support_y[i]

        def sloss(p, sx=sx, sy=sy):
            return F.cross_entropy(algo.forward_fn(p, sx), sy)

        def prox(p):
            return sloss(p) + lam / 2 * sum((p[n] - theta[n]).pow(2).sum() for n in p)

        objs, path = {}, []
        for k in [*range(steps + 1), 64]:
            start = time.process_time()
            with torch.no_grad():
                phi = algo._solve_inner(theta, sx, sy, k)
            cpu = time.process_time() - start
            path.append(float(prox(phi)))
            if k in (0, 4, 8, steps, 64):
                objs[k] = path[-1]
            if k == steps:
                phi16, cpu16 = phi, cpu
        # a rejected (backtracked) step leaves phi, hence F, exactly unchanged
        rejected = sum(b == a for a, b in zip(path[:steps], path[1:steps + 1], strict=True))
        grad_f = torch.func.grad(prox)
        res0, res16 = (float(_dot(g, g).sqrt()) for g in (grad_f(theta), grad_f(phi16)))
        h_max, h_min = hessian_extremes(sloss, phi16)
        acc = float((algo.forward_fn(phi16, sx).argmax(-1) == sy).float().mean())
        print(f"task {i}: F " + " ".join(f"{k}:{v:.3f}" for k, v in objs.items())
              + f" | rejected {rejected}/{steps} | resid16/resid0 {res16 / res0:.3f} | "
              f"support acc {acc:.2f} | solve {1000 * cpu16:.0f} CPU ms | H at phi16: h_max {h_max:.1f} "
              f"h_min {h_min:.2f} | expansion/step "
              f"{abs(1 - lr * (h_max + lam)):.2f}", flush=True)
    if args.no_variants:
        return
    episodes = build.meta_test_episodes(config, sources).head(args.episodes)
    variants = [(steps, lr, lam), (32, lr, lam), (64, lr, lam), (16, 0.05, lam), (32, 0.05, lam),
                (16, 0.2, lam), (16, lr, 1.0), (16, lr, 4.0), (16, lr, 0.5)]
    if args.variants:
        variants = [(int(s), float(e), float(m)) for s, e, m in (v.split(",") for v in args.variants)]
    for s, eta, lm in variants:
        algo.inner_lr, algo.lam = eta, lm
        res = evaluate(algo, episodes, steps=s)
        print(f"test ({len(episodes)} episodes) steps {s} lr {eta} lam {lm}: "
              f"{100 * res.mean:.2f} +- {100 * res.ci95:.2f}", flush=True)


if __name__ == "__main__":
    main()
