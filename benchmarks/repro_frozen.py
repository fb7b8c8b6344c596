"""Two-stage sequence learners: MANN or the in-context transformer on a frozen Conv-4 embedding.

    python benchmarks/repro_frozen.py mann --iterations 6000
    python benchmarks/repro_frozen.py icl --iterations 6000
    python benchmarks/repro_frozen.py icl --iterations 6000 --resume    # continue the saved run
    python benchmarks/repro_frozen.py mann --train-shots 10 --train-queries 1   # Santoro's sequences

End to end from pixels, MANN and the in-context transformer sat at chance for the whole budget we
could give them (docs/model_based.md, docs/learned.md): they must learn to bind a label to an
example before anything else, and on a synthetic task with separable inputs that alone took MANN
~3,000 iterations. Here the Conv-4 of a trained ProtoNet (``--encoder`` preset, ``--weights``) is
frozen, Omniglot is embedded once (eval mode, so each embedding depends on its own image only),
standardised with the meta-train split's mean and std, and the sequence learner is meta-trained on
5-way 1-shot episodes of those vectors. It is scored on the same 600 fixed test episodes as every
other method (``benchmarks/results/episodes``), beside the frozen encoder's own ProtoNet score, so
the table shows what the sequence learner adds or loses. This is a different protocol from the
papers' end-to-end training and is labelled so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # noqa: E402

from benchmarks.baselines_setup import episode_set, load_splits, log  # noqa: E402
from benchmarks.score_trained import load_learner  # noqa: E402
from metaloop.algorithms.incontext import InContext  # noqa: E402
from metaloop.algorithms.mann import MANN  # noqa: E402
from metaloop.data.base import ClassDataset  # noqa: E402
from metaloop.data.cache import sha256_file  # noqa: E402
from metaloop.data.features import embed_dataset, feature_dim, same_episodes  # noqa: E402
from metaloop.engine.checkpoint import capture_rng, restore_rng  # noqa: E402
from metaloop.engine.snapshot import Snapshot, read_snapshot, save_snapshot  # noqa: E402
from metaloop.evaluate import evaluate  # noqa: E402
from metaloop.io import atomic_torch_save, atomic_write_json  # noqa: E402
from metaloop.modelbased.instance_protocol import (  # noqa: E402
    accuracy_by_instance_ci,
    instance_logits,
)
from metaloop.tasks.episode_set import EpisodeSet  # noqa: E402
from metaloop.tasks.sampler import FewShotSampler  # noqa: E402

WAYS, SHOTS, QUERIES = 5, 1, 15
#: Santoro et al. (2016) Table 1: 5 classes x 10 instances, one shuffled sequence per episode.
INSTANCES, INSTANCE_REPORT = 10, (1, 2, 3, 4, 5, 10)


@torch.no_grad()
def instance_accuracy(mann: MANN, test: ClassDataset, episodes: int, seed: int = 3) -> dict:
    """Per-presentation accuracy (mean ± 95 % CI over episodes) on Santoro's sequences of the
    meta-test classes: the label of step t is shown at step t+1, the prediction is made before."""
    sampler = FewShotSampler(test, WAYS, INSTANCES, 0)
    g = torch.Generator().manual_seed(seed)
    logits, y = instance_logits(mann, sampler.sample_batch(episodes, g), g)
    return {str(n): {"mean": m, "ci95": c}
            for n, (m, c) in accuracy_by_instance_ci(logits, y, INSTANCE_REPORT).items()}


def standardised(datasets: list[ClassDataset]) -> list[ClassDataset]:
    """Each dataset's features shifted and scaled by the first (meta-train) one's mean and std."""
    mean, std = datasets[0].data.mean(0), datasets[0].data.std(0).clamp_min(1e-6)
    return [ClassDataset((d.data - mean) / std, d.targets, d.class_names, name=d.name) for d in datasets]


def feature_splits(args) -> tuple[list[ClassDataset], dict, object]:
    """(train, val, test) feature datasets, the encoder's info, and the image test split."""
    splits = load_splits("omniglot", "vinyals", 28, 1)
    digest = sha256_file(args.weights)[:12]  # a retrained encoder never reads stale features
    cache = args.out / f"features_{Path(args.encoder).stem}_{digest}.pt"
    _, protonet, info = load_learner(args.encoder, args.weights)
    if cache.is_file():
        blob = torch.load(cache, weights_only=True)
        feats = [ClassDataset(x, d.targets, d.class_names, name=f"{d.name}-features")
                 for x, d in zip(blob["features"], (splits.train, splits.val, splits.test), strict=True)]
        embed_cpu = blob["embed_cpu_s"]
    else:
        cpu = time.process_time()
        feats = [embed_dataset(d, protonet.backbone) for d in (splits.train, splits.val, splits.test)]
        embed_cpu = time.process_time() - cpu
        atomic_torch_save(cache, {"features": [f.data for f in feats], "embed_cpu_s": embed_cpu})
    log(f"features {feature_dim(feats[0])}-d for {sum(len(f.data) for f in feats)} images "
        f"({embed_cpu:.0f} CPU s to embed)")
    info = dict(info, embed_cpu_s=embed_cpu, encoder=args.encoder, weights=str(args.weights))
    return standardised(feats), info, splits.test


