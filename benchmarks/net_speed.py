"""Training speed of Study B's and Study C's autoencoders and Study C's conv classifier in the layer order the
original lists (ReLU, then max-pool; plain ReLUs) against the order the project runs (max-pool, then an in-place
ReLU): images per second of plain training steps on one thread, the median of interleaved rounds, and whether
the two orders end with bit-identical weights (they must: ReLU commutes with max-pool exactly).

    python benchmarks/net_speed.py [--rounds 5] [--steps 60]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latentspace.study_b.autoencoder import ConvAutoencoder  # noqa: E402
from latentspace.study_c import nets as study_c_nets  # noqa: E402


def study_c_model(kind: str, original_order: bool) -> nn.Module:
    torch.manual_seed(0)
    encoder = study_c_nets.build_encoder("conv", original_order)
    if kind == "autoencoder":
        model = study_c_nets.Autoencoder(encoder, study_c_nets.build_decoder("conv", original_order))
    else:
        model = study_c_nets.Classifier(encoder, study_c_nets.build_head("conv"))
    return model.to(memory_format=torch.channels_last)


def study_b_model(hidden: int, original_order: bool) -> nn.Module:
    torch.manual_seed(0)
    return ConvAutoencoder(hidden, (16, 32), original_order=original_order).to(memory_format=torch.channels_last)


def train(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None, steps: int) -> tuple[float, dict]:
    """Images per second of `steps` Adam steps (after 3 warm-up steps) and the final weights."""
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.mse_loss(out, x) if target is None else F.cross_entropy(out, target)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(x) / (time.perf_counter() - t0), model.state_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    torch.set_num_threads(1)       # as each pool worker runs
    mnist, labels = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
    cifar = torch.rand(128, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    cases = [("Study C conv autoencoder", lambda s: study_c_model("autoencoder", s), mnist, None, 1),
             ("Study C conv classifier", lambda s: study_c_model("classifier", s), mnist, labels, 1),
             ("Study B autoencoder, hidden 16", lambda s: study_b_model(16, s), cifar, None, 4),
             ("Study B autoencoder, hidden 512", lambda s: study_b_model(512, s), cifar, None, 4)]
    print(f"{'model':34s} {'original':>12s} {'project':>12s} {'speed-up':>9s}  bit-identical   (images/s, 1 thread)")
    for name, build, x, y, slower in cases:
        rates = {True: [], False: []}
        weights = {}
        steps = max(3, args.steps // slower)
        for _ in range(args.rounds):
            for original_order in (True, False):
                rate, weights[original_order] = train(build(original_order), x, y, steps)
                rates[original_order].append(rate)
        spec, fast = statistics.median(rates[True]), statistics.median(rates[False])
        same = all(torch.equal(weights[True][k], weights[False][k]) for k in weights[True])
        print(f"{name:34s} {spec:12.0f} {fast:12.0f} {fast / spec:8.2f}x  {same}", flush=True)


if __name__ == "__main__":
    main()
