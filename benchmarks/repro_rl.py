"""Meta-RL reproductions: MAML-RL on 2D navigation (MAML App. C Table 4) and RL² on Bernoulli
bandits (Duan et al. 2016 Table 1), with their baselines and references.

    python benchmarks/repro_rl.py nav-train --mode maml --minutes 35 --out benchmarks/results/rl
    python benchmarks/repro_rl.py nav-train --mode pretrained --minutes 8 --out benchmarks/results/rl
    python benchmarks/repro_rl.py nav-eval --out benchmarks/results/rl
    python benchmarks/repro_rl.py nav-train --preset maml_rl_cheetah_dir --minutes 60   # needs [mujoco]
    python benchmarks/repro_rl.py nav-eval --preset maml_rl_cheetah_dir
    python benchmarks/repro_rl.py bandit-train --arms 5 --horizon 10 --minutes 20 --out benchmarks/results/rl
    python benchmarks/repro_rl.py bandit-eval --arms 5 --horizon 10 --out benchmarks/results/rl

Training writes a checkpoint and a JSON-lines log under ``--out``; evaluation writes JSON results
and PNG plots. Settings come from benchmarks/configs/ (``--preset NAME``; meta-RL runs are not
``metaloop train`` runs, so they are not engine presets).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a checkout: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import yaml

from metaloop.io import atomic_torch_save, atomic_write_text
from metaloop.metrics import mean_ci95
from metaloop.rl import MAMLRL, BernoulliBanditFamily, GaussianMLPPolicy, Navigation2DFamily
from metaloop.rl.bandit_references import REFERENCES, play
from metaloop.rl.rl2 import RL2PPO, RL2Policy, restart_value_head, run_trials

PRESETS = Path(__file__).resolve().parents[1] / "benchmarks" / "configs"  # not metaloop train runs
#: bandit-train flags that override the preset key of the same name
BANDIT_OVERRIDES = ("lr", "entropy_coef", "gamma", "gae_lambda", "value_norm")


def load_preset(name: str) -> dict:
    return yaml.safe_load((PRESETS / f"{name}.yaml").read_text())


def build_family(cfg: dict):
    """The task family a MAML-RL preset names (``env``), with its horizon and seed."""
    if cfg["env"] == "navigation2d":
        return Navigation2DFamily(horizon=cfg["horizon"], action_scale=cfg.get("action_scale", 0.1))
    from metaloop.rl.half_cheetah import HalfCheetahDirFamily, HalfCheetahVelFamily

    families = {"half_cheetah_vel": HalfCheetahVelFamily, "half_cheetah_dir": HalfCheetahDirFamily}
    if cfg["env"] not in families:
        raise ValueError(f"unknown env {cfg['env']!r}; use navigation2d or one of {sorted(families)}")
    return families[cfg["env"]](horizon=cfg["horizon"], seed=cfg["seed"])


def build_learner(cfg: dict, policy: torch.nn.Module, family, mode: str) -> MAMLRL:
    """The preset's MAML-RL learner; ``mode="pretrained"`` is the same TRPO loop with no inner step."""
    steps = cfg["inner_steps"] if mode == "maml" else 0
    return MAMLRL(
        policy,
        family,
        inner_lr=cfg["inner_lr"] if steps else [],
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
        meta_objective=cfg.get("meta_objective", "last"),
    )


