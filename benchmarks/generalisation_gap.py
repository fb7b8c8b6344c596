"""Is a trained meta-learner under- or overfitting? Score it on episodes of its meta-train,
meta-val and meta-test classes.

    python benchmarks/generalisation_gap.py snail_omniglot_5w1s \
        benchmarks/checkpoints/modelbased/snail_omniglot_5w1s.pt
    python benchmarks/generalisation_gap.py maml_omniglot_5w1s OUT/maml_omniglot_5w1s.pt --episodes 100

A learner whose meta-train episodes score far above its meta-test ones has memorised its training
classes (regularise, augment: ``tasks.augment``); one that scores the same on both is underfitting
(train longer, a larger model, a better optimizer). The episodes have the evaluation shape
(``evaluation.*``), are drawn with one seed from each split of the preset's dataset, without any
meta-training augmentation, and are scored by ``metaloop.evaluate`` as every table row is. The
weights may be any file our training commands write (as ``score_trained.py``); they are refused on
another split of the same dataset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing  # noqa: E402

from benchmarks.score_trained import load_learner  # noqa: E402
from metaloop.config import build, load_config  # noqa: E402
from metaloop.evaluate import evaluate  # noqa: E402
from metaloop.tasks.episode_set import EpisodeSet  # noqa: E402
from metaloop.tasks.sampler import FewShotSampler  # noqa: E402


def gaps(preset: str, weights: Path, episodes: int, seed: int, overrides: list[str]) -> dict:
    """``{part: EvalResult}`` for part in train / val / test."""
    config = load_config(preset, overrides)
    config.tasks.augment = {}  # the classes as they are: augmentation is for training only
    _, algo, _ = load_learner(preset, weights, overrides)
    algo.eval()
    sources = build.build_tasks(config)
    ways, shots, queries = config.evaluation.shape(config.tasks)
    results = {}
    for part, sampler in (("train", sources.train), ("val", sources.val), ("test", sources.test)):
        shaped = FewShotSampler(sampler.dataset, ways, shots, queries)
        results[part] = evaluate(algo, EpisodeSet.generate(shaped, episodes, seed=seed))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", help="the preset the learner was trained with")
    ap.add_argument("weights", type=Path)
    ap.add_argument("--episodes", type=int, default=300, help="episodes per split")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="the overrides the learner was trained with (e.g. tasks.split=vinyals)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = gaps(args.preset, args.weights, args.episodes, args.seed, args.overrides)
    for part, result in results.items():
        print(f"{part:5s} classes: {result.summary()}", flush=True)
    gap = results["train"].mean - results["test"].mean
    print(f"train - test: {100 * gap:+.2f} points", flush=True)
    if args.json is not None:
        from metaloop.io import atomic_write_json

        atomic_write_json(args.json, {"preset": args.preset, "weights": str(args.weights),
                                      "episodes": args.episodes, "seed": args.seed,
                                      **{part: r.to_dict() for part, r in results.items()}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
