"""Reproduce the baselines of issue 9: pretrain, evaluate on fixed episodes, draw the curves.

    python benchmarks/repro_baselines.py pretrain --head linear --minutes 15
    python benchmarks/repro_baselines.py eval benchmarks/configs/baseline_finetune_omniglot_5w1s.yaml
    python benchmarks/repro_baselines.py table            # markdown table of every result JSON
    python benchmarks/repro_baselines.py shots-curve benchmarks/configs/baseline_curve_shots_omniglot.yaml
    python benchmarks/repro_baselines.py steps-curve benchmarks/configs/baseline_curve_steps_omniglot.yaml
    python benchmarks/repro_baselines.py reliability benchmarks/configs/baseline_reliability_omniglot.yaml
    python benchmarks/repro_baselines.py cross-domain benchmarks/configs/baseline_cross_domain_omniglot.yaml

Run with OMP_NUM_THREADS=1 on shared machines. Results (JSON, markdown, PNG) go to
benchmarks/results/baselines/; fixed episode sets to benchmarks/results/episodes/ (index grids,
reusable by every other method); pretrained backbones to runs/baselines/ (not committed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing  # noqa: E402

from benchmarks.baselines_setup import (  # noqa: E402
    RESULTS,
    build_method,
    episode_set,
    load_preset,
    load_splits,
    log,
)
from metaloop.baselines.pretrain import pretrain_backbone, save_pretrained  # noqa: E402
from metaloop.evaluate import evaluate  # noqa: E402
from metaloop.io import atomic_write_json, atomic_write_text  # noqa: E402


def cmd_pretrain(args) -> int:
    splits = load_splits(args.dataset, args.split, args.image_size, args.channels)
    log(f"pretraining Conv-4 ({args.head} head) on {splits.train.name}: {splits.train.num_classes} classes, "
        f"{len(splits.train)} images, ≤ {args.epochs} epochs, ≤ {args.minutes} min")
    result = pretrain_backbone(splits.train, head=args.head, epochs=args.epochs, batch_size=args.batch_size,
                               lr=args.lr, seed=args.seed, time_limit_s=args.minutes * 60, log=log)
    out = Path(args.out or ROOT / "runs" / "baselines" / f"{args.dataset}-{args.split}-{args.head}.pt")
    save_pretrained(out, result)
    log(f"saved {out} after {result.steps} steps ({result.seconds:.0f} s)")
    return 0


def cmd_eval(args) -> int:
    preset = load_preset(args.preset)
    splits = load_splits(preset["dataset"], preset.get("split", "vinyals"), preset.get("image_size", 28),
                         preset.get("channels", 1))
    episodes = episode_set(splits.test, preset, preset.get("episodes", 600))
    n = args.episodes or preset.get("eval_episodes", len(episodes))
    algorithm, info = build_method(preset, splits, log=log)
    log(f"{preset['name']}: evaluating on the first {n} of {len(episodes)} fixed episodes")
    start = time.process_time()
    result = evaluate(algorithm, episodes.head(n), progress=_progress(n))
    cpu = time.process_time() - start
    log(f"{preset['name']}: {result.summary()} (CPU {cpu:.1f} s)")
    record = {"preset": preset, "result": result.to_dict(), "cpu_seconds": cpu, "info": info,
              "torch_threads": torch.get_num_threads()}
    atomic_write_json(RESULTS / f"{preset['name']}.json", record)
    return 0


def _progress(total: int):
    start = time.perf_counter()

    def report(done: int) -> None:
        if done % max(1, total // 10) == 0 or done == total:
            log(f"  {done}/{total} episodes ({time.perf_counter() - start:.0f} s)")

    return report


def cmd_table(args) -> int:
    from benchmarks.baselines_report import results_table

    text = results_table(RESULTS)
    atomic_write_text(RESULTS / "table.md", text + "\n")
    print(text)
    return 0


def cmd_curve(args) -> int:
    from benchmarks.baselines_report import run_curve

    return run_curve(args.command, load_preset(args.preset), args.episodes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pretrain", help="supervised pretraining of Conv-4 on all meta-train classes")
    p.add_argument("--dataset", default="omniglot")
    p.add_argument("--split", default="vinyals")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--head", default="linear", choices=["linear", "cosine"])
    p.add_argument("--epochs", type=float, default=10.0)
    p.add_argument("--minutes", type=float, default=15.0, help="wall-clock bound")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.set_defaults(func=cmd_pretrain)
    e = sub.add_parser("eval", help="evaluate one baseline preset on its fixed episodes")
    e.add_argument("preset")
    e.add_argument("--episodes", type=int, default=None, help="score only the first N fixed episodes")
    e.set_defaults(func=cmd_eval)
    t = sub.add_parser("table", help="markdown table of every result under benchmarks/results/baselines")
    t.set_defaults(func=cmd_table)
    for name in ("shots-curve", "steps-curve", "reliability", "cross-domain"):
        c = sub.add_parser(name, help=f"{name} from a preset; JSON + PNG under benchmarks/results/baselines")
        c.add_argument("preset")
        c.add_argument("--episodes", type=int, default=None)
        c.set_defaults(func=cmd_curve)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
