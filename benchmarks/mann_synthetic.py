"""MANN on a synthetic binding task: how long until the memory is used at all?

    python benchmarks/mann_synthetic.py [--iterations 6000] [--key-strength [--initial-key-strength 10]]
        [--out JSON]

Each episode has 5 classes, each a random 64-d prototype; support and query examples are the
prototype plus Gaussian noise (std 0.3), so classes are trivially separable and no embedding has to
be learned (``nn.Flatten``). The episode is read as Santoro et al.'s ``(x_t, y_{t-1})`` sequence,
5 shuffled supports then each query. Whatever the controller needs to learn here it also needs on
Omniglot, so the number of iterations until query accuracy leaves chance (20 %) is a lower bound
for the Omniglot runs. Query accuracy on 200 fresh 5-way 1-shot episodes every ``--every``
iterations; CPU time recorded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from metaloop.algorithms.mann import MANN  # noqa: E402
from metaloop.io import atomic_write_json  # noqa: E402
from metaloop.tasks.episode import EpisodeBatch  # noqa: E402

DIM, WAYS, NOISE = 64, 5, 0.3


def synthetic_batch(tasks: int, shots: int, g: torch.Generator) -> EpisodeBatch:
    proto = torch.randn(tasks, WAYS, DIM, generator=g)
    rows = torch.arange(tasks)[:, None]
    sy = torch.arange(WAYS).repeat(shots).expand(tasks, -1)
    qy = torch.arange(WAYS).expand(tasks, -1)
    sx = proto[rows, sy] + NOISE * torch.randn(tasks, WAYS * shots, DIM, generator=g)
    qx = proto[rows, qy] + NOISE * torch.randn(tasks, WAYS, DIM, generator=g)
    return EpisodeBatch(sx, sy, qx, qy)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=6000)
    ap.add_argument("--meta-batch", type=int, default=16)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--key-strength", action="store_true", help="NTM read sharpness (see memory.py)")
    ap.add_argument("--initial-key-strength", type=float, default=None,
                    help="where that sharpness starts (needs --key-strength; default PyTorch's, ~1.7)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    model = MANN(WAYS, nn.Flatten(), input_shape=(DIM,), key_strength=args.key_strength,
                 initial_key_strength=args.initial_key_strength)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    g, test_g = torch.Generator().manual_seed(args.seed), torch.Generator().manual_seed(10_000)
    test = synthetic_batch(200, 1, test_g)
    curve, cpu0 = [], time.process_time()
    for it in range(1, args.iterations + 1):
        model.train()
        loss = model.meta_loss(synthetic_batch(args.meta_batch, 1, g))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        if it % args.every == 0 or it == args.iterations:
            model.eval()
            with torch.no_grad():
                acc = float((model.batch_logits(test).argmax(-1) == test.query_y).float().mean())
            curve.append({"iteration": it, "loss": loss.item(), "query_accuracy": acc,
                          "cpu_s": time.process_time() - cpu0})
            print(json.dumps(curve[-1]), flush=True)
    if args.out:
        atomic_write_json(args.out, {"key_strength": args.key_strength,
                                     "initial_key_strength": args.initial_key_strength,
                                     "meta_batch": args.meta_batch,
                                     "noise": NOISE, "dim": DIM, "curve": curve})


if __name__ == "__main__":
    main()