def nav_train(args: argparse.Namespace) -> None:
    cfg = load_preset(args.preset or "maml_rl_nav2d")
    torch.manual_seed(cfg["seed"])
    family = build_family(cfg)
    prefix = cfg.get("prefix", "nav")
    policy = GaussianMLPPolicy(family.obs_dim, family.action_dim, tuple(cfg["hidden"]),
                               min_std=cfg.get("min_std"))
    learner = build_learner(cfg, policy, family, args.mode)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    first, best, wall0, cpu_prev = 0, -float("inf"), 0.0, 0.0
    log_path = out / f"{prefix}_{args.mode}_log.jsonl"
    if args.resume:  # continue a bounded run: weights from _last.pt, counters from the log
        policy.load_state_dict(torch.load(out / f"{prefix}_{args.mode}_last.pt"))
        rows = [json.loads(line) for line in log_path.read_text().splitlines()]
        first, wall0, cpu_prev = rows[-1]["iteration"] + 1, rows[-1]["wall_s"], rows[-1]["cpu_s"]
        best = max(r["post_return"] for r in rows)
    gen = torch.Generator().manual_seed(cfg["seed"] + first)
    log = open(log_path, "a" if args.resume else "w")
    start, cpu0 = time.time() - wall0, time.process_time() - cpu_prev
    run_start = time.time()
    for it in range(first, cfg["meta_iterations"]):
        info = learner.meta_step(family.sample_tasks(cfg["meta_batch"], gen), gen)
        info.update(iteration=it, wall_s=time.time() - start, cpu_s=time.process_time() - cpu0)
        log.write(json.dumps(info) + "\n")
        log.flush()
        atomic_torch_save(out / f"{prefix}_{args.mode}_last.pt", policy.state_dict())
        if info["post_return"] > best:  # MAML App. A.2: the best-return model is kept
            best = info["post_return"]
            atomic_torch_save(out / f"{prefix}_{args.mode}_best.pt", policy.state_dict())
        if time.time() - run_start > 60 * args.minutes:
            break


MAML_TABLE4 = [-40.41, -11.68, -3.33, -3.23]  # MAML App. C Table 4, 0..3 policy-gradient steps


def nav_eval(args: argparse.Namespace) -> None:
    """Return before and after 1..3 policy-gradient steps on held-out goals, for MAML, the
    multi-task pretrained policy and a randomly initialised one (MAML §5.3 baselines)."""
    cfg = load_preset(args.preset or "maml_rl_nav2d")
    family = build_family(cfg)
    prefix = cfg.get("prefix", "nav")
    out = Path(args.out)
    goals = family.sample_tasks(cfg["eval_tasks"], torch.Generator().manual_seed(cfg["eval_seed"]))
    results = {}
    for name, ckpt in [
        ("maml (best)", f"{prefix}_maml_best.pt"),
        ("maml (last)", f"{prefix}_maml_last.pt"),
        ("pretrained", f"{prefix}_pretrained_last.pt"),
        ("from scratch", None),
    ]:
        torch.manual_seed(cfg["seed"] + 1)
        policy = GaussianMLPPolicy(family.obs_dim, family.action_dim, tuple(cfg["hidden"]),
                                   min_std=cfg.get("min_std"))
        if ckpt is not None:
            if not (out / ckpt).exists():
                continue
            policy.load_state_dict(torch.load(out / ckpt))
        learner = MAMLRL(policy, family, gamma=cfg["gamma"], gae_lambda=cfg["gae_lambda"])
        cpu0 = time.process_time()
        returns = learner.evaluate_adaptation(
            goals, cfg["eval_lrs"], cfg["eval_rollouts"], torch.Generator().manual_seed(cfg["eval_seed"])
        )
        cis = [mean_ci95(r) for r in returns]
        results[name] = {
            "mean": [m for m, _ in cis],
            "ci95": [c for _, c in cis],
            "eval_cpu_s": time.process_time() - cpu0,
        }
        log = out / f"{prefix}_{name.split()[0]}_log.jsonl"
        if ckpt is not None and log.exists():
            rows = [json.loads(line) for line in log.read_text().splitlines()]
            results[name].update(train_iterations=len(rows), train_cpu_s=rows[-1]["cpu_s"])
        print(name, " / ".join(f"{m:.2f} ± {c:.2f}" for m, c in cis))
    if cfg["env"] == "navigation2d":
        results["MAML paper (Table 4)"] = {"mean": MAML_TABLE4}
    elif "paper_returns" in cfg:
        results["MAML paper"] = {"mean": cfg["paper_returns"]}
    atomic_write_text((out / f"{prefix}_eval.json"), json.dumps(results, indent=1))
    plot_returns(results, Path(args.docs_img) / cfg.get("plot", "rl_nav2d_adaptation.png"),
                 cfg.get("title", "2D navigation (held-out goals)"))


