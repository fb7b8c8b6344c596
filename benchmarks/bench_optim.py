"""Speed and peak memory of the optimization learners against a learn2learn-style reference loop.

    python benchmarks/bench_optim.py [--quick] [--json] [--threads 2] [--repeats 3]
    python benchmarks/bench_optim.py --conv4-maml split split:ckpt --inner-steps 5  # memory vs steps

Workloads (cpu_speed_notes.md): Conv-4 Omniglot 5-way 1-shot, 15 queries, meta-batch 32, one
second-order step (lr 0.4); and the sinusoid MLP 1-40-40-1, 10 shots + 10 queries, 25 tasks.
The reference is written here as learn2learn users write it: clone the module (parameters become
graph-connected copies), step with ``autograd.grad(create_graph=True)``, backward each query loss,
on the textbook Conv-4 block (conv → BatchNorm → ReLU → max-pool, as learn2learn's and ProtoNets'
code). ``reference_ml`` runs the same loop on metaloop's Conv4 (same function, max-pool before ReLU),
so the table shows how much of the gain is the model's block order and how much the strategy.
Every configuration runs in its own subprocess (so peak RSS is its own), configurations are
interleaved over ``--repeats`` rounds (so machine load hits all alike), and the median iteration
time of each is compared with the reference of its workload, in the same run. ``--inner-steps``
sets both workloads' step count (the reference's too); a ``:ckpt`` strategy suffix turns on
``checkpoint_steps`` (each inner step's graph recomputed in the backward pass, not stored).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from metaloop.io import atomic_write_text  # noqa: E402
from metaloop.tasks.episode import Episode, EpisodeBatch  # noqa: E402

WORKLOADS = {
    "conv4": dict(ways=5, shots=1, queries=15, tasks=32, lr=0.4, steps=1),
    "sinusoid": dict(shots=10, queries=10, tasks=25, lr=0.01, steps=1),
}
# (workload, algorithm, strategy, norm); "reference" is the learn2learn-style loop.
FULL = [
    ("conv4", "reference", "-", "batch"),
    ("conv4", "reference_ml", "-", "batch"),
    ("conv4", "maml", "loop", "batch"),
    ("conv4", "maml", "loop", "task"),
    ("conv4", "maml", "split", "task"),
    ("conv4", "maml", "split:4", "task"),
    ("conv4", "maml", "split:1", "task"),
    ("conv4", "fomaml", "split", "task"),
    ("conv4", "anil", "split", "task"),
    ("conv4", "metasgd", "split", "task"),
    ("conv4", "reptile", "loop", "task"),
    ("conv4", "imaml", "loop", "task"),
    ("sinusoid", "reference", "-", "-"),
] + [
    ("sinusoid", a, s, "-")
    for a in ("maml", "fomaml", "anil", "metasgd", "reptile", "imaml")
    for s in ("loop", "vmap")
] + [("sinusoid", "maml", "vmap:compile", "-")]
QUICK = [
    ("conv4", "reference", "-", "batch"),
    ("conv4", "reference_ml", "-", "batch"),
    ("conv4", "maml", "loop", "batch"),
    ("conv4", "maml", "split", "task"),
    ("conv4", "maml", "split:4", "task"),
    ("conv4", "maml", "split:1", "task"),
    ("sinusoid", "reference", "-", "-"),
    ("sinusoid", "maml", "loop", "-"),
    ("sinusoid", "maml", "vmap", "-"),
    ("sinusoid", "maml", "vmap:compile", "-"),
]


def make_batch(workload: str, g: torch.Generator) -> EpisodeBatch:
    w = WORKLOADS[workload]
    eps = []
    for _ in range(w["tasks"]):
        if workload == "conv4":
            n_s, n_q = w["ways"] * w["shots"], w["ways"] * w["queries"]
            sy = torch.arange(w["ways"]).repeat_interleave(w["shots"])
            qy = torch.arange(w["ways"]).repeat_interleave(w["queries"])
            eps.append(
                Episode(
                    torch.rand(n_s, 1, 28, 28, generator=g),
                    sy,
                    torch.rand(n_q, 1, 28, 28, generator=g),
                    qy,
                )
            )
        else:
            x = torch.rand(w["shots"] + w["queries"], 1, generator=g) * 10 - 5
            y = 3 * torch.sin(x - 1.0)
            eps.append(Episode(x[: w["shots"]], y[: w["shots"]], x[w["shots"] :], y[w["shots"] :]))
    return EpisodeBatch.stack(eps)


def textbook_conv4(ways: int) -> torch.nn.Module:
    """Conv-4 as peers write it: 4 x [conv3x3 64, BatchNorm2d, ReLU, max-pool 2], flatten, linear."""
    from torch import nn

    blocks = []
    for c_in in (1, 64, 64, 64):
        blocks += [nn.Conv2d(c_in, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*blocks, nn.Flatten(), nn.Linear(64, ways))


def make_model(workload: str, norm: str, textbook: bool = False) -> torch.nn.Module:
    from metaloop.nets import MLP, Conv4

    if workload == "conv4" and textbook:
        return textbook_conv4(WORKLOADS["conv4"]["ways"])
    if workload == "conv4":
        return Conv4(1, WORKLOADS["conv4"]["ways"], norm=norm)
    return MLP(1, 1, (40, 40))


def l2l_clone(module: torch.nn.Module) -> torch.nn.Module:
    """learn2learn's ``clone_module``: a shallow copy whose parameters are graph-connected clones."""
    clone = copy.copy(module)
    clone._parameters = {k: None if p is None else p.clone() for k, p in module._parameters.items()}
    clone._buffers = dict(module._buffers)
    clone._modules = {k: l2l_clone(m) for k, m in module._modules.items()}
    return clone


