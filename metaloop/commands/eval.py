"""``metaloop eval RUN_DIR [--episodes N] [--calibrate] [--json]``: meta-test a trained run."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="score a run on fixed meta-test episodes (mean ± 95%% CI)",
        description="Rebuild the learner from RUN_DIR/config.yaml, load its best (meta-val) or last "
                    "weights and score it on fixed meta-test episodes; writes RUN_DIR/eval.json.")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--episodes", type=int, default=None, help="episodes (default: the config's)")
    parser.add_argument("--steps", type=int, nargs="*", default=None,
                        help="adaptation step counts to score as well (default: the config's)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default=None)
    parser.add_argument("--calibrate", action="store_true",
                        help="also fit a temperature on the run's meta-val episodes (Guo et al. 2017) and "
                             "report the test NLL and ECE at it; accuracy does not change")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metaloop.engine.results import evaluate_run

    if args.episodes is not None and args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    result = evaluate_run(args.run_dir, episodes=args.episodes, steps=args.steps, which=args.checkpoint,
                          filename="eval.json", quiet=args.quiet or args.json, calibrate=args.calibrate)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['name']} ({result['checkpoint']}): {result['summary']}")
    for steps, r in result["by_steps"].items():
        scale = 100.0 if result["metric"] == "accuracy" else 1.0
        label = "before adaptation" if steps == "0" else f"after {steps} step(s)"
        print(f"  {label:<20} {r['mean'] * scale:.3f} ± {r['ci95'] * scale:.3f}")
    if "calibration" in result:
        cal, extra = result["calibration"], result["extra"]
        print(f"  temperature {cal['temperature']:.3f} (fit on {cal['val_episodes']} meta-val episodes): "
              f"ECE {extra['ece']['mean'] * 100:.1f} -> {cal['ece'] * 100:.1f} %, "
              f"NLL {extra['nll']['mean']:.3f} -> {cal['nll']:.3f}")
    return 0
