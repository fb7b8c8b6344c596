"""SNAIL meta-iteration cost: shared support prefix and channels-last Conv-4 against the textbook way.

    OMP_NUM_THREADS=1 python benchmarks/bench_snail.py [--ways 5 20] [--meta-batch 16] [--rounds 3]

The reference is the textbook construction (and ours before): a plain NCHW Conv-4, and every
query gets its own ``[support..., query]`` sequence through the whole network. ``SNAIL.classify``
computes the causal support positions once per task and each query as one appended position, and
the default embedding is now ``ChannelsLastConv4``; both are the same function (tests check them
in float64). All columns run in the same process on the same inputs and weights; a
meta-iteration is embedding + sequence network, forward and backward, CPU seconds (process time,
medians over rounds after a warm-up).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a checkout: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from metaloop.algorithms import get_algorithm
from metaloop.modelbased.episode_sequence import embed_pair
from metaloop.nets.conv4 import Conv4


def iteration(model, embedding, sequence_fn, sx, sy, qx) -> float:
    t = time.process_time()
    zs, zq = embed_pair(embedding, sx, qx, batch_dims=2)
    logits = sequence_fn(model.labelled(zs, sy), model.labelled(zq, None))
    logits.logsumexp(-1).sum().backward()
    model.zero_grad(set_to_none=True)
    embedding.zero_grad(set_to_none=True)
    return time.process_time() - t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ways", type=int, nargs="+", default=[5, 20])
    ap.add_argument("--queries", type=int, default=2, help="queries per class (the presets' training value)")
    ap.add_argument("--meta-batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), meta-batch {args.meta_batch}, "
          f"{args.queries} queries per class, 28x28 Conv-4 embedding")
    columns = ("reference", "shared prefix", "+ channels-last")
    print(f"{'ways':>4}  " + "  ".join(f"{c + ' CPU s':>21}" for c in columns) + "  speed-ups")
    for ways in args.ways:
        torch.manual_seed(0)
        model = get_algorithm("snail")(ways=ways, shots=1)
        sx = torch.randn(args.meta_batch, ways, 1, 28, 28)
        sy = torch.arange(ways).repeat(args.meta_batch, 1)
        qx = torch.randn(args.meta_batch, ways * args.queries, 1, 28, 28)
        plain = Conv4(1, None, image_size=28, norm="batch")  # the NCHW Conv-4, same weights
        plain.load_state_dict(model.embedding.state_dict())
        runs = [(plain, model.sequence_logits), (plain, model.classify), (model.embedding, model.classify)]
        times = [[] for _ in runs]
        for r in range(args.rounds + 1):  # round 0 warms up
            for i, (embedding, fn) in enumerate(runs):
                seconds = iteration(model, embedding, fn, sx, sy, qx)
                if r:
                    times[i].append(seconds)
        med = [statistics.median(t) for t in times]
        print(f"{ways:>4}  " + "  ".join(f"{m:>21.3f}" for m in med) + "  "
              + " / ".join(f"{med[0] / m:.2f}x" for m in med[1:]), flush=True)


if __name__ == "__main__":
    main()
