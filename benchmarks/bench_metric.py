"""ProtoNet training and evaluation speed: a plain-PyTorch reference loop vs metaloop, same run.

    python benchmarks/bench_metric.py [--episodes 40] [--rounds 3] [--threads N] [--compile]
        [--precisions fp32 bf16]

Reference (the style of the 16.7 episodes/s baseline): a Python list of per-class lists of float
image tensors, each episode assembled with ``random.sample`` and ``torch.stack``, a standard
``nn.Sequential`` Conv-4 (conv, BN, ReLU, max-pool), Snell's distance code, Adam.
metaloop: the uint8 dataset stays one tensor and an episode is one gather (``FewShotSampler``),
``ProtoNet.meta_loss`` embeds support and query in one pass through ``FastConv4`` (channels-last,
pool before ReLU; same function and parameters as Conv4), optionally ``torch.compile``d, and in
float32 and in bfloat16 (an approximation, opt-in in the library; check its accuracy with
``repro_metric.py PRESET --precision bf16``), each against the reference of the same round.
Both do 5-way 1-shot, 15 queries, 28x28 Omniglot (Vinyals train split). Rounds alternate the two
loops so that load from other processes hits both alike; the ratio is taken per round.

Evaluation: 1,000 fixed 5-way 1-shot test episodes scored by ``metaloop.evaluate.evaluate`` (one
episode at a time, standard Conv-4) and by ``evaluate_embedded`` (each distinct image embedded once).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from metaloop.algorithms.protonet import ProtoNet
from metaloop.data.omniglot_splits import load_omniglot
from metaloop.evaluate import evaluate
from metaloop.io import atomic_write_json
from metaloop.metric.fast_eval import evaluate_embedded
from metaloop.nets.conv4 import Conv4
from metaloop.nets.fast_conv4 import FastConv4
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler

WAYS, SHOTS, QUERIES = 5, 1, 15


def reference_model() -> nn.Module:
    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                             nn.MaxPool2d(2))
    return nn.Sequential(block(1, 64), block(64, 64), block(64, 64), block(64, 64), nn.Flatten())


def euclidean_dist(x, y):  # Snell et al.'s protonets/utils.py
    n, m, d = x.size(0), y.size(0), x.size(1)
    return torch.pow(x.unsqueeze(1).expand(n, m, d) - y.unsqueeze(0).expand(n, m, d), 2).sum(2)


def reference_loop(images_by_class, model, opt, episodes, rng):
    for _ in range(episodes):
        classes = rng.sample(range(len(images_by_class)), WAYS)
        support, query = [], []
        for c in classes:
            picked = rng.sample(images_by_class[c], SHOTS + QUERIES)
            support += picked[:SHOTS]
            query += picked[SHOTS:]
        xs, xq = torch.stack(support), torch.stack(query)
        z = model(torch.cat([xs, xq]))
        protos = z[: WAYS * SHOTS].view(WAYS, SHOTS, -1).mean(1)
        dists = euclidean_dist(z[WAYS * SHOTS :], protos)
        y = torch.arange(WAYS).repeat_interleave(QUERIES)
        loss = F.cross_entropy(-dists, y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def metaloop_loop(sampler, algo, opt, episodes, g):
    for _ in range(episodes):
        loss = algo.meta_loss(sampler.sample_batch(1, g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--episodes", type=int, default=40, help="training episodes per loop per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile the metaloop embedding")
    ap.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"],
                    help="metaloop's FastConv4 precisions, each timed against the same reference")
    ap.add_argument("--eval-episodes", type=int, default=1000)
    ap.add_argument("--root", default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_metric.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    splits = load_omniglot(args.root, image_size=28, split="vinyals")
    train = splits.train
    images_by_class = [[train.data[i].float() / 255 for i in train.indices_of(c).tolist()]
                       for c in range(train.num_classes)]
    torch.manual_seed(0)
    ref = reference_model()
    ref_opt = torch.optim.Adam(ref.parameters(), 1e-3)
    runs = {}  # precision -> (learner, optimizer, backbone); same initial weights for each
    init = Conv4(norm="batch").state_dict()
    for precision in args.precisions:
        conv4 = Conv4(norm="batch")
        conv4.load_state_dict(init)
        backbone = FastConv4(conv4, precision)
        algo = ProtoNet(torch.compile(backbone) if args.compile else backbone)
        runs[precision] = (algo, torch.optim.Adam(algo.parameters(), 1e-3), backbone)
    sampler = FewShotSampler(train, WAYS, SHOTS, QUERIES)
    rng, g = random.Random(0), torch.Generator().manual_seed(0)
    warm = {p: timed(lambda a=a, o=o: metaloop_loop(sampler, a, o, 3, g))[0]  # includes any compile
            for p, (a, o, _) in runs.items()}
    reference_loop(images_by_class, ref, ref_opt, 3, rng)
    rounds = []
    for r in range(args.rounds):  # reference then each precision, every round: load hits all alike
        rw, rc = timed(lambda: reference_loop(images_by_class, ref, ref_opt, args.episodes, rng))
        row = {"reference_eps_per_s": args.episodes / rw}
        for p, (a, o, _) in runs.items():
            ow, oc = timed(lambda a=a, o=o: metaloop_loop(sampler, a, o, args.episodes, g))
            row.update({f"{p}_eps_per_s": args.episodes / ow, f"{p}_wall_ratio": rw / ow,
                        f"{p}_cpu_ratio": rc / oc})
        rounds.append(row)
        print(json.dumps({"round": r, **{k: round(v, 2) for k, v in row.items()}}), flush=True)

    test_set = EpisodeSet.generate(FewShotSampler(splits.test, WAYS, SHOTS, QUERIES),
                                   args.eval_episodes, seed=2017)
    summary = {"threads": torch.get_num_threads(), "compile": args.compile, "warmup_s": warm,
               "episodes_per_round": args.episodes, "rounds": rounds,
               "reference_eps_per_s_median": statistics.median(x["reference_eps_per_s"] for x in rounds),
               "eval_episodes": args.eval_episodes}
    for p, (algo, _, backbone) in runs.items():
        for key in ("eps_per_s", "wall_ratio", "cpu_ratio"):
            summary[f"{p}_{key}_median"] = statistics.median(x[f"{p}_{key}"] for x in rounds)
        # each learner as trained (its own weights): the embedded evaluator against evaluate
        std_algo = ProtoNet(Conv4(norm="batch"))
        std_algo.backbone.load_state_dict(backbone.conv4.state_dict())
        fast_res = evaluate_embedded(algo if not args.compile else ProtoNet(backbone), test_set)
        ref_res = evaluate(std_algo, test_set)
        summary[f"{p}_eval"] = {
            "seconds_evaluate": ref_res.seconds, "seconds_evaluate_embedded": fast_res.seconds,
            "accuracy_evaluate_fp32_conv4": ref_res.mean, "accuracy_evaluate_embedded": fast_res.mean,
            "same_accuracy": abs(ref_res.mean - fast_res.mean) < 1e-9}
    summary["load_average_at_end"] = list(__import__("os").getloadavg())
    print(json.dumps(summary, indent=1))
    Path(args.out).parent.mkdir(exist_ok=True)
    atomic_write_json(Path(args.out), summary)


if __name__ == "__main__":
    main()