def build(kind: str, dim: int, key_strength: bool) -> nn.Module:
    if kind == "mann":
        return MANN(WAYS, nn.Flatten(), input_shape=(dim,), key_strength=key_strength)
    return InContext(x_dim=dim, output="classification", ways=WAYS, d_model=64, heads=4, layers=4, ff=128)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("learner", choices=["mann", "icl"])
    ap.add_argument("--encoder", default="protonet_omniglot_5w1s", help="preset of the trained encoder")
    ap.add_argument("--weights", type=Path, default=Path("runs/table/protonet_omniglot_5w1s.ckpt"))
    ap.add_argument("--iterations", type=int, default=6000)
    ap.add_argument("--meta-batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--train-shots", type=int, default=SHOTS,
                    help="support shots per class in training episodes; MANN with 10 and "
                    "--train-queries 1 trains on Santoro's 5 x 10 sequences (loss at every step)")
    ap.add_argument("--instance-episodes", type=int, default=1000,
                    help="MANN: Santoro's per-instance protocol on the meta-test classes")
    ap.add_argument("--minutes", type=float, default=None, help="stop training after this wall time")
    ap.add_argument("--eval-only", action="store_true", help="score the saved learner's best state")
    ap.add_argument("--train-queries", type=int, default=5,
                    help="queries per class in training episodes (MANN reads them one step each)")
    ap.add_argument("--every", type=int, default=250, help="meta-validate every N iterations")
    ap.add_argument("--key-strength", action="store_true", help="MANN: NTM read sharpness")
    ap.add_argument("--resume", action="store_true", help="continue from the saved learner state")
    ap.add_argument("--episodes", type=int, default=600, help="fixed test episodes (shared set)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "frozen")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (train, val, test), info, image_test = feature_splits(args)
    name = args.learner + ("_ks" if args.key_strength else "") + (
        f"_s{args.train_shots}" if args.train_shots != SHOTS else "")
    state_path, log_path = args.out / f"{name}.pt", args.out / f"{name}_curve.jsonl"
    learner = build(args.learner, feature_dim(train), args.key_strength)
    opt = torch.optim.Adam(learner.parameters(), args.lr)
    sampler = FewShotSampler(train, WAYS, args.train_shots, args.train_queries)
    val_set = EpisodeSet.generate(FewShotSampler(val, WAYS, SHOTS, args.train_queries), 200, seed=1)
    g = torch.Generator().manual_seed(args.seed)  # the task stream
    first, cpu_before, best_acc, best_state, best_at = 0, 0.0, -1.0, None, None
    if args.resume or args.eval_only:
        snap = read_snapshot(state_path)
        learner.load_state_dict(snap.learner)
        opt.load_state_dict(snap.optimizer)
        first, cpu_before, best_acc = snap.iterations, snap.cpu_seconds, snap.extra["best_acc"]
        best_state, best_at = snap.best_state, snap.best_iteration
        if "generator" in snap.extra:  # where the task stream and the global RNGs stood: bit-exact
            g.set_state(snap.extra["generator"])
            restore_rng(snap.extra["rng"], torch.device("cpu"))
        else:  # written before session 16: resumable, not bit-identical to an unbroken run
            g.manual_seed(args.seed + first)
    if args.eval_only:
        args.iterations = first
    cpu0 = time.process_time() - cpu_before
    curve = open(log_path, "a" if args.resume or args.eval_only else "w")
    wall0, done = time.time(), first
    for it in range(first + 1, args.iterations + 1):
        out_of_time = args.minutes is not None and time.time() - wall0 > 60 * args.minutes
        if out_of_time and best_state is not None:
            break
        done = it
        learner.train()
        loss = learner.meta_loss(sampler.sample_batch(args.meta_batch, g))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(learner.parameters(), 10.0)
        opt.step()
        if it % args.every == 0 or it == args.iterations or out_of_time:
            learner.eval()
            acc = evaluate(learner, val_set).mean
            if acc > best_acc:
                best_acc, best_at = acc, it
                best_state = {k: v.detach().clone() for k, v in learner.state_dict().items()}
            row = {"iteration": it, "loss": loss.item(), "val_accuracy": acc,
                   "cpu_s": time.process_time() - cpu0}
            curve.write(json.dumps(row) + "\n")
            curve.flush()
            log(json.dumps(row))
            save_snapshot(state_path, Snapshot(
                learner=learner.state_dict(), iterations=it, cpu_seconds=row["cpu_s"],
                optimizer=opt.state_dict(), best_state=best_state, best_iteration=best_at,
                extra={"best_acc": best_acc, "generator": g.get_state(),
                       "rng": capture_rng(torch.device("cpu"))}))
    train_cpu = time.process_time() - cpu0
    curve.close()
    learner.load_state_dict(best_state)
    learner.eval()
    episodes = same_episodes(
        episode_set(image_test, {"ways": WAYS, "shots": SHOTS, "queries": QUERIES, "seed": 0}, args.episodes),
        FewShotSampler(test, WAYS, SHOTS, QUERIES))
    cpu = time.process_time()
    result = evaluate(learner, episodes)
    test_cpu = time.process_time() - cpu
    instances = None
    if args.learner == "mann":
        instances = instance_accuracy(learner, test, args.instance_episodes)
        log("per-instance accuracy (%): " + ", ".join(
            f"{n}: {v['mean']:.1f} ± {v['ci95']:.1f}" for n, v in instances.items()))
    record = {
        "learner": name, "protocol": "frozen ProtoNet Conv-4 embedding, standardised; 5-way 1-shot",
        "iterations": done, "meta_batch": args.meta_batch, "lr": args.lr,
        "train_shots": args.train_shots, "train_queries": args.train_queries,
        "best_val_accuracy": best_acc, "train_cpu_s": train_cpu, "test_cpu_s": test_cpu,
        "result": result.to_dict(), "encoder": info, "instance_accuracy": instances,
        "instance_episodes": args.instance_episodes if instances else None,
        "command": "python benchmarks/repro_frozen.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    atomic_write_json(args.out / (f"{name}_eval.json" if args.eval_only else f"{name}.json"), record)
    print(f"{name} on the frozen embedding: {result.summary()} (train {train_cpu:.0f} CPU s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
