"""``metaloop report RUN_DIR... [--out DIR]``: PNG plots of one or several runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="plot learning curves, metric vs adaptation steps and a comparison of runs (PNG)",
        description="Write learning_curves.png (meta-train loss, meta-val metric with 95%% CI band), "
                    "adaptation_steps.png (meta-test metric vs adaptation steps) and, for several runs, "
                    "comparison.png (meta-test mean ± 95%% CI per run).")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--out", default=None, help="folder for the PNGs (default: RUN_DIR/report for one "
                                                   "run, ./report for several)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metaloop.plots.compare import plot_comparison
    from metaloop.plots.curves import plot_learning_curves
    from metaloop.plots.runs import load_runs
    from metaloop.plots.steps import plot_adaptation_steps

    runs = load_runs(args.runs)
    out = Path(args.out) if args.out else (runs[0].path / "report" if len(runs) == 1 else Path("report"))
    written = [plot_learning_curves(runs, out / "learning_curves.png"),
               plot_adaptation_steps(runs, out / "adaptation_steps.png")]
    if len(runs) > 1:
        written.append(plot_comparison(runs, out / "comparison.png"))
    for path in written:
        if path is not None:
            print(path)
    return 0
