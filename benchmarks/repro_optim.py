"""Reproduce the optimization-based papers from a preset: train, then 600 fixed test episodes.

    python benchmarks/repro_optim.py maml_sinusoid [--iterations N] [--set key=value ...]
        [--out runs/repro_optim] [--eval-every 5000] [--resume]

The preset (a name from ``metaloop presets`` or a YAML path) is read and validated by the engine's
``load_config``; tasks, model, algorithm and outer optimizer come from ``metaloop.config.build``, as
in ``metaloop train``. Training runs in chunks of ``--eval-every`` iterations with one persistent
outer optimizer; after each chunk the checkpoint and a test evaluation (mean ± 95 % CI over the
preset's fixed meta-test episodes after each count in ``evaluation.steps``, CPU time) are appended
to ``<out>/<preset>.jsonl``, so a run cut short still leaves an honest partial curve, and
``--resume`` finishes it. Numbers are research numbers: seeds are fixed, the test episodes never
touch training. (``metaloop train PRESET`` runs the same protocol with meta-val model selection.)
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

from metaloop.config import build, load_config
from metaloop.engine.loop import meta_train
from metaloop.engine.run import seed_everything
from metaloop.engine.snapshot import Snapshot, check_split, data_of, read_snapshot, save_snapshot
from metaloop.engine.transfer import load_matching
from metaloop.evaluate import evaluate


def eval_steps(config, algo) -> list[int]:
    """``evaluation.steps``, else the algorithm's own test-time step count."""
    return list(config.evaluation.steps) or [getattr(algo, "eval_steps", None) or algo.inner_steps]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("preset", help="preset name (metaloop presets) or YAML path")
    ap.add_argument("--iterations", type=int, help="override the preset's iteration count")
    ap.add_argument("--eval-every", type=int, default=5000)
    ap.add_argument("--eval-episodes", type=int, help="override (default: the preset's 600)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config overrides (repeatable, as in metaloop train)")
    ap.add_argument("--out", default="runs/repro_optim")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--minutes", type=float, default=None,
                    help="wall-time bound: stop (checkpoint + test) at the next --wall-chunk boundary")
    ap.add_argument("--wall-chunk", type=int, default=50,
                    help="iterations between wall-time checks under --minutes (lower it for slow "
                    "presets: 50 iMAML 20-way iterations take ~17 min, 21 CPU s each)")
    ap.add_argument("--init-from", default=None,
                    help="warm start from another preset's checkpoint: every tensor whose name and shape "
                    "match (e.g. 5-way weights for a 20-way preset; the wider head starts fresh)")
    ap.add_argument(
        "--eval-only",
        action="store_true",
        help="evaluate the saved checkpoint (adds median and the count of diverged episodes)",
    )
    args = ap.parse_args(argv)
    if args.wall_chunk < 1:
        ap.error(f"--wall-chunk must be >= 1 (iterations between wall-time checks), got {args.wall_chunk}")

    config = load_config(args.preset, args.overrides)
    name = config.name
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log, ckpt = out / f"{name}.jsonl", out / f"{name}.pt"
    tr = config.training
    seed_everything(tr.seed)
    sources = build.build_tasks(config)
    algo = build.build_algorithm(config, build.build_model(config))
    optimizer = build.build_optimizer(config, algo.parameters())
    scheduler = build.build_scheduler(config, optimizer)
    done, cpu_used = 0, 0.0
    trained_on = data_of(config.tasks)  # recorded in checkpoints, checked when they are reused
    if (args.resume or args.eval_only) and ckpt.exists():
        snap = read_snapshot(ckpt)
        check_split(snap, trained_on, str(ckpt))
        algo.load_state_dict(snap.learner)
        optimizer.load_state_dict(snap.optimizer)
        if scheduler is not None and snap.scheduler is not None:
            scheduler.load_state_dict(snap.scheduler)
        done, cpu_used = snap.iterations, snap.cpu_seconds
    init = None
    if args.init_from and done == 0:
        saved = read_snapshot(args.init_from)
        check_split(saved, trained_on, args.init_from)
        report = load_matching(algo, saved.selected_state())
        init = {"init_from": args.init_from, "init_iterations": saved.info()["iterations"],
                "init_cpu_s": saved.cpu_seconds, "fresh": report.shape_mismatch}
        print(f"init from {args.init_from}: {report.summary()}", flush=True)
    episodes = build.meta_test_episodes(config, sources, args.eval_episodes)
    steps_list = eval_steps(config, algo)
    total = args.iterations or tr.iterations
    if args.eval_only:
        row = {"preset": name, "iterations": done, "train_cpu_s": round(cpu_used, 1)}
        for steps in steps_list:
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
    wall0 = time.time()
    while done < total:
        # chunks end on multiples of --eval-every (same seeds as an unbounded run); a wall bound
        # cuts them into --wall-chunk pieces so the run stops near it
        chunk = min(args.eval_every - done % args.eval_every, total - done)
        if args.minutes is not None:
            chunk = min(chunk, args.wall_chunk)
        cpu0 = time.process_time()
        meta_train(
            algo,
            sources.train,
            iterations=chunk,
            meta_batch=tr.meta_batch,
            optimizer=optimizer,
            scheduler=scheduler,
            grad_clip=tr.grad_clip,
            seed=tr.seed * 1_000_003 + done,
        )
        cpu_used += time.process_time() - cpu0
        done += chunk
        out_of_time = args.minutes is not None and time.time() - wall0 > 60 * args.minutes
        if done % args.eval_every and done < total and not out_of_time:
            continue
        sched_state = None if scheduler is None else scheduler.state_dict()
        save_snapshot(ckpt, Snapshot(learner=algo.state_dict(), iterations=done, cpu_seconds=cpu_used,
                                     optimizer=optimizer.state_dict(), scheduler=sched_state,
                                     data=trained_on))
        row = {"preset": name, "iterations": done, "train_cpu_s": round(cpu_used, 1)}
        if init is not None:
            row.update(init)
        for steps in steps_list:
            res = evaluate(algo, episodes, steps=steps)
            row[f"{res.metric}@{steps}"] = [round(res.mean, 4), round(res.ci95, 4)]
        row["paper"] = config.paper or None
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        if out_of_time:
            break


if __name__ == "__main__":
    main()
