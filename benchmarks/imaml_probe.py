"""Shared setup of the iMAML diagnostics (imaml_gradient_check, imaml_cg_probe, imaml_diagnose).

Each builds the preset's learner, loads the given weights (a ``repro_optim`` checkpoint) or keeps
a fresh initialisation, and draws the same fixed meta-training batch, so that their numbers are
measured on identical tasks.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from metaloop.config import build, load_config  # noqa: E402
from metaloop.core.implicit import proximal_descent  # noqa: E402

DEFAULT_WEIGHTS = "runs/repro_optim/imaml_omniglot_5w1s.pt"


def load_probe(preset: str, weights: str, overrides: list[str] | None = None):
    """``(config, sources, algorithm)`` at ``weights`` (``"fresh"`` or a missing file: initial
    weights, said on stdout), single-threaded and seeded as every probe is."""
    torch.set_num_threads(1)
    config = load_config(preset, overrides or [])
    torch.manual_seed(0)
    sources = build.build_tasks(config)
    algo = build.build_algorithm(config, build.build_model(config))
    if weights != "fresh" and Path(weights).exists():
        algo.load_state_dict(torch.load(weights)["algorithm"])
    else:
        print(f"{weights}: measuring at initialisation", flush=True)
    return config, sources, algo


def probe_batch(sources, tasks: int, seed: int = 1):
    """The fixed meta-training batch the probes share (seed 1; imaml_diagnose also uses seed 2)."""
    return sources.train.sample_batch(tasks, torch.Generator().manual_seed(seed))


def unrolled_gradient(algo, theta, sx, sy, qx, qy, steps: int, lr: float, lam: float,
                      line_search: bool = False) -> dict:
    """The exact (second-order) derivative of the query loss through ``steps`` proximal GD steps
    from ``theta`` (``lam = 0``: MAML's plain GD; ``line_search``: the backtracking solve of
    :func:`metaloop.core.implicit.proximal_descent`, differentiated along the steps it accepted),
    the reference the implicit gradient approximates."""
    leaf = {n: t.clone().requires_grad_() for n, t in theta.items()}

    def value_and_grad(phi):
        value = F.cross_entropy(algo.forward_fn(phi, sx), sy)
        grads = torch.autograd.grad(value, list(phi.values()), create_graph=True)
        return value, dict(zip(phi, grads, strict=True))

    phi = proximal_descent(value_and_grad, leaf, lr, lam, steps, line_search)
    loss = F.cross_entropy(algo.forward_fn(phi, qx), qy)
    return dict(zip(leaf, torch.autograd.grad(loss, list(leaf.values())), strict=True))
