"""Reproduce the model-based rows (MANN, SNAIL, Meta Networks, Hebbian) on Omniglot, 28x28.

    OMP_NUM_THREADS=1 python benchmarks/repro_modelbased.py metaloop/presets/hebbian_omniglot_5w1s.yaml \
        [--minutes 30] [--iterations N] [--out results/hebbian_5w1s.json]

Meta-trains on the Vinyals train split, selects the best state on fixed meta-val episodes, then
scores fixed meta-test episodes with ``metaloop.evaluate`` (mean ± 95 % CI). ``--minutes`` bounds the
training wall time (partial runs are reported as such: the JSON records iterations done). CPU time
(process time) is recorded next to wall time.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from metaloop.algorithms import get_algorithm
from metaloop.data import load_omniglot
from metaloop.data.base import Splits
from metaloop.engine.loop import meta_train
from metaloop.evaluate import evaluate
from metaloop.modelbased.instance_protocol import evaluate_instances
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler
from metaloop.tasks.seeding import derive_seed


def load_splits(root: str | None, image_size: int) -> Splits:
    return load_omniglot(root, image_size=image_size, split="vinyals")


def build(preset: dict) -> torch.nn.Module:
    kwargs = dict(preset.get("model", {}))
    return get_algorithm(preset["algorithm"])(**kwargs)


def run(preset: dict, minutes: float, iterations: int | None, out: Path | None,
        weights: Path | None = None) -> dict:
    torch.manual_seed(preset.get("seed", 0))
    splits = load_splits(preset.get("data"), preset.get("image_size", 28))
    ways, shots = preset["ways"], preset["shots"]
    train = FewShotSampler(splits.train, ways, shots, preset.get("train_queries", 5))
    val = EpisodeSet.generate(FewShotSampler(splits.val, ways, shots, 5), preset.get("val_episodes", 200), 1)
    test = EpisodeSet.generate(FewShotSampler(splits.test, ways, shots, preset.get("test_queries", 5)),
                               preset.get("test_episodes", 1000), 2)
    algorithm = build(preset)
    if weights is not None:  # continue from (or, with --iterations 0, only score) saved weights
        algorithm.load_state_dict(torch.load(weights))
    optimizer = torch.optim.Adam(algorithm.parameters(), lr=preset.get("lr", 1e-3))
    total = preset["iterations"] if iterations is None else iterations
    every = preset.get("val_every", 250)
    log = {"preset": preset, "validations": [], "iterations_done": 0}
    best, best_state = -1.0, None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    done, chunk = 0, 0
    while done < total and time.perf_counter() - wall0 < minutes * 60:
        n = min(every, total - done)
        history = meta_train(algorithm, train, iterations=n, meta_batch=preset.get("meta_batch", 16),
                             optimizer=optimizer, seed=derive_seed(preset.get("seed", 0), chunk),
                             val_episodes=val, val_every=n, grad_clip=preset.get("grad_clip"))
        done, chunk = done + n, chunk + 1
        _, acc, ci = history.validations[-1]
        loss = float(np.mean(history.train_loss))
        log["validations"].append({"iteration": done, "val_acc": acc, "val_ci95": ci, "train_loss": loss,
                                   "wall_s": time.perf_counter() - wall0})
        print(f"it {done:6d}  loss {loss:.3f}  val {100 * acc:.2f} ± {100 * ci:.2f}  "
              f"{time.perf_counter() - wall0:.0f}s", flush=True)
        if acc > best:
            best, best_state = acc, copy.deepcopy(algorithm.state_dict())
        log["iterations_done"] = done
    log["train_wall_s"] = time.perf_counter() - wall0
    log["train_cpu_s"] = time.process_time() - cpu0
    log["complete"] = done >= total
    if best_state is not None:
        algorithm.load_state_dict(best_state)
    cpu1 = time.process_time()
    result = evaluate(algorithm, test)
    log["test"] = result.to_dict()
    log["test_cpu_s"] = time.process_time() - cpu1
    if "instance_protocol" in preset:  # Santoro et al. Table 1: accuracy by presentation
        proto = preset["instance_protocol"]
        sampler = FewShotSampler(splits.test, proto["ways"], proto["instances"], 0)
        g = torch.Generator().manual_seed(3)
        batch = sampler.sample_batch(proto["episodes"], g)
        log["instance_accuracy"] = evaluate_instances(algorithm, batch, g)
        print(f"per-instance accuracy: {log['instance_accuracy']}", flush=True)
    print(f"TEST {preset['algorithm']} {ways}-way {shots}-shot: {result.summary()} "
          f"after {done}/{total} iterations", flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(log, indent=2))
        torch.save(algorithm.state_dict(), out.with_suffix(".pt"))
    return log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("preset", type=Path)
    parser.add_argument("--minutes", type=float, default=float("inf"), help="training wall-time bound")
    parser.add_argument("--iterations", type=int, default=None, help="override the preset's iterations")
    parser.add_argument("--out", type=Path, default=None, help="JSON log (+ .pt weights) path")
    parser.add_argument("--weights", type=Path, default=None, help="start from saved weights (.pt)")
    parser.add_argument("--smoke", action="store_true", help="2 iterations, 5 val/test episodes")
    args = parser.parse_args()
    preset = yaml.safe_load(args.preset.read_text())
    if args.smoke:
        preset.update(iterations=2, val_every=2, val_episodes=5, test_episodes=5)
        if "instance_protocol" in preset:
            preset["instance_protocol"]["episodes"] = 2
    run(preset, args.minutes, args.iterations, args.out, args.weights)


if __name__ == "__main__":
    main()
