"""``metaloop demo``: the embedded default job (MAML on sinusoids), see :mod:`metaloop.demo`."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from metaloop.demo import DemoConfig

    d = DemoConfig()
    parser = subparsers.add_parser(
        "demo", help="meta-train MAML on sinusoids (no data needed), report MSE before/after adaptation",
        description="Meta-train MAML on the sinusoid task family (Finn et al. 2017), print the MSE on "
                    "held-out tasks before and after adaptation, and write a plot of adapted curves.")
    for flag, default, text in (("--iterations", d.iterations, "meta-iterations"),
                                ("--meta-batch", d.meta_batch, "tasks per meta-iteration"),
                                ("--shots", d.shots, "support points K"),
                                ("--episodes", d.episodes, "held-out test tasks")):
        parser.add_argument(flag, type=int, default=default, help=f"{text} (default {default})")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--out", default=d.out, help=f"output folder ({d.out})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metaloop.demo import DemoConfig, run_demo

    for name in ("iterations", "meta_batch", "shots", "episodes"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    run_demo(DemoConfig(iterations=args.iterations, meta_batch=args.meta_batch, shots=args.shots,
                        episodes=args.episodes, seed=args.seed, out=args.out))
    return 0
