"""Reproduce a metric-learning paper row from a preset: train, select on meta-val, test on fixed episodes.

    python benchmarks/repro_metric.py protonet_omniglot_5w1s \
        [--budget-min 40] [--iterations N] [--resume] [--threads 1] [--set key=value ...]
    python benchmarks/repro_metric.py benchmarks/configs/siamese_omniglot_lake.yaml   # pair training
    python benchmarks/repro_metric.py relation_omniglot_20w1s \
        --init-from benchmarks/results/relation_omniglot_5w1s.ckpt   # two-stage: warm start

Episodic presets (a name from ``metaloop presets`` or a YAML path) are read and validated by the
engine's ``load_config`` and built by ``metaloop.config.build`` as in ``metaloop train``; a Conv-4
with max-pooling and batch norm runs through ``FastConv4`` (same parameters and function, faster on
CPU; ``--no-fast`` turns it off). Siamese verification training (pairs, not episodes) reads its own
config under ``benchmarks/configs/`` (``--set`` there takes only keys the file holds, e.g.
``--set val.every=50``). Training stops at the iteration count or the time budget,
whichever comes first; the state (model, optimizer, schedule, curve) is checkpointed at every
validation, so re-running the same command with ``--resume`` continues where it stopped. The best
meta-val state is scored on fixed meta-test episodes (mean ± 95 % CI; scored with
``evaluate_embedded``, equal to ``evaluate``); wall and CPU time are recorded with the validation
curve in ``benchmarks/results/<preset>.json``. ``--init-from WEIGHTS`` starts a fresh run from
another run's weights (a ``.ckpt`` of this script gives its best meta-val state; ``repro_optim``
``.pt`` files and plain state dicts also work): every tensor whose name and shape match is copied,
the optimizer and schedule start fresh, and the JSON records the source (a two-stage row).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a checkout: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import yaml

from metaloop.config import build, load_config
from metaloop.engine.run import seed_everything
from metaloop.engine.snapshot import Snapshot, check_split, data_of, read_snapshot, save_snapshot
from metaloop.io import atomic_write_text
from metaloop.metric.fast_eval import evaluate_embedded
from metaloop.nets.conv4 import Conv4
from metaloop.nets.fast_conv4 import FastConv4
from metaloop.tasks.episode_set import EpisodeSet

RESULTS = Path(__file__).parent / "results"


@dataclass
class Plan:
    """Everything the training loop needs, from an engine preset or a pair-training config."""

    name: str
    algo: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    next_loss: object  # (generator) -> loss tensor
    val_set: EpisodeSet
    val_every: int
    iterations: int
    seed: int
    tests: dict  # key -> (callable returning an EpisodeSet, paper number)
    data: dict | None = None  # {"dataset", "split"} trained on: checked when weights are reused


def fast(backbone, enabled: bool, precision: str = "fp32"):
    """The FastConv4 view of a max-pool Conv-4 (same function in fp32); other backbones unchanged."""
    if enabled and isinstance(backbone, Conv4):
        try:
            return FastConv4(backbone, precision)
        except ValueError:  # stride-2 blocks: no fast view
            return backbone
    return backbone


def plan_from_preset(preset: str, overrides: list[str], use_fast: bool, precision: str = "fp32") -> Plan:
    config = load_config(preset, overrides)
    tr = config.training
    seed_everything(tr.seed)
    sources = build.build_tasks(config)
    algo = build.build_algorithm(config, fast(build.build_model(config), use_fast, precision))
    opt = build.build_optimizer(config, algo.parameters())
    sched = build.build_scheduler(config, opt) or torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    ways, shots, _ = config.evaluation.shape(config.tasks)
    key = f"{config.tasks.dataset}_{ways}w{shots}s"
    paper = config.paper.get("accuracy")

    def test_set(episodes=None):
        return build.meta_test_episodes(config, sources, episodes)

    def loss(g):
        return algo.meta_loss(sources.train.sample_batch(tr.meta_batch, g))

    name = config.name if precision == "fp32" else f"{config.name}_{precision}"
    return Plan(name, algo, opt, sched, loss, build.meta_val_episodes(config, sources), tr.val_every,
                tr.iterations, tr.seed, {key: (test_set, paper)},
                data_of(config.tasks))


def siamese_from_config(cfg: dict):
    """The Siamese learner of a pair config: Koch's network (105x105) or a Conv-4 (28x28)."""
    from metaloop.algorithms import get_algorithm
    from metaloop.nets.koch import KochNet

    spec = dict(cfg["backbone"])
    name, size = spec.pop("name"), cfg["data"]["image_size"]
    if name == "koch":
        # channels-last weights make oneDNN run the 105x105 convolutions ~12 % faster on CPU
        backbone = KochNet(image_size=size, **spec).to(memory_format=torch.channels_last)
    elif name == "conv4":
        backbone = FastConv4(Conv4(1, None, image_size=size, **spec))
    else:
        raise ValueError(f"pair config backbone.name must be 'koch' or 'conv4', got {name!r}")
    return get_algorithm(cfg["algorithm"])(backbone=backbone, **cfg.get("args", {}))


