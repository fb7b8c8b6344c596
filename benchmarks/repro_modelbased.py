"""Reproduce the model-based rows (MANN, SNAIL, Meta Networks, Hebbian) on Omniglot, 28x28.

    OMP_NUM_THREADS=1 python benchmarks/repro_modelbased.py hebbian_omniglot_5w1s \
        [--minutes 30] [--iterations N] [--out results/hebbian_5w1s.json] [--resume] [--set key=value ...]

The preset (a name from ``metaloop presets`` or a YAML path) is read and validated by the engine's
``load_config`` and its objects come from ``metaloop.config.build``, exactly as ``metaloop train``
builds them. Meta-trains on the Vinyals train split, selects the best state on the preset's fixed
meta-val episodes, then scores its fixed meta-test episodes with ``metaloop.evaluate`` (mean ± 95 %
CI). ``--minutes`` bounds the training wall time (partial runs are reported as such: the JSON records
iterations done). CPU time (process time) is recorded next to wall time. For 5-way MANN presets,
Santoro et al.'s per-instance protocol (Table 1) is scored as well. The preset's outer scheduler
(``training.scheduler``) is applied per iteration. With ``--out``, ``<out>.ckpt`` (weights, outer
optimizer and scheduler, task-stream position, best meta-val state, log) is written atomically after
every validation, and ``--resume`` continues that run as if it had never stopped.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a checkout: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from metaloop.config import build, load_config
from metaloop.engine.checkpoint import capture_rng, restore_rng
from metaloop.engine.loop import meta_train
from metaloop.engine.run import seed_everything
from metaloop.engine.snapshot import Snapshot, check_split, data_of, read_snapshot, save_snapshot
from metaloop.engine.transfer import load_matching
from metaloop.evaluate import evaluate
from metaloop.io import atomic_write_text
from metaloop.modelbased.instance_protocol import evaluate_instances
from metaloop.tasks.sampler import FewShotSampler
from metaloop.tasks.seeding import derive_seed

#: Santoro et al. (2016) Table 1: 5 classes x 10 instances as one shuffled sequence, 100 episodes.
INSTANCE_PROTOCOL = {"ways": 5, "instances": 10, "episodes": 100, "seed": 3}
#: iterations between clock checks when training is bounded by ``--minutes``
SUBCHUNK = 25
SMOKE = ["training.iterations=2", "training.val_every=2", "training.val_episodes=5", "evaluation.episodes=5"]


def run(config, minutes: float, iterations: int | None, out: Path | None, weights: Path | None = None,
        instance_episodes: int | None = None, init_from: Path | None = None,
        init_rename: dict[str, str] | None = None, resume: bool = False) -> dict:
    tr = config.training
    seed_everything(tr.seed)
    sources = build.build_tasks(config)
    val = build.meta_val_episodes(config, sources)
    test = build.meta_test_episodes(config, sources)
    algorithm = build.build_algorithm(config, build.build_model(config))
    trained_on = data_of(config.tasks)
    if weights is not None:  # continue from (or, with --iterations 0, only score) saved weights
        saved = read_snapshot(weights)
        check_split(saved, trained_on, str(weights))
        algorithm.load_state_dict(saved.selected_state())
    transfer = None
    if init_from is not None:  # e.g. 5-way weights into the 20-way learner: all but the head
        snapshot = read_snapshot(init_from)  # any layout our scripts write
        check_split(snapshot, trained_on, str(init_from))
        saved = snapshot.selected_state()
        widen = getattr(algorithm, "widen_state", None)  # MANN, SNAIL: keep what fits across ways
        narrower = "output.weight" in saved and len(saved["output.weight"]) < getattr(algorithm, "ways", 0)
        if widen is not None and narrower:  # a ProtoNet's Conv-4 (--init-rename) has no head: as is
            saved = widen(saved)
            print(f"init from {init_from}: widened to {algorithm.ways} ways", flush=True)
        transfer = load_matching(algorithm, saved, init_rename)
        print(f"init from {init_from}: {transfer.summary()}", flush=True)
    optimizer = build.build_optimizer(config, algorithm.parameters())
    scheduler = build.build_scheduler(config, optimizer)  # training.scheduler: none / cosine / step
    total = tr.iterations if iterations is None else iterations
    every = tr.val_every
    log = {"preset": config.to_dict(), "validations": [], "iterations_done": 0}
    if transfer is not None:
        log["init_from"] = {"path": str(init_from), "fresh": transfer.shape_mismatch,
                            "loaded": len(transfer.loaded), "rename": init_rename or {}}
    # what a resumed run needs besides the weights: the outer optimizer and scheduler, where the
    # task stream stands (chunk), the global RNGs, the clocks, the best meta-val state and the log
    progress = {"done": 0, "chunk": 0, "cpu_s": 0.0, "wall_s": 0.0, "best": -1.0, "best_state": None}
    ckpt = None if out is None else out.with_suffix(".ckpt")
    if resume:
        if ckpt is None:
            raise SystemExit("--resume needs --out (the run's checkpoint is <out>.ckpt)")
        if ckpt.exists():
            saved = read_snapshot(ckpt)
            check_split(saved, trained_on, str(ckpt))
            algorithm.load_state_dict(saved.learner)
            optimizer.load_state_dict(saved.optimizer)
            if scheduler is not None and saved.scheduler is not None:
                scheduler.load_state_dict(saved.scheduler)
            progress = {**saved.extra["progress"], "best_state": saved.best_state}
            log = saved.extra["log"]
            if saved.extra.get("rng") is not None:  # e.g. the training-time support shuffles
                restore_rng(saved.extra["rng"], torch.device("cpu"))
            else:  # written before the RNGs were saved: resumable, not bit-exact
                print(f"{ckpt} has no RNG state: the resumed run is not bit-identical", flush=True)
            print(f"resumed {ckpt} at iteration {progress['done']}", flush=True)
        else:
            print(f"--resume: no checkpoint at {ckpt}, starting from scratch", flush=True)
    best, best_state, best_at = progress["best"], progress["best_state"], progress.get("best_iteration")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    done, chunk = progress["done"], progress["chunk"]
    while done < total and time.perf_counter() - wall0 < minutes * 60:
        n = min(every, total - done)
        # Each validation chunk is trained in pieces of SUBCHUNK iterations, seeded by (chunk,
        # piece), with the clock checked between pieces (one 250-iteration chunk of a 20-way preset
        # took > 39 minutes): bounded, unbounded and resumed runs draw the same tasks.
        losses, trained, part = [], 0, 0
        while trained < n and (trained == 0 or time.perf_counter() - wall0 < minutes * 60):
            m = min(SUBCHUNK, n - trained)
            history = meta_train(algorithm, sources.train, iterations=m, meta_batch=tr.meta_batch,
                                 optimizer=optimizer, scheduler=scheduler,
                                 seed=derive_seed(tr.seed, chunk, part), grad_clip=tr.grad_clip)
            losses += list(history.train_loss)
            trained, part = trained + m, part + 1
        done, chunk = done + trained, chunk + 1
        result = evaluate(algorithm, val)  # what meta_train's own validation computes
        acc, ci = result.mean, result.ci95
        loss = float(np.mean(losses))
        wall, lr = progress["wall_s"] + time.perf_counter() - wall0, optimizer.param_groups[0]["lr"]
        log["validations"].append({"iteration": done, "val_acc": acc, "val_ci95": ci, "train_loss": loss,
                                   "lr": lr, "wall_s": wall})
        print(f"it {done:6d}  loss {loss:.3f}  val {100 * acc:.2f} ± {100 * ci:.2f}  "
              f"lr {lr:.2e}  {wall:.0f}s", flush=True)
        if acc > best:
            best, best_state, best_at = acc, copy.deepcopy(algorithm.state_dict()), done
        log["iterations_done"] = done
        if ckpt is not None:  # atomically, after every validation: a stopped run loses one chunk
            cpu_s = progress["cpu_s"] + time.process_time() - cpu0
            state = {"done": done, "chunk": chunk, "best": best, "best_iteration": best_at, "cpu_s": cpu_s,
                     "wall_s": wall}
            save_snapshot(ckpt, Snapshot(
                learner=algorithm.state_dict(), iterations=done, cpu_seconds=cpu_s,
                optimizer=optimizer.state_dict(),
                scheduler=None if scheduler is None else scheduler.state_dict(),
                best_state=best_state, best_iteration=best_at,
                extra={"progress": state, "log": log, "rng": capture_rng(torch.device("cpu"))},
                data=trained_on))
    log["train_wall_s"] = progress["wall_s"] + time.perf_counter() - wall0
    log["train_cpu_s"] = progress["cpu_s"] + time.process_time() - cpu0
    log["best_iteration"] = best_at
    log["complete"] = done >= tr.iterations  # the preset's run, not just this invocation's bound
    if best_state is not None:
        algorithm.load_state_dict(best_state)
    cpu1 = time.process_time()
    result = evaluate(algorithm, test)
    log["test"] = result.to_dict()
    log["test_cpu_s"] = time.process_time() - cpu1
    proto = INSTANCE_PROTOCOL
    if config.algorithm.name == "mann" and config.tasks.ways == proto["ways"]:
        episodes = instance_episodes or proto["episodes"]
        sampler = FewShotSampler(sources.test.dataset, proto["ways"], proto["instances"], 0)
        g = torch.Generator().manual_seed(proto["seed"])
        log["instance_accuracy"] = evaluate_instances(algorithm, sampler.sample_batch(episodes, g), g)
        print(f"per-instance accuracy: {log['instance_accuracy']}", flush=True)
    ways, shots, _ = config.evaluation.shape(config.tasks)
    print(f"TEST {config.algorithm.name} {ways}-way {shots}-shot: {result.summary()} "
          f"after {done}/{total} iterations (paper {config.paper or 'n/a'})", flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(log, indent=2))
        # the selected weights alone (scoring, --weights, --init-from), with the split they know
        save_snapshot(out.with_suffix(".pt"), Snapshot(learner=algorithm.state_dict(), iterations=best_at,
                                                       cpu_seconds=log["train_cpu_s"], data=trained_on))
    return log


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("preset", help="preset name (metaloop presets) or YAML path")
    parser.add_argument("--minutes", type=float, default=float("inf"), help="training wall-time bound")
    parser.add_argument("--iterations", type=int, default=None, help="override the preset's iterations")
    parser.add_argument("--out", type=Path, default=None, help="JSON log (+ .pt weights) path")
    parser.add_argument("--weights", type=Path, default=None, help="start from saved weights (.pt)")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="warm start: load every saved tensor whose name and shape match "
                        "(e.g. 5-way weights for the 20-way preset; the wider head starts fresh)")
    parser.add_argument("--init-rename", action="append", default=[], metavar="OLD=NEW",
                        help="with --init-from: rename a saved name prefix (repeatable), e.g. "
                        "backbone.conv4.=model.x_encoder. puts a ProtoNet's Conv-4 into the ICL encoder")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config overrides (repeatable, as in metaloop train)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run saved in <out>.ckpt (weights, optimizer, scheduler, "
                        "task stream, best meta-val state); written after every validation")
    parser.add_argument("--smoke", action="store_true", help="2 iterations, 5 val/test episodes")
    args = parser.parse_args(argv)
    config = load_config(args.preset, (SMOKE if args.smoke else []) + args.overrides)
    rename = {}
    for item in args.init_rename:
        if "=" not in item:
            parser.error(f"--init-rename {item!r}: expected OLD=NEW (e.g. backbone.conv4.=model.x_encoder.)")
        old, new = item.split("=", 1)
        rename[old] = new
    run(config, args.minutes, args.iterations, args.out, args.weights, 2 if args.smoke else None,
        args.init_from, rename, args.resume)


if __name__ == "__main__":
    main()