def l2l_update(module: torch.nn.Module, grads: list, lr: float) -> None:
    """learn2learn's ``update_module``: write ``p - lr * g`` into ``_parameters`` in place."""
    it = iter(grads)
    for mod in module.modules():
        for k, p in mod._parameters.items():
            if p is not None:
                mod._parameters[k] = p - lr * next(it)


def reference_step(model, batch, loss_fn, lr, steps, opt) -> None:
    opt.zero_grad()
    for ep in batch:
        learner = l2l_clone(model)
        for _ in range(steps):
            loss = loss_fn(learner(ep.support_x), ep.support_y)
            l2l_update(
                learner,
                torch.autograd.grad(loss, list(learner.parameters()), create_graph=True),
                lr,
            )
        (loss_fn(learner(ep.query_x), ep.query_y) / len(batch)).backward()
    opt.step()


def run_one(workload: str, algo_name: str, strategy: str, norm: str, iters: int) -> dict:
    """One configuration in this process: warm-up, then ``iters`` timed meta-iterations."""
    label = strategy
    import torch.nn.functional as F

    from metaloop.algorithms import get_algorithm

    torch.manual_seed(0)
    w = WORKLOADS[workload]
    model = make_model(workload, norm, textbook=algo_name == "reference")
    batch = make_batch(workload, torch.Generator().manual_seed(0))
    task = "classification" if workload == "conv4" else "regression"
    loss_fn = F.cross_entropy if task == "classification" else F.mse_loss
    if algo_name.startswith("reference"):
        opt = torch.optim.Adam(model.parameters(), 1e-3)

        def step():
            reference_step(model, batch, loss_fn, w["lr"], w["steps"], opt)
    else:
        # "split" = the default (support by autograd per task on CPU); "split:4" = support vmapped
        # over chunks of 4 tasks; "vmap:compile" = vmap through torch.compile
        strategy, _, option = strategy.partition(":")
        chunk = option if option.isdigit() else ""
        kwargs = dict(inner_lr=w["lr"], inner_steps=w["steps"], strategy=strategy, task=task)
        if option == "compile":
            kwargs["compile"] = True  # compiled during the warm-up step, not timed
        if option == "ckpt":
            kwargs["checkpoint_steps"] = True
        if algo_name == "reptile":
            kwargs["inner_steps"] = 5
        algo = get_algorithm(algo_name)(model, **kwargs)
        if chunk:  # "split:N": the support step vmapped over chunks of N tasks
            algo.split_chunk = int(chunk)
            algo.split_support = "vmap"
        if option in ("autograd", "vmap"):  # force split's support mode (default "auto")
            algo.split_support = option
        opt = torch.optim.Adam(algo.parameters(), 1e-3)

        def step():
            opt.zero_grad()
            algo.meta_loss(batch).backward()
            opt.step()

    base_kb = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    step()  # warm-up
    times, cpu_times = [], []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "workload": workload,
        "algorithm": algo_name,
        "strategy": label,
        "norm": norm,
        "seconds": statistics.median(times),
        "cpu_seconds": statistics.median(cpu_times),
        "peak_mb": max(peak_kb - base_kb, 0) / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="MAML only, fewer iterations")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="interleaved rounds per configuration")
    ap.add_argument("--out", help="also write the JSON results to this file")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time per iteration: wall clock, or process CPU time (robust on a loaded machine "
        "with --threads 1)",
    )
    ap.add_argument(
        "--conv4-maml",
        nargs="+",
        metavar="STRATEGY",
        help="only the Conv-4 reference and MAML with these strategies (e.g. split split:1)",
    )
    ap.add_argument(
        "--inner-steps",
        type=int,
        default=None,
        help="inner steps of every configuration and the reference (default: each workload's 1)",
    )
    ap.add_argument("--_one", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.inner_steps is not None:
        for w in WORKLOADS.values():
            w["steps"] = args.inner_steps
    if args._one:
        wl, algo, strat, norm, iters = args._one
        print(json.dumps(run_one(wl, algo, strat, norm, int(iters))))
        return
    configs = QUICK if args.quick else FULL
    if args.conv4_maml:
        configs = [("conv4", "reference", "-", "batch")]
        configs += [("conv4", "maml", s, "task") for s in args.conv4_maml]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    runs: dict[tuple, list[dict]] = {c: [] for c in configs}
    for _ in range(args.repeats):
        for c in configs:
            iters = (1 if args.quick else 2) if c[0] == "conv4" else 20
            cmd = [
                sys.executable,
                __file__,
                "--threads",
                str(args.threads),
                *(["--inner-steps", str(args.inner_steps)] if args.inner_steps else []),
                "--_one",
                *c,
                str(iters),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            runs[c].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = []
    for rs in runs.values():
        key = "seconds" if args.clock == "wall" else "cpu_seconds"
        sec = statistics.median(r[key] for r in rs)
        rows.append(
            {**rs[0], "seconds": sec, "it_per_s": 1 / sec, "peak_mb": max(r["peak_mb"] for r in rs)}
        )
    ref = {r["workload"]: r for r in rows if r["algorithm"] == "reference"}
    for r in rows:
        r["speed_x_ref"] = r["it_per_s"] / ref[r["workload"]]["it_per_s"]
        r["mem_x_ref"] = r["peak_mb"] / max(ref[r["workload"]]["peak_mb"], 1e-9)
    meta = {
        "torch": torch.__version__,
        "threads": args.threads,
        "repeats": args.repeats,
        "load_avg_at_end": os.getloadavg(),
        "cpus": os.cpu_count(),
        "clock": args.clock,
        "inner_steps": {k: w["steps"] for k, w in WORKLOADS.items()},
    }
    if args.out:
        atomic_write_text(Path(args.out), json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=1))
        return
    print(
        f"torch {meta['torch']}, {args.threads} threads, {args.clock} clock, "
        f"load avg {meta['load_avg_at_end']}"
    )
    print(
        f"{'workload':9} {'algorithm':9} {'strategy':8} {'norm':5} {'it/s':>8} {'x ref':>6} "
        f"{'peak MB':>8} {'mem x ref':>9}"
    )
    for r in rows:
        print(
            f"{r['workload']:9} {r['algorithm']:12} {r['strategy']:12} {r['norm']:5} "
            f"{r['it_per_s']:8.3f} {r['speed_x_ref']:6.2f} {r['peak_mb']:8.0f} "
            f"{r['mem_x_ref']:9.2f}"
        )


if __name__ == "__main__":
    main()