def pair_config(path: Path, overrides: list[str] = ()) -> tuple[dict, str]:
    """A pair-training config with ``--set key=value`` overrides applied, and the run's name.

    These configs have no schema, so an override must name a key the file already has (a typo would
    otherwise be trained on silently); ``name=...`` renames the run (its checkpoint and JSON).
    """
    from metaloop.config.presets import ConfigError, apply_override

    cfg, name = yaml.safe_load(path.read_text()), path.stem
    for assignment in overrides:
        key, has_value, value = (part.strip() for part in assignment.partition("="))
        if has_value and key == "name":
            name = value
            continue
        node, parts = cfg, key.split(".")
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if has_value and (not isinstance(node, dict) or parts[-1] not in node):
            raise ConfigError(f"--set {key}: {path.name} has no such key; pair configs take the keys "
                              f"they already hold (sections: {', '.join(cfg)})")
        apply_override(cfg, assignment)  # also refuses an assignment without '=', with the fix
    return cfg, name


def plan_from_pairs(path: Path, root: str | None, overrides: list[str] = ()) -> Plan:
    """Koch et al. (2015) verification training on balanced same/different pairs (not episodic)."""
    from metaloop.data.omniglot_splits import load_omniglot
    from metaloop.metric.oneshot import WithinAlphabetSampler
    from metaloop.metric.pairs import PairSampler
    from metaloop.tasks.sampler import FewShotSampler

    cfg, name = pair_config(path, overrides)
    data, tr, val = cfg["data"], cfg["train"], cfg["val"]
    splits = load_omniglot(root, image_size=data["image_size"], split=data["split"])
    torch.manual_seed(cfg.get("seed", 0))
    algo = siamese_from_config(cfg)
    opt = torch.optim.Adam(algo.parameters(), lr=tr["lr"], weight_decay=tr.get("weight_decay", 0.0))
    sched = torch.optim.lr_scheduler.StepLR(opt, tr.get("lr_step", 10**9), tr.get("lr_gamma", 1.0))
    pairs = PairSampler(splits.train, distort=tr.get("distort", True))

    def sampler(dataset, s):
        cls = WithinAlphabetSampler if s.get("within_alphabet") else FewShotSampler
        return cls(dataset, s["ways"], s["shots"], s["queries"])

    def loss(g):
        return algo.verification_loss(*pairs.sample(tr["batch"], g))

    def test_set(s):
        return lambda episodes=None: EpisodeSet.generate(sampler(splits.test, s), episodes or s["episodes"],
                                                         seed=s["seed"])

    tests = {key: (test_set(s), s.get("paper")) for key, s in cfg["test"].items()}
    val_set = EpisodeSet.generate(sampler(splits.val, val), val["episodes"], seed=1)
    return Plan(name, algo, opt, sched, loss, val_set, val["every"], tr["iterations"],
                cfg.get("seed", 0), tests, {"dataset": "omniglot", "split": data["split"]})


def warm_start(algo: torch.nn.Module, weights: Path, data: dict | None = None) -> dict:
    """Copy into ``algo`` the matching tensors of ``weights``; what was loaded and how it was trained."""
    from metaloop.engine.transfer import load_matching

    saved = read_snapshot(weights)
    check_split(saved, data, str(weights))
    state, info = saved.selected_state(), saved.info()
    # FastConv4 stores the Conv4 under ``conv4.``: match names with that segment dropped on both sides
    own = {k.replace(".conv4.", "."): k for k in algo.state_dict()}
    state = {own.get(k.replace(".conv4.", "."), k): v for k, v in state.items()}
    report = load_matching(algo, state)
    if report.missing or report.unexpected:
        raise ValueError(f"{weights} does not fit this learner: missing {report.missing[:5]}, "
                         f"unexpected {report.unexpected[:5]}")
    return {"init_from": str(weights), **{f"init_{k}": v for k, v in info.items()},
            "fresh": report.shape_mismatch}