def plot_returns(results: dict, path: Path, title: str = "2D navigation (held-out goals)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, r in results.items():
        steps = range(len(r["mean"]))
        style = {"ls": "--", "color": "k"} if "paper" in name else {"marker": "o", "capsize": 3}
        ax.errorbar(steps, r["mean"], yerr=r.get("ci95"), label=name, **style)
    ax.set(xlabel="policy-gradient steps", ylabel="average return", title=title)
    ax.set_xticks(range(max(len(r["mean"]) for r in results.values())))
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def bandit_eval(args: argparse.Namespace) -> None:
    """Regret of RL² and the references on the same held-out bandit tasks (Duan et al. Table 1)."""
    cfg = load_preset(args.preset or f"rl2_bandit_k{args.arms}_n{args.horizon}")
    k, n = cfg["arms"], cfg["horizon"]
    family = BernoulliBanditFamily(k)
    means = family.sample_tasks(cfg["eval_tasks"], torch.Generator().manual_seed(cfg["eval_seed"]))
    out = Path(args.out)
    curves, results = {}, {}

    def record(name: str, arms: torch.Tensor, env, cpu_s: float) -> None:
        per_step = env.means.max(1).values[:, None] - env.means.gather(1, arms)
        curves[name] = per_step.mean(0).cumsum(0)
        m, c = mean_ci95(per_step.sum(1))
        results[name] = {
            "regret": m,
            "ci95": c,
            "reward": n * float(env.means.max(1).values.mean()) - m,
            "cpu_s": cpu_s,
        }
        print(f"k={k} n={n} {name:10s} regret {m:7.2f} ± {c:.2f}")

    ckpt = out / f"rl2_k{k}_n{n}.pt"
    if ckpt.exists():
        policy = RL2Policy(1, k, cfg["hidden"])
        policy.load_state_dict(torch.load(ckpt))
        for greedy in (False, True):
            gen = torch.Generator().manual_seed(cfg["eval_seed"] + 1)
            env = family.make(means, gen)
            cpu0 = time.process_time()
            trials = run_trials(policy, env, n, gen, greedy=greedy)
            record("rl2 (greedy)" if greedy else "rl2", trials.actions.T, env, time.process_time() - cpu0)
        rows = [json.loads(line) for line in (out / f"rl2_k{k}_n{n}_log.jsonl").read_text().splitlines()]
        init_file = out / f"rl2_k{k}_n{n}_init.json"
        init = json.loads(init_file.read_text()) if init_file.exists() else {}
        for name in ("rl2", "rl2 (greedy)"):
            results[name].update(train_iterations=len(rows), train_cpu_s=rows[-1]["cpu_s"], **init)
    for name, make in REFERENCES.items():
        gen = torch.Generator().manual_seed(cfg["eval_seed"] + 1)
        env = family.make(means, gen)
        cpu0 = time.process_time()
        record(name, play(make(n), env, n, gen), env, time.process_time() - cpu0)
    atomic_write_text((out / f"bandit_k{k}_n{n}_eval.json"), json.dumps(results, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, curve in curves.items():
        ax.plot(range(1, n + 1), curve.numpy(), label=name)
    ax.set(xlabel="pull", ylabel="cumulative regret", title=f"Bernoulli bandits, k={k}, n={n}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(args.docs_img).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(args.docs_img) / f"rl_bandit_k{k}_n{n}_regret.png", dpi=120)


def bandit_train(args: argparse.Namespace) -> None:
    cfg = load_preset(args.preset or f"rl2_bandit_k{args.arms}_n{args.horizon}")
    # What this run changes from the preset; recorded beside the weights (and so in the eval JSON).
    overrides = {k: getattr(args, k) for k in BANDIT_OVERRIDES if getattr(args, k) is not None}
    cfg.update(overrides)
    torch.manual_seed(cfg["seed"])
    family = BernoulliBanditFamily(cfg["arms"])
    policy = RL2Policy(1, cfg["arms"], cfg["hidden"])
    init = {}
    if args.init:
        # Horizon curriculum: a policy trained on short trials already explores then exploits;
        # PPO from scratch at n=100 collapses to a history-blind arm choice (measured).
        init_path = Path(args.init)
        if not init_path.exists():
            raise SystemExit(f"--init {init_path}: no such file; train it first with bandit-train")
        policy.load_state_dict(torch.load(init_path))
        init_log = init_path.with_name(init_path.stem + "_log.jsonl")
        rows = init_log.read_text().splitlines() if init_log.exists() else []
        init = {
            "init": str(init_path),
            "init_iterations": len(rows),
            "init_cpu_s": json.loads(rows[-1])["cpu_s"] if rows else None,
        }
    ppo = RL2PPO(
        policy,
        lr=cfg["lr"],
        gamma=cfg["gamma"],
        gae_lambda=cfg["gae_lambda"],
        clip=cfg["clip"],
        epochs=cfg["epochs"],
        minibatches=cfg["minibatches"],
        entropy_coef=cfg["entropy_coef"],
        value_norm=cfg.get("value_norm"),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"rl2_k{cfg['arms']}_n{cfg['horizon']}"
    gen = torch.Generator().manual_seed(cfg["seed"])
    if init:
        init.update(lr=cfg["lr"], entropy_coef=cfg["entropy_coef"], value_warmup=args.value_warmup)
    if overrides:
        init["overrides"] = overrides
    atomic_write_text(out / f"{tag}_init.json", json.dumps(init))
    log = open(out / f"{tag}_log.jsonl", "w")
    start, cpu0 = time.time(), time.process_time()
    # After --init the value head was fitted to another horizon's returns (10 pulls vs 100), so it
    # is fitted alone for a few iterations before the shared GRU moves. Fine-tuning also wants a
    # lower --lr: at the preset's 1e-3 the warm-started policy got worse (training regret
    # 19.7 -> 29-36 within 140 iterations).
    warmup = args.value_warmup if args.init else 0
    trained_unnormalized = float(policy.value_std) == 1.0 and float(policy.value_mean) == 0.0
    if args.init and ppo.value_norm is not None and trained_unnormalized:
        # Normalized values: restart the head at the mean discounted return of a first batch
        # (the n = 10 head predicts returns ~14x too small; see restart_value_head). A policy
        # already trained with normalized values at this horizon keeps its head and statistics.
        env = family.make(family.sample_tasks(cfg["trials_per_batch"], gen), gen)
        restart_value_head(policy, run_trials(policy, env, cfg["horizon"], gen).rewards, cfg["gamma"])
    body = [p for n, p in policy.named_parameters() if not n.startswith("value.")]
    for it in range(cfg["iterations"]):
        env = family.make(family.sample_tasks(cfg["trials_per_batch"], gen), gen)
        trials = run_trials(policy, env, cfg["horizon"], gen)
        for p in body:
            p.requires_grad_(it >= warmup)
        info = ppo.update(trials, gen)
        info["value_only"] = it < warmup
        info.update(
            iteration=it,
            regret=float(env.regret(trials.actions.T).mean()),
            wall_s=time.time() - start,
            cpu_s=time.process_time() - cpu0,
        )
        log.write(json.dumps(info) + "\n")
        log.flush()
        if it % 20 == 0 or time.time() - start > 60 * args.minutes:
            atomic_torch_save(out / f"{tag}.pt", policy.state_dict())
        if time.time() - start > 60 * args.minutes:
            break
    atomic_torch_save(out / f"{tag}.pt", policy.state_dict())


def report(args: argparse.Namespace) -> None:
    """Markdown tables from the evaluation JSON files under ``--out`` (pasted into docs/rl.md)."""
    out = Path(args.out)
    nav = out / "nav_eval.json"
    if nav.exists():
        print("| policy | 0 steps | 1 step | 2 steps | 3 steps | meta-iterations | train CPU s |")
        print("|---|---|---|---|---|---|---|")
        for name, r in json.loads(nav.read_text()).items():
            cells = (
                [f"{m:.2f} ± {c:.2f}" for m, c in zip(r["mean"], r["ci95"], strict=True)]
                if "ci95" in r
                else [f"{m:.2f}" for m in r["mean"]]
            )
            extra = [
                str(r.get("train_iterations", "")),
                f"{r['train_cpu_s']:.0f}" if "train_cpu_s" in r else "",
            ]
            print(f"| {name} | " + " | ".join(cells + extra) + " |")
    names = ["rl2", "rl2 (greedy)", "random", "greedy", "ucb1", "thompson", "gittins"]
    print("\n| k | n | " + " | ".join(names) + " | RL² training |")
    print("|---|---|" + "---|" * (len(names) + 1))

    def kn(path: Path) -> tuple[int, int]:
        return int(path.name.split("_")[1][1:]), int(path.name.split("_")[2][1:])

    for path in sorted(out.glob("bandit_k*_n*_eval.json"), key=kn):
        r = json.loads(path.read_text())
        k, n = kn(path)
        cells = [f"{r[x]['regret']:.2f} ± {r[x]['ci95']:.2f}" if x in r else "—" for x in names]
        train = (
            f"{r['rl2']['train_iterations']} it, {r['rl2']['train_cpu_s']:.0f} CPU s"
            if "rl2" in r
            else "not trained"
        )
        if "rl2" in r and r["rl2"].get("init"):
            train += (
                f" (from {Path(r['rl2']['init']).stem}: {r['rl2']['init_iterations']} it, "
                f"{r['rl2']['init_cpu_s']:.0f} CPU s)"
            )
        print(f"| {k} | {n} | " + " | ".join(cells) + f" | {train} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["nav-train", "nav-eval", "bandit-train", "bandit-eval", "report"])
    parser.add_argument("--mode", choices=["maml", "pretrained"], default="maml")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--minutes", type=float, default=35.0)
    parser.add_argument("--arms", type=int, default=5)
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/rl")
    parser.add_argument("--resume", action="store_true", help="nav-train: continue from _last.pt")
    parser.add_argument(
        "--init", default=None, help="bandit-train: start from these RL² weights (horizon curriculum)"
    )
    parser.add_argument("--value-warmup", type=int, default=50,
                        help="bandit-train with --init: iterations that fit only the value head")
    parser.add_argument("--lr", type=float, default=None, help="bandit-train: override the preset's lr")
    parser.add_argument("--entropy-coef", type=float, default=None,
                        help="bandit-train: override the preset's entropy bonus")
    parser.add_argument("--gamma", type=float, default=None, help="bandit-train: override the discount")
    parser.add_argument("--gae-lambda", type=float, default=None,
                        help="bandit-train: override GAE's lambda (1 = Monte Carlo returns)")
    parser.add_argument("--value-norm", type=float, default=None,
                        help="bandit-train: PopArt step size for normalized value targets (e.g. 0.1)")
    parser.add_argument("--docs-img", default="docs/img", help="where evaluation plots go")
    args = parser.parse_args(argv)
    if args.command == "nav-train":
        nav_train(args)
    elif args.command == "nav-eval":
        nav_eval(args)
    elif args.command == "bandit-train":
        bandit_train(args)
    elif args.command == "report":
        report(args)
    else:
        bandit_eval(args)


if __name__ == "__main__":
    main()
