"""``metaloop train PRESET_OR_CONFIG [--set key=value ...] [--out RUN_DIR]`` and ``--resume RUN_DIR``.

Under ``torchrun --nproc-per-node N -m metaloop train ...`` the meta-batch is sharded across ranks
(see :mod:`metaloop.engine.distributed`); rank 0 writes the run folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="meta-train from a preset or YAML config (checkpoints, resume, metrics, result.json)",
        description="Meta-train a learner from a preset name (see `metaloop presets`) or a YAML file. "
                    "The run folder gets config.yaml, metrics.jsonl/.csv, checkpoints/ and result.json.")
    parser.add_argument("config", nargs="?", metavar="PRESET_OR_CONFIG",
                        help="preset name or path to a .yaml config (not needed with --resume)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set training.lr=0.01 (repeatable)")
    parser.add_argument("--out", default=None, metavar="RUN_DIR",
                        help="run folder (default: runs/<preset name>)")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its last checkpoint (bit-identical on CPU)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument("--search", metavar="SPACE.yaml", default=None,
                        help="hyper-parameter search (Optuna) over the config, scored on meta-val only; "
                             "trials go to --out/trial_NNN, the winner to --out/best.yaml")
    parser.add_argument("--trials", type=int, default=20, help="search trials (default 20)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _train(args)
    except FloatingPointError as exc:  # NaN/inf: one clear line, the last good checkpoint stays
        if args.debug:
            raise
        print(f"metaloop train: stopped: {exc}", file=sys.stderr)
        return 1


def _train(args: argparse.Namespace) -> int:
    from metaloop.config import build, load_config
    from metaloop.config.presets import load_config_data
    from metaloop.engine.run import default_out, train_run

    if args.resume:
        if args.config or args.overrides:
            raise ValueError("--resume continues a run with its saved config.yaml; drop PRESET_OR_CONFIG "
                             "and --set")
        train_run(None, Path(args.resume), resume=True, quiet=args.quiet)
        return 0
    if not args.config:
        raise ValueError("give a preset name or a config file (see `metaloop presets`), or --resume RUN_DIR")
    if args.search:
        from metaloop.engine.search import read_space, search

        if args.trials < 1:
            raise ValueError(f"--trials must be >= 1, got {args.trials}")
        data, name = load_config_data(args.config, args.overrides)
        out = Path(args.out) if args.out else Path("runs") / f"{name}_search"
        search(data, name, read_space(args.search), args.trials, out)
        return 0
    config = load_config(args.config, args.overrides)
    build.check_algorithm(config)
    if args.check:
        print(f"{args.config}: config OK")
        return 0
    train_run(config, Path(args.out) if args.out else default_out(config), quiet=args.quiet)
    return 0
