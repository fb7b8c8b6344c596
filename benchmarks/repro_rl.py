"""Meta-RL reproductions: MAML-RL on 2D navigation (MAML App. C Table 4) and RL² on Bernoulli
bandits (Duan et al. 2016 Table 1), with their baselines and references.

    python benchmarks/repro_rl.py nav-train --mode maml --minutes 35 --out benchmarks/results/rl
    python benchmarks/repro_rl.py nav-train --mode pretrained --minutes 8 --out benchmarks/results/rl
    python benchmarks/repro_rl.py nav-eval --out benchmarks/results/rl
    python benchmarks/repro_rl.py bandit-train --arms 5 --horizon 10 --minutes 20 --out benchmarks/results/rl
    python benchmarks/repro_rl.py bandit-eval --arms 5 --horizon 10 --out benchmarks/results/rl

Training writes a checkpoint and a JSON-lines log under ``--out``; evaluation writes JSON results
and PNG plots. Settings come from the presets in metaloop/presets/ (``--preset``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

from metaloop.rl import MAMLRL, BernoulliBanditFamily, GaussianMLPPolicy, Navigation2DFamily
from metaloop.rl.rl2 import RL2PPO, RL2Policy, run_trials

PRESETS = Path(__file__).resolve().parents[1] / "metaloop" / "presets"


def load_preset(name: str) -> dict:
    return yaml.safe_load((PRESETS / f"{name}.yaml").read_text())


def nav_train(args: argparse.Namespace) -> None:
    cfg = load_preset(args.preset or "maml_rl_nav2d")
    torch.manual_seed(cfg["seed"])
    family = Navigation2DFamily(horizon=cfg["horizon"])
    policy = GaussianMLPPolicy(2, 2, tuple(cfg["hidden"]))
    steps = cfg["inner_steps"] if args.mode == "maml" else 0
    learner = MAMLRL(
        policy,
        family,
        inner_lr=cfg["inner_lr"],
        inner_steps=steps,
        rollouts=cfg["rollouts"],
        gamma=cfg["gamma"],
        gae_lambda=cfg["gae_lambda"],
        first_order=cfg["first_order"],
        max_kl=cfg["max_kl"],
        cg_iters=cfg["cg_iters"],
        cg_damping=cfg["cg_damping"],
        ls_max_steps=cfg["ls_max_steps"],
        ls_backtrack=cfg["ls_backtrack"],
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(cfg["seed"])
    log = open(out / f"nav_{args.mode}_log.jsonl", "w")
    start, cpu0 = time.time(), time.process_time()
    best = -float("inf")
    for it in range(cfg["meta_iterations"]):
        info = learner.meta_step(family.sample_tasks(cfg["meta_batch"], gen), gen)
        info.update(iteration=it, wall_s=time.time() - start, cpu_s=time.process_time() - cpu0)
        log.write(json.dumps(info) + "\n")
        log.flush()
        torch.save(policy.state_dict(), out / f"nav_{args.mode}_last.pt")
        if info["post_return"] > best:  # MAML App. A.2: the best-return model is kept
            best = info["post_return"]
            torch.save(policy.state_dict(), out / f"nav_{args.mode}_best.pt")
        if time.time() - start > 60 * args.minutes:
            break


def bandit_train(args: argparse.Namespace) -> None:
    cfg = load_preset(args.preset or f"rl2_bandit_k{args.arms}_n{args.horizon}")
    torch.manual_seed(cfg["seed"])
    family = BernoulliBanditFamily(cfg["arms"])
    policy = RL2Policy(1, cfg["arms"], cfg["hidden"])
    ppo = RL2PPO(
        policy,
        lr=cfg["lr"],
        gamma=cfg["gamma"],
        gae_lambda=cfg["gae_lambda"],
        clip=cfg["clip"],
        epochs=cfg["epochs"],
        minibatches=cfg["minibatches"],
        entropy_coef=cfg["entropy_coef"],
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"rl2_k{cfg['arms']}_n{cfg['horizon']}"
    gen = torch.Generator().manual_seed(cfg["seed"])
    log = open(out / f"{tag}_log.jsonl", "w")
    start, cpu0 = time.time(), time.process_time()
    for it in range(cfg["iterations"]):
        env = family.make(family.sample_tasks(cfg["trials_per_batch"], gen), gen)
        trials = run_trials(policy, env, cfg["horizon"], gen)
        info = ppo.update(trials, gen)
        info.update(
            iteration=it,
            regret=float(env.regret(trials.actions.T).mean()),
            wall_s=time.time() - start,
            cpu_s=time.process_time() - cpu0,
        )
        log.write(json.dumps(info) + "\n")
        log.flush()
        if it % 20 == 0 or time.time() - start > 60 * args.minutes:
            torch.save(policy.state_dict(), out / f"{tag}.pt")
        if time.time() - start > 60 * args.minutes:
            break
    torch.save(policy.state_dict(), out / f"{tag}.pt")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["nav-train", "nav-eval", "bandit-train", "bandit-eval"])
    parser.add_argument("--mode", choices=["maml", "pretrained"], default="maml")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--minutes", type=float, default=35.0)
    parser.add_argument("--arms", type=int, default=5)
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/rl")
    args = parser.parse_args(argv)
    if args.command == "nav-train":
        nav_train(args)
    elif args.command == "nav-eval":
        from benchmarks.repro_rl_eval import nav_eval

        nav_eval(args)
    elif args.command == "bandit-train":
        bandit_train(args)
    else:
        from benchmarks.repro_rl_eval import bandit_eval

        bandit_eval(args)


if __name__ == "__main__":
    main()