def is_pair_config(preset: str) -> bool:
    path = Path(preset)
    return path.is_file() and bool((yaml.safe_load(path.read_text()) or {}).get("train", {}).get("pairs"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("preset", help="preset name or YAML path (or a pair-training config)")
    ap.add_argument("--budget-min", type=float, default=None, help="stop training after this long")
    ap.add_argument("--iterations", type=int, default=None, help="override the preset's count")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--root", default=None, help="data root (else $METALOOP_DATA, ../shared/data)")
    ap.add_argument("--test-episodes", type=int, default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config overrides, repeatable, as in metaloop train (pair configs: keys they "
                    "already hold, e.g. val.every=50; name=... renames the run)")
    ap.add_argument("--init-from", type=Path, default=None, metavar="WEIGHTS",
                    help="warm start a fresh run from these weights (ignored when --resume finds a "
                    "checkpoint)")
    ap.add_argument("--no-fast", action="store_true", help="plain Conv4 instead of the FastConv4 view")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="FastConv4 convolutions in bf16 autocast (results get a _bf16 suffix)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if is_pair_config(args.preset):
        plan = plan_from_pairs(Path(args.preset), args.root, args.overrides)
    else:
        overrides = ([f"tasks.root={args.root}"] if args.root else []) + args.overrides
        plan = plan_from_preset(args.preset, overrides, not args.no_fast, args.precision)
    algo, opt, sched, name = plan.algo, plan.opt, plan.sched, plan.name
    RESULTS.mkdir(exist_ok=True)
    ckpt_path, out_path = RESULTS / f"{name}.ckpt", RESULTS / f"{name}.json"
    iterations = args.iterations or plan.iterations
    g = torch.Generator().manual_seed(plan.seed)
    state = {"iteration": 0, "curve": [], "best": None, "train_seconds": 0.0, "cpu_seconds": 0.0}
    best_state = None
    if args.resume and ckpt_path.exists():
        snap = read_snapshot(ckpt_path)
        check_split(snap, plan.data, str(ckpt_path))
        algo.load_state_dict(snap.learner)
        opt.load_state_dict(snap.optimizer)
        sched.load_state_dict(snap.scheduler)
        g.set_state(snap.extra["rng"])
        state, best_state = snap.extra["state"], snap.best_state
        if args.init_from:
            print(f"--init-from ignored: resuming {ckpt_path}", flush=True)
    elif args.init_from:
        state["init"] = warm_start(algo, args.init_from, plan.data)
        print(f"warm start: {json.dumps(state['init'])}", flush=True)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    base_wall, base_cpu = state["train_seconds"], state["cpu_seconds"]
    budget = args.budget_min * 60 if args.budget_min else float("inf")
    losses = []
    algo.train()
    while state["iteration"] < iterations and time.perf_counter() - wall0 < budget:
        loss = plan.next_loss(g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        state["iteration"] += 1
        it = state["iteration"]
        if it % plan.val_every == 0 or it == iterations:
            res = evaluate_embedded(algo, plan.val_set)
            algo.train()
            state["train_seconds"] = base_wall + time.perf_counter() - wall0
            state["cpu_seconds"] = base_cpu + time.process_time() - cpu0
            point = {"iteration": it, "train_loss": sum(losses) / len(losses), "val": res.mean,
                     "val_ci95": res.ci95, "wall_s": round(state["train_seconds"], 1)}
            losses = []
            state["curve"].append(point)
            print(json.dumps(point), flush=True)
            if state["best"] is None or res.mean > state["best"]["val"]:
                state["best"] = point
                best_state = copy.deepcopy(algo.state_dict())
            save_snapshot(ckpt_path, Snapshot(
                learner=algo.state_dict(), iterations=it, cpu_seconds=state["cpu_seconds"],
                optimizer=opt.state_dict(), scheduler=sched.state_dict(), best_state=best_state,
                best_iteration=state["best"]["iteration"], extra={"rng": g.get_state(), "state": state},
                data=plan.data))
    state["train_seconds"] = base_wall + time.perf_counter() - wall0
    state["cpu_seconds"] = base_cpu + time.process_time() - cpu0
    if best_state is not None:
        algo.load_state_dict(best_state)
    results = {}
    for key, (make_test, paper) in plan.tests.items():
        test_set = make_test(args.test_episodes)
        cpu = time.process_time()
        res = evaluate_embedded(algo, test_set)
        results[key] = {**res.to_dict(), "cpu_s": time.process_time() - cpu, "paper": paper}
        print(f"{name} {key}: {res.summary()} (paper {paper})", flush=True)
    finished = state["iteration"] >= plan.iterations
    out = {"preset": args.preset, "iterations_done": state["iteration"],
           "preset_iterations": plan.iterations, "finished": finished,
           "train_wall_s": state["train_seconds"],
           "train_cpu_s": state["cpu_seconds"], "threads": torch.get_num_threads(),
           "best_val": state["best"], "curve": state["curve"], "test": results,
           **({"init": state["init"]} if state.get("init") else {}),
           "command": " ".join(["python benchmarks/repro_metric.py", args.preset,
                                *[f"--set {o}" for o in args.overrides],
                                *([f"--precision {args.precision}"] if args.precision != "fp32" else []),
                                "--resume"]),
           "host_cpus": os.cpu_count()}
    atomic_write_text(out_path, json.dumps(out, indent=1))
    print(f"wrote {out_path}" + ("" if finished else f" (partial: {state['iteration']}/{plan.iterations}"
                                 " iterations; re-run with --resume to continue)"))


if __name__ == "__main__":
    main()
