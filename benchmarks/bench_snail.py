"""SNAIL meta-iteration cost: the shared support prefix against one full sequence per query.

    OMP_NUM_THREADS=1 python benchmarks/bench_snail.py [--ways 5 20] [--meta-batch 16] [--rounds 3]

The reference is the textbook construction (and ours before): every query gets its own
``[support..., query]`` sequence through the whole network. ``SNAIL.classify`` computes the causal
support positions once per task and each query as one appended position (the same function; the
tests check logits and gradients equal in float64). Both run in the same process on the same
inputs; a meta-iteration is embedding + sequence network, forward and backward, CPU seconds
(process time, medians over rounds after a warm-up).
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


def iteration(model, sequence_fn, sx, sy, qx) -> float:
    t = time.process_time()
    zs, zq = embed_pair(model.embedding, sx, qx, batch_dims=2)
    logits = sequence_fn(model.labelled(zs, sy), model.labelled(zq, None))
    logits.logsumexp(-1).sum().backward()
    model.zero_grad(set_to_none=True)
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
    print(f"{'ways':>4}  {'reference CPU s':>15}  {'shared prefix CPU s':>19}  {'speed-up':>8}")
    for ways in args.ways:
        torch.manual_seed(0)
        model = get_algorithm("snail")(ways=ways, shots=1)
        sx = torch.randn(args.meta_batch, ways, 1, 28, 28)
        sy = torch.arange(ways).repeat(args.meta_batch, 1)
        qx = torch.randn(args.meta_batch, ways * args.queries, 1, 28, 28)
        times = {"reference": [], "shared": []}
        for r in range(args.rounds + 1):  # round 0 warms up
            for name, fn in (("reference", model.sequence_logits), ("shared", model.classify)):
                seconds = iteration(model, fn, sx, sy, qx)
                if r:
                    times[name].append(seconds)
        ref, fast = statistics.median(times["reference"]), statistics.median(times["shared"])
        print(f"{ways:>4}  {ref:>15.3f}  {fast:>19.3f}  {ref / fast:>7.2f}x", flush=True)


if __name__ == "__main__":
    main()
