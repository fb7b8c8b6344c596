"""Reproduce the optimization-based papers from a preset: train, then 600 fixed test episodes.

    python benchmarks/repro_optim.py metaloop/presets/maml_sinusoid.yaml [--iterations N]
        [--out runs/repro_optim] [--eval-every 5000] [--resume]

Training runs in chunks of ``--eval-every`` iterations with one persistent outer optimizer; after
each chunk the checkpoint and a test evaluation (mean ± 95 % CI over the preset's fixed episodes,
CPU time) are appended to ``<out>/<preset>.jsonl``, so a run cut short still leaves an honest
partial curve, and ``--resume`` finishes it. Numbers are research numbers: seeds are fixed, the
test episodes never touch training.
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

from metaloop.algorithms import get_algorithm
from metaloop.engine.loop import meta_train
from metaloop.evaluate import evaluate
from metaloop.nets import MLP, Conv4
from metaloop.tasks.episode_set import EpisodeSet


def tf_maml_init(model: torch.nn.Module, std: float = 0.01) -> torch.nn.Module:
    """cbfinn/maml's fully connected init: weights truncated normal (std 0.01), zero biases."""
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            torch.nn.init.zeros_(m.bias)
    return model


def build_model(spec: dict, ways: int | None) -> torch.nn.Module:
    spec = dict(spec)
    name = spec.pop("name")
    init = spec.pop("init", "torch")
    if name == "mlp":
        model = MLP(1, 1, tuple(spec.get("hidden", (40, 40))))
        return tf_maml_init(model) if init == "maml_tf" else model
    if name == "conv4":
        return Conv4(out_features=ways, **spec)
    raise ValueError(f"unknown model {name!r} in preset; use 'mlp' or 'conv4'")


def task_sources(preset: dict):
    """(train source, test source, validation source or None) for the preset's data."""
    data, train, test = preset["data"], preset["train"], preset["eval"]
    if data["dataset"] == "sinusoid":
        from metaloop.tasks.regression import sinusoid_tasks

        return (
            sinusoid_tasks(train["shots"], train["queries"]),
            sinusoid_tasks(test["shots"], test["queries"]),
            None,
        )
    if data["dataset"] == "omniglot":
        from metaloop.data import load_omniglot  # written on the data branch
        from metaloop.tasks.sampler import FewShotSampler

        splits = load_omniglot(
            data.get("root"),
            image_size=data.get("image_size", 28),
            split=data.get("split", "vinyals"),
        )
        return (
            FewShotSampler(splits.train, train["ways"], train["shots"], train["queries"]),
            FewShotSampler(splits.test, test["ways"], test["shots"], test["queries"]),
            FewShotSampler(splits.val, test["ways"], test["shots"], test["queries"]),
        )
    raise ValueError(f"unknown dataset {data['dataset']!r}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("preset")
    ap.add_argument("--iterations", type=int, help="override the preset's iteration count")
    ap.add_argument("--eval-every", type=int, default=5000)
    ap.add_argument("--eval-episodes", type=int, help="override (default: the preset's 600)")
    ap.add_argument("--out", default="runs/repro_optim")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument(
        "--eval-only",
        action="store_true",
        help="evaluate the saved checkpoint (adds median and the count of diverged episodes)",
    )
    args = ap.parse_args(argv)

    preset = yaml.safe_load(Path(args.preset).read_text())
    name = Path(args.preset).stem
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log, ckpt = out / f"{name}.jsonl", out / f"{name}.pt"
    torch.manual_seed(preset.get("seed", 0))
    train_src, test_src, _ = task_sources(preset)
    model = build_model(preset["model"], preset["train"].get("ways"))
    algo = get_algorithm(preset["algorithm"])(model, **preset.get("algorithm_args", {}))
    tr = preset["train"]
    optimizer = torch.optim.Adam(algo.parameters(), lr=tr["lr"])
    done, cpu_used = 0, 0.0
    if (args.resume or args.eval_only) and ckpt.exists():
        state = torch.load(ckpt)
        algo.load_state_dict(state["algorithm"])
        optimizer.load_state_dict(state["optimizer"])
        done, cpu_used = state["iterations"], state["cpu_seconds"]
    ev = preset["eval"]
    episodes = EpisodeSet.generate(test_src, args.eval_episodes or ev["episodes"], ev["seed"])
    total = args.iterations or tr["iterations"]
    if args.eval_only:
        row = {"preset": name, "iterations": done, "train_cpu_s": round(cpu_used, 1)}
        for steps in ev["steps"]:
            res = evaluate(algo, episodes, steps=steps)
            finite = res.values[torch.isfinite(res.values)]
            row[f"{res.metric}@{steps}"] = [round(res.mean, 4), round(res.ci95, 4)]
            row[f"median@{steps}"] = round(float(res.values.median()), 4)
            if res.metric == "mse":  # an episode whose loss grew past 10x the mean of the rest
                row[f"diverged@{steps}"] = int(
                    (res.values > 10 * finite.median().clamp_min(1)).sum()
                    + (~torch.isfinite(res.values)).sum()
                )
        print(json.dumps(row), flush=True)
        return
    while done < total:
        chunk = min(args.eval_every, total - done)
        cpu0 = time.process_time()
        meta_train(
            algo,
            train_src,
            iterations=chunk,
            meta_batch=tr["meta_batch"],
            optimizer=optimizer,
            seed=preset.get("seed", 0) * 1_000_003 + done,
        )
        cpu_used += time.process_time() - cpu0
        done += chunk
        torch.save(
            {
                "algorithm": algo.state_dict(),
                "optimizer": optimizer.state_dict(),
                "iterations": done,
                "cpu_seconds": cpu_used,
            },
            ckpt,
        )
        row = {"preset": name, "iterations": done, "train_cpu_s": round(cpu_used, 1)}
        for steps in ev["steps"]:
            res = evaluate(algo, episodes, steps=steps)
            row[f"{res.metric}@{steps}"] = [round(res.mean, 4), round(res.ci95, 4)]
        row["paper"] = preset.get("paper_result")
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
