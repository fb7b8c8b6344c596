"""Score a trained meta-learner on the baselines' fixed Omniglot episodes, for one shared table.

    python benchmarks/score_trained.py maml_omniglot_5w1s runs/repro_optim/maml_omniglot_5w1s.pt \
        --shots 1 --label "MAML, 2nd order (7.5k of 60k iterations)"
    python benchmarks/repro_baselines.py table      # baselines and meta-learners, same episodes

The learner is built from its preset exactly as ``metaloop train`` builds it, its weights are read
from any of the files our training commands write (``repro_optim`` ``.pt``, ``repro_metric``
``.ckpt`` (best meta-val state), ``repro_modelbased`` state dicts, engine ``.safetensors``), and it
is scored by ``metaloop.evaluate.evaluate`` on the saved episode set that every baseline of issue 9
uses (``benchmarks/results/episodes/omniglot-vinyals-test-5w{K}s15q-600ep-seed0.pt``). The result
goes next to the baselines' results in the same format, so ``repro_baselines.py table`` lists all
methods side by side. A learner trained with K=1 and scored with ``--shots 5`` is labelled so.
A learner trained with ``--set`` overrides is rebuilt with the same ``--set`` (a ``name=`` override
also names the result file), e.g. ``score_trained.py matching_omniglot_20w1s W --ways 20 --set
algorithm.scale=10.0 --set name=matching_omniglot_20w1s_scale10``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing  # noqa: E402

from benchmarks.baselines_setup import RESULTS, episode_set, load_splits, log  # noqa: E402
from metaloop.config import load_config  # noqa: E402
from metaloop.config.build import build_algorithm, build_model  # noqa: E402
from metaloop.engine.snapshot import check_split, read_snapshot  # noqa: E402
from metaloop.evaluate import calibrate, evaluate  # noqa: E402
from metaloop.io import atomic_write_json  # noqa: E402


def build_learner(preset: str, overrides: list[str] | None = None):
    """``(algorithm, name, shots, ways it was trained with, Omniglot split it is scored on)`` for an
    engine preset (its own split) or a pair config (Vinyals: Lake-trained Siamese nets never saw
    the Vinyals test alphabets, which are evaluation alphabets)."""
    from benchmarks.repro_metric import is_pair_config, siamese_from_config

    if is_pair_config(preset):  # Siamese verification training: no episodes, no shots
        import yaml

        cfg = yaml.safe_load(Path(preset).read_text())
        return siamese_from_config(cfg), cfg["algorithm"], None, None, "vinyals"
    config = load_config(preset, list(overrides or []))
    algo = build_algorithm(config, build_model(config))
    return algo, config.algorithm.name, config.tasks.shots, config.tasks.ways, config.tasks.split


def load_learner(preset: str, weights: Path, overrides: list[str] | None = None):
    algo, name, shots, ways, split = build_learner(preset, overrides)
    snapshot = read_snapshot(weights)  # any layout our training commands write
    check_split(snapshot, {"dataset": "omniglot", "split": split}, str(weights))
    state, info = snapshot.selected_state(), snapshot.info()
    # FastConv4 (repro_metric's training view) stores the Conv4 under ``conv4.``: match names with
    # that segment dropped on both sides, so either kind of checkpoint fits either kind of learner
    expected = {k.replace(".conv4.", "."): k for k in algo.state_dict()}
    state = {expected.get(k.replace(".conv4.", "."), k): v for k, v in state.items()}
    missing, unexpected = algo.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{weights} does not fit preset {preset!r}: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return (name, shots, ways, split), algo, info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", help="the preset the learner was trained with")
    ap.add_argument("weights", type=Path)
    ap.add_argument("--shots", type=int, default=1)
    ap.add_argument("--ways", type=int, default=5,
                    help="5 (the shared table) or e.g. 20 for learners not tied to a head width")
    ap.add_argument("--episodes", type=int, default=600)
    ap.add_argument("--steps", type=int, default=None, help="adaptation steps (gradient learners)")
    ap.add_argument("--label", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calibrate", type=int, default=0, metavar="N",
                    help="also fit a temperature on N meta-val episodes (Guo et al. 2017) and report "
                    "the test NLL and ECE at it (accuracy does not change)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config overrides the learner was trained with (as in repro_metric --set); "
                    "a name=... override also names the result file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    (algo_name, trained_shots, trained_ways, split), algo, info = load_learner(args.preset, args.weights,
                                                                               args.overrides)
    names = [o.split("=", 1)[1] for o in args.overrides if o.startswith("name=")]
    preset_name = names[-1] if names else Path(args.preset).stem
    splits = load_splits("omniglot", split, 28, 1)
    spec = {"ways": args.ways, "shots": args.shots, "queries": 15, "seed": 0}
    episodes = episode_set(splits.test, spec, args.episodes)
    label = args.label or algo_name
    if trained_shots is not None and trained_shots != args.shots:
        label += f" [trained {trained_shots}-shot]"
    if trained_ways is not None and trained_ways != args.ways:
        label += f" [trained {trained_ways}-way]"
    log(f"scoring {label} on {len(episodes)} fixed episodes")
    cpu = time.process_time()
    result = evaluate(algo, episodes, steps=args.steps)
    cpu = time.process_time() - cpu
    calibration = None
    if args.calibrate:
        val = episode_set(splits.val, {**spec, "seed": 1}, args.calibrate, tag="val")
        calibration = {**calibrate(algo, val, result, steps=args.steps),
                       "fitted_on": f"{args.calibrate} meta-val episodes (seed 1)"}
    record = {
        "preset": {"name": preset_name, "algorithm": algo_name, "label": f"meta-learner: {label}",
                   "dataset": "omniglot", "split": split, "ways": args.ways, "shots": args.shots,
                   "queries": 15, "episodes": args.episodes, "seed": 0,
                   "trained_with": args.preset, "weights": str(args.weights),
                   **({"overrides": args.overrides} if args.overrides else {})},
        "result": result.to_dict(),
        "cpu_seconds": cpu,
        "info": {"training": info, "steps": args.steps},
        "torch_threads": args.threads,
        **({"calibration": calibration} if calibration else {}),
    }
    on_split = "" if split == "vinyals" else f"_{split}"  # the shared table is the Vinyals split's
    atomic_write_json(RESULTS / f"meta_{preset_name}_{args.ways}w{args.shots}s{on_split}.json", record)
    print(f"{label}: {result.summary()}")
    if calibration:
        print(f"  temperature {calibration['temperature']:.3f} ({calibration['fitted_on']}): ECE "
              f"{result.extra['ece'][0] * 100:.1f} -> {calibration['ece'] * 100:.1f} %, NLL "
              f"{result.extra['nll'][0]:.3f} -> {calibration['nll']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
