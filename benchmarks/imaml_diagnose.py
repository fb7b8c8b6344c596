"""Why does iMAML stall? Batch-level meta-gradient and inner-solve diagnostics.

    python benchmarks/imaml_diagnose.py [WEIGHTS|fresh] [--tasks 16] [--set key=value ...]

On one fixed meta-training batch (at the given weights, or a fresh init with ``fresh``) it prints

* the inner solve: support loss/accuracy before and after, query accuracy before and after, the
  relative distance ``||phi* - theta|| / ||theta||`` per parameter group (conv / norm / head);
* the batch-mean meta-gradients of: iMAML as trained (``algo.meta_loss``), first order (query
  gradient at phi*), the exact derivative of the same proximal GD solve (unrolled, second order),
  and MAML's (unrolled plain GD, no proximal term) -- with their norms and cosines;
* a descent check: the post-adaptation query loss on the same batch and on a second batch after a
  step ``theta - eta * grad / ||grad||`` along each direction (smaller is better).
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


def flat(d, names):
    return torch.cat([d[n].flatten() for n in names])


def group(name: str) -> str:
    if name.startswith("head"):
        return "head"
    return "norm" if ".1." in name else "conv"


def post_loss(algo, theta, batch):
    """Mean query loss / accuracy after the inner solve from ``theta``."""
    losses, accs = [], []
    with torch.no_grad():
        for i in range(len(batch)):
            phi = algo._solve_inner(theta, batch.support_x[i], batch.support_y[i], algo.inner_steps)
            out = algo.forward_fn(phi, batch.query_x[i])
            losses.append(float(F.cross_entropy(out, batch.query_y[i])))
            accs.append(float((out.argmax(-1) == batch.query_y[i]).float().mean()))
    return sum(losses) / len(losses), sum(accs) / len(accs)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights", nargs="?", default=DEFAULT_WEIGHTS)
    ap.add_argument("--preset", default="imaml_omniglot_5w1s")
    ap.add_argument("--tasks", type=int, default=16)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--no-unrolled", action="store_true")
    ap.add_argument("--eta", type=float, nargs="+", default=[0.01, 0.03])
    args = ap.parse_args(argv)
    _, sources, algo = load_probe(args.preset, args.weights, args.overrides)
    algo.train()
    print(f"weights={args.weights} lam={algo.lam} lr={algo.inner_lr} steps={algo.inner_steps} "
          f"cg={algo.cg_steps} cg_lam={algo.cg_lam} line_search={algo.inner_line_search}", flush=True)
    batch, batch2 = probe_batch(sources, args.tasks), probe_batch(sources, args.tasks, seed=2)
    theta = {n: p.detach() for n, p in algo.meta_params().items()}
    names = list(theta)
    steps, lr, lam = algo.inner_steps, algo.inner_lr, algo.lam

    # inner solve
    stats = []
    dist = {"conv": [0.0, 0.0], "norm": [0.0, 0.0], "head": [0.0, 0.0]}
    fo = {n: torch.zeros_like(t) for n, t in theta.items()}
    for i in range(len(batch)):
        sx, sy, qx, qy = batch.support_x[i], batch.support_y[i], batch.query_x[i], batch.query_y[i]
        with torch.no_grad():
            phi = algo._solve_inner(theta, sx, sy, steps)
            row = []
            for p in (theta, phi):
                s_out, q_out = algo.forward_fn(p, sx), algo.forward_fn(p, qx)
                row += [float(F.cross_entropy(s_out, sy)), float((s_out.argmax(-1) == sy).float().mean()),
                        float(F.cross_entropy(q_out, qy)), float((q_out.argmax(-1) == qy).float().mean())]
            stats.append(row)
            for n in names:
                dist[group(n)][0] += float((phi[n] - theta[n]).pow(2).sum()) / len(batch)
                dist[group(n)][1] += float(theta[n].pow(2).sum()) / len(batch)
        at = {n: t.clone().requires_grad_() for n, t in phi.items()}
        g = torch.autograd.grad(F.cross_entropy(algo.forward_fn(at, qx), qy), list(at.values()))
        for n, gi in zip(at, g, strict=True):
            fo[n] += gi / len(batch)
    m = torch.tensor(stats).mean(0).tolist()
    print(f"inner solve (batch mean): support loss {m[0]:.3f} -> {m[4]:.3f}, "
          f"support acc {m[1]:.2f} -> {m[5]:.2f}, "
          f"query loss {m[2]:.3f} -> {m[6]:.3f}, query acc {m[3]:.2f} -> {m[7]:.2f}")
    print("relative move ||phi-theta||/||theta||: " + ", ".join(
        f"{k} {(d[0] / max(d[1], 1e-12)) ** 0.5:.4f}" for k, d in dist.items()), flush=True)

    # iMAML as trained
    algo.zero_grad()
    algo.meta_loss(batch).backward()
    imaml = {n: p.grad.detach().clone() for n, p in algo.meta_params().items()}
    grads = {"imaml": imaml, "first_order": fo}
    if not args.no_unrolled:
        for key, lam_u in (("unrolled_prox", lam), ("maml_plain_gd", 0.0)):
            acc = {n: torch.zeros_like(t) for n, t in theta.items()}
            for i in range(len(batch)):
                u = unrolled_gradient(algo, theta, batch.support_x[i], batch.support_y[i], batch.query_x[i],
                                      batch.query_y[i], steps, lr, lam_u,
                                      line_search=algo.inner_line_search and lam_u > 0)
                for n in names:
                    acc[n] += u[n] / len(batch)
            grads[key] = acc
            print(f"  computed {key}", flush=True)
    vecs = {k: flat(g, names) for k, g in grads.items()}
    print("norms: " + ", ".join(f"{k} {float(v.norm()):.4g}" for k, v in vecs.items()))
    for grp in ("conv", "norm", "head"):
        sel = [n for n in names if group(n) == grp]
        norms = ", ".join(f"{k} {float(flat(g, sel).norm()):.4g}" for k, g in grads.items())
        print(f"  {grp} norms: " + norms)
    keys = list(vecs)
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            c = float(F.cosine_similarity(vecs[keys[a]], vecs[keys[b]], 0))
            print(f"cos({keys[a]}, {keys[b]}) = {c:.3f}")
    base = post_loss(algo, theta, batch), post_loss(algo, theta, batch2)
    print("descent check: at theta, post-adaptation query loss/acc same batch "
          f"{base[0][0]:.4f}/{base[0][1]:.3f}, "
          f"other batch {base[1][0]:.4f}/{base[1][1]:.3f}")
    for k, v in vecs.items():
        for eta in args.eta:
            step = v / v.norm()
            new, off = {}, 0
            for n in names:
                k_n = theta[n].numel()
                new[n] = theta[n] - eta * step[off:off + k_n].view_as(theta[n])
                off += k_n
            s, o = post_loss(algo, new, batch), post_loss(algo, new, batch2)
            print(f"  {k:14s} eta {eta:g}: same batch {s[0]:.4f}/{s[1]:.3f}, "
                  f"other batch {o[0]:.4f}/{o[1]:.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
