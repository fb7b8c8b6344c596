"""Reproduce a metric-learning paper row from a preset: train, select on meta-val, test on fixed episodes.

    python benchmarks/repro_metric.py metaloop/presets/protonet_omniglot_5w1s.yaml \
        [--budget-min 40] [--iterations N] [--resume] [--threads 1]

Training stops at the preset's iteration count or the time budget, whichever comes first; the
state (model, optimizer, schedule, curve) is checkpointed at every validation, so re-running the
same command with ``--resume`` continues where it stopped. The best meta-val state is scored on
fixed meta-test episodes (mean ± 95 % CI;
scored with ``evaluate_embedded``, equal to ``evaluate``); wall and CPU time are recorded with the validation
curve in ``benchmarks/results/<preset>.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import torch
import yaml

from metaloop.algorithms import get_algorithm
from metaloop.data.omniglot_splits import load_omniglot
from metaloop.metric.fast_eval import evaluate_embedded
from metaloop.metric.oneshot import WithinAlphabetSampler
from metaloop.metric.pairs import PairSampler
from metaloop.nets.conv4 import Conv4
from metaloop.nets.fast_conv4 import FastConv4
from metaloop.nets.koch import KochNet
from metaloop.nets.resnet12 import ResNet12
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler

RESULTS = Path(__file__).parent / "results"


def build_backbone(spec: dict | None, image_size: int):
    if spec is None:
        return None
    spec = dict(spec)
    name = spec.pop("name")
    if name == "conv4":
        fast = spec.pop("fast", True)
        net = Conv4(image_size=image_size, **spec)
        return FastConv4(net) if fast else net
    if name == "resnet12":
        return ResNet12(image_size=image_size, **spec)
    if name == "koch":
        return KochNet(image_size=image_size, **spec)
    raise ValueError(f"unknown backbone {name!r}; use conv4, resnet12 or koch")


def test_sampler(dataset, spec: dict):
    cls = WithinAlphabetSampler if spec.get("within_alphabet") else FewShotSampler
    return cls(dataset, spec["ways"], spec["shots"], spec["queries"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("preset")
    ap.add_argument("--budget-min", type=float, default=None, help="stop training after this long")
    ap.add_argument("--iterations", type=int, default=None, help="override the preset's count")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--root", default=None, help="data root (else $METALOOP_DATA, ../shared/data)")
    ap.add_argument("--test-episodes", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = yaml.safe_load(Path(args.preset).read_text())
    name = Path(args.preset).stem
    RESULTS.mkdir(exist_ok=True)
    ckpt_path, out_path = RESULTS / f"{name}.ckpt", RESULTS / f"{name}.json"
    data = cfg["data"]
    splits = load_omniglot(args.root, image_size=data["image_size"], split=data["split"])
    torch.manual_seed(cfg.get("seed", 0))
    algo = get_algorithm(cfg["algorithm"])(
        backbone=build_backbone(cfg.get("backbone"), data["image_size"]), **cfg.get("args", {})
    )
    tr = cfg["train"]
    iterations = args.iterations or tr["iterations"]
    opt = torch.optim.Adam(algo.parameters(), lr=tr["lr"], weight_decay=tr.get("weight_decay", 0.0))
    sched = torch.optim.lr_scheduler.StepLR(opt, tr.get("lr_step", 10**9), tr.get("lr_gamma", 1.0))
    g = torch.Generator().manual_seed(cfg.get("seed", 0))
    val = cfg["val"]
    val_set = EpisodeSet.generate(test_sampler(splits.val, val), val["episodes"], seed=1)
    state = {"iteration": 0, "curve": [], "best": None, "train_seconds": 0.0, "cpu_seconds": 0.0}
    best_state = None
    if args.resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        algo.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        g.set_state(ck["rng"])
        state, best_state = ck["state"], ck["best_state"]
    if tr.get("pairs"):
        pairs = PairSampler(splits.train, distort=tr.get("distort", True))
    else:
        sampler = FewShotSampler(splits.train, tr["ways"], tr["shots"], tr["queries"])
    wall0, cpu0 = time.perf_counter(), time.process_time()
    base_wall, base_cpu = state["train_seconds"], state["cpu_seconds"]
    budget = args.budget_min * 60 if args.budget_min else float("inf")
    losses = []
    algo.train()
    while state["iteration"] < iterations and time.perf_counter() - wall0 < budget:
        if tr.get("pairs"):
            x1, x2, same = pairs.sample(tr["batch"], g)
            loss = algo.verification_loss(x1, x2, same)
        else:
            loss = algo.meta_loss(sampler.sample_batch(tr.get("meta_batch", 1), g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        state["iteration"] += 1
        it = state["iteration"]
        if it % val["every"] == 0 or it == iterations:
            res = evaluate_embedded(algo, val_set)
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
            torch.save({"model": algo.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "rng": g.get_state(), "state": state,
                        "best_state": best_state}, ckpt_path)
    state["train_seconds"] = base_wall + time.perf_counter() - wall0
    state["cpu_seconds"] = base_cpu + time.process_time() - cpu0
    if best_state is not None:
        algo.load_state_dict(best_state)
    results = {}
    for key, spec in cfg["test"].items():
        episodes = args.test_episodes or spec["episodes"]
        test_set = EpisodeSet.generate(test_sampler(splits.test, spec), episodes, seed=spec["seed"])
        cpu = time.process_time()
        res = evaluate_embedded(algo, test_set)
        results[key] = {**res.to_dict(), "cpu_s": time.process_time() - cpu,
                        "paper": spec.get("paper")}
        print(f"{name} {key}: {res.summary()} (paper {spec.get('paper')})", flush=True)
    finished = state["iteration"] >= tr["iterations"]
    out = {"preset": args.preset, "iterations_done": state["iteration"],
           "preset_iterations": tr["iterations"], "finished": finished,
           "train_wall_s": state["train_seconds"],
           "train_cpu_s": state["cpu_seconds"], "threads": torch.get_num_threads(),
           "best_val": state["best"], "curve": state["curve"], "test": results,
           "command": f"python benchmarks/repro_metric.py {args.preset} --resume",
           "host_cpus": os.cpu_count()}
    out_path.write_text(json.dumps(out, indent=1))
    print(f"wrote {out_path}" + ("" if finished else f" (partial: {state['iteration']}/{tr['iterations']}"
                                 " iterations; re-run with --resume to continue)"))


if __name__ == "__main__":
    main()
