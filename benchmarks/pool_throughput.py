"""Training throughput of one process with 2 threads against 2 single-threaded processes side by side (the
project's worker pool), for each net family: why the stages run one independent run per core.

Per family: images per second through the training engine (synthetic uint8 data, the family's batch size from
params.yaml), for 1 process x 1 thread, 1 process x 2 threads, and 2 pool workers x 1 thread each training at the
same time (their total). The two workers start their timed epoch together (a barrier) after a warm-up; each
timed epoch lasts about --seconds. Prints a Markdown table and the CPU it ran on (model, AVX2 / AVX512).

    python benchmarks/pool_throughput.py [--seconds 2] [--families fc,conv,conv_ae,nn1,study_b]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from latentspace.core.io import read_yaml  # noqa: E402
from latentspace.training.engine import Phase, fit  # noqa: E402
from latentspace.training.pool import WorkerPool, cpu_cores  # noqa: E402

# family: (title, input shape CHW, kind). kind picks the target and loss.
FAMILIES = {
    "fc": ("Study C fc classifier", (1, 28, 28), "classify"),
    "conv": ("Study C conv classifier", (1, 28, 28), "classify"),
    "conv_ae": ("Study C conv autoencoder", (1, 28, 28), "reconstruct"),
    "nn1": ("Study A NN1 (segmentation)", (3, 64, 64), "segment"),
    "study_b": ("Study B autoencoder (h=256)", (3, 32, 32), "reconstruct"),
}


def build(family: str, params: dict) -> tuple[torch.nn.Module, int]:
    """The family's net and the batch size it trains with at the defaults."""
    c = params["study_c"]["architectures"]
    if family in ("fc", "conv", "conv_ae"):
        from latentspace.study_c import nets
        arch = "fc" if family == "fc" else "conv"
        model = (nets.initial_autoencoder(arch, 0) if family == "conv_ae"
                 else nets.Classifier(nets.initial("encoder", arch, 0), nets.initial("head", arch, 0)))
        return model, c[arch]["batch_size"]
    if family == "nn1":
        from latentspace.study_a import nets
        return nets.build_net("nn1"), params["segmentation"]["batch_size"]
    from latentspace.study_b import autoencoder
    b = params["study_b"]
    return autoencoder.build_autoencoder(256, (b["conv1_channels"], b["conv2_channels"])), b["ae_batch_size"]


def _seg_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, target.long())


def synthetic(kind: str, shape: tuple, n: int):
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=gen)
    if kind == "segment":
        return x, torch.randint(0, 4, (n, *shape[1:]), dtype=torch.uint8, generator=gen), _seg_loss
    if kind == "classify":
        return x, torch.randint(0, 10, (n,), generator=gen), F.cross_entropy
    return x, None, F.mse_loss


def images_per_second(family: str, seconds: float, barrier=None) -> float:
    """One run: warm up, size an epoch to about `seconds`, wait for the other run (barrier), time that epoch."""
    params = read_yaml(ROOT / "params.yaml")
    _, shape, kind = FAMILIES[family]
    model, batch_size = build(family, params)
    x, y, loss_fn = synthetic(kind, shape, batch_size * 4)
    kw = dict(loss_fn=loss_fn, phases=[Phase("adam", 1e-3, 1)], batch_size=batch_size, desc=family)
    fit(model, x[:batch_size * 2], None if y is None else y[:batch_size * 2], **kw)   # kernels, lazy imports
    rate = fit(model, x, y, **kw).train_images_per_second     # a first estimate, to size the timed epoch
    n = max(batch_size * 4, int(rate * seconds) // batch_size * batch_size)
    x, y, _ = synthetic(kind, shape, n)
    if barrier is not None:
        barrier.wait()
    return fit(model, x, y, **kw).train_images_per_second


def cpu_description() -> str:
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line
    except OSError:
        pass
    model = model or platform.processor() or "unknown CPU"
    vector = "AVX512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "no AVX2"
    caps = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    return f"{model}, {cpu_cores()} cores; {vector} (torch kernels: {caps}); torch {torch.__version__}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="length of each timed epoch (default 2)")
    ap.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated, of {', '.join(FAMILIES)}")
    args = ap.parse_args()
    families = [f for f in args.families.split(",") if f]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or args.seconds <= 0:
        raise SystemExit(f"error: unknown families {unknown}; expected some of {', '.join(FAMILIES)}" if unknown
                         else "error: --seconds must be positive")
    load = os.getloadavg()[0]
    print(f"CPU: {cpu_description()}; load average {load:.1f} at the start"
          + (" (other processes are running: the figures are distorted, threads most)" if load > 0.5 else ""),
          flush=True)
    t0 = time.perf_counter()
    rows = {}
    for family in families:
        rows[family] = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            rows[family][f"1x{threads}"] = images_per_second(family, args.seconds)
        print(f"  {family}: 1x1 {rows[family]['1x1']:,.0f}, 1x2 {rows[family]['1x2']:,.0f} images/s",
              file=sys.stderr, flush=True)
    with multiprocessing.get_context("spawn").Manager() as manager:
        barrier = manager.Barrier(2)
        with WorkerPool(2, "cpu", tasks=2) as pool:
            for family in families:
                both = [pool.submit(images_per_second, family, args.seconds, barrier) for _ in range(2)]
                rows[family]["2x1"] = sum(f.result() for f in both)
                print(f"  {family}: 2x1 {rows[family]['2x1']:,.0f} images/s in total", file=sys.stderr, flush=True)
    print(f"\n| net family | 1 process x 1 thread | 1 process x 2 threads | 2 processes x 1 thread (total) | "
          f"2x1 over 1x2 |\n|---|---:|---:|---:|---:|")
    for family, r in rows.items():
        print(f"| {FAMILIES[family][0]} | {r['1x1']:,.0f} | {r['1x2']:,.0f} | {r['2x1']:,.0f} | "
              f"{r['2x1'] / r['1x2']:.2f}x |")
    print(f"\nimages per second of training (fp32, batch sizes of params.yaml); {time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
