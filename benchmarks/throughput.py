"""Training throughput of every model of the three studies on the current device, and how far it is from the
machine's peak arithmetic rate.

For each model: images per second through the project's training engine (synthetic uint8 data already on the
device, one warm-up epoch, then a timed epoch), FLOPs per training image (forward + backward, counted by
torch.utils.flop_counter on one batch: convolutions and matrix products, the arithmetic that matters), the
achieved FLOP rate, and its fraction of two peaks: the nominal one (CPU: cores x clock x FLOPs per cycle of
its vector units; GPU: the data-sheet dense rate) and the rate of one large matrix product in the same
precision (what the machine really reaches on the friendliest kernel).

    python benchmarks/throughput.py [--device auto|cpu|cuda] [--precision auto|fp32|bf16|fp16] [--images N] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latentspace.core.io import read_yaml  # noqa: E402
from latentspace.study_a import nets as study_a_nets  # noqa: E402
from latentspace.study_b import autoencoder as study_b_autoencoder  # noqa: E402
from latentspace.study_c import nets as study_c_nets  # noqa: E402
from latentspace.constants import STUDY_C_ARCHS  # noqa: E402
from latentspace.training.device import autocast, pick_device, resolve_precision  # noqa: E402
from latentspace.training.engine import Phase, fit  # noqa: E402

# Data-sheet dense peaks in TFLOP/s (fp32 without TF32, bf16/fp16 tensor cores), by a name fragment.
GPU_PEAKS = {"H200": {"fp32": 67.0, "bf16": 989.0, "fp16": 989.0},
             "H100": {"fp32": 67.0, "bf16": 989.0, "fp16": 989.0},
             "A100": {"fp32": 19.5, "bf16": 312.0, "fp16": 312.0}}


def cpu_nominal_peak() -> tuple[float, str]:
    """fp32 FLOP/s of the cores this process may use: cores x clock x (FMA units x lanes x 2)."""
    cores = len(os.sched_getaffinity(0))
    flags, mhz = "", 0.0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags") and not flags:
                flags = line
            elif line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":")[1])
    lanes = 16 if " avx512f" in flags else 8 if " avx2" in flags else 4
    per_cycle = 2 * lanes * 2          # two FMA pipes, each lane an FMA = 2 FLOPs
    peak = cores * mhz * 1e6 * per_cycle
    return peak, f"{cores} cores x {mhz / 1000:.2f} GHz x {per_cycle} fp32 FLOP/cycle"


def nominal_peak(device: torch.device, precision: str) -> tuple[float | None, str]:
    if device.type == "cpu":
        peak, how = cpu_nominal_peak()
        return (peak, how) if precision == "fp32" else (None, f"no nominal {precision} peak for this CPU")
    name = torch.cuda.get_device_name(device)
    for fragment, peaks in GPU_PEAKS.items():
        if fragment in name:
            return peaks[precision] * 1e12, f"{name} data sheet, dense {precision}"
    return None, f"no data-sheet peak known for {name}"


def measured_matmul_peak(device: torch.device, precision: str) -> float:
    n = 4096 if device.type == "cuda" else 1536
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    reps = 50 if device.type == "cuda" else 4
    for _ in range(2):
        a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _seg_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, target.long())


def models() -> list[tuple[str, str, callable, tuple, str]]:
    """(study, name, builder, input shape CHW, kind) where kind picks the target and loss."""
    out = [("A", name, lambda n=name: study_a_nets.build_net(n), (3, 64, 64), "segment")
           for name in ("nn1", "nn2", "nn3")]
    b = read_yaml(Path(__file__).resolve().parents[1] / "params.yaml")["study_b"]
    channels = (b["conv1_channels"], b["conv2_channels"])
    out += [("B", f"autoencoder h={h}", lambda h=h: study_b_autoencoder.build_autoencoder(h, channels), (3, 32, 32),
             "reconstruct") for h in (16, 512)]
    for arch in STUDY_C_ARCHS:
        out.append(("C", f"{arch} autoencoder", lambda a=arch: study_c_nets.Autoencoder(
            study_c_nets.build_encoder(a), study_c_nets.build_decoder(a)), (1, 28, 28), "reconstruct"))
        out.append(("C", f"{arch} classifier", lambda a=arch: study_c_nets.Classifier(
            study_c_nets.build_encoder(a), study_c_nets.build_head(a)), (1, 28, 28), "classify"))
    return out


def synthetic(kind: str, shape: tuple, n: int, device: torch.device, gen: torch.Generator):
    x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, device=device, generator=gen)
    if kind == "segment":
        return x, torch.randint(0, 4, (n, *shape[1:]), dtype=torch.uint8, device=device, generator=gen), _seg_loss
    if kind == "classify":
        return x, torch.randint(0, 10, (n,), device=device, generator=gen), F.cross_entropy
    return x, None, F.mse_loss


def flops_per_image(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, loss_fn, precision: str) -> float:
    xb = x.float() / 255
    counter = FlopCounterMode(display=False)
    with counter:
        with autocast(x.device, precision):
            out = model(xb)
        loss_fn(out.float(), xb if y is None else y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def bench(device: torch.device, precision: str, images: int, batch_size: int) -> dict:
    gen = torch.Generator(device=device).manual_seed(0)
    rows = []
    for study, name, build, shape, kind in models():
        model = build().to(device)
        x, y, loss_fn = synthetic(kind, shape, images, device, gen)
        fpi = flops_per_image(model, x[:batch_size], None if y is None else y[:batch_size], loss_fn, precision)
        phases = [Phase("adam", 1e-3, 1)]
        kwargs = dict(loss_fn=loss_fn, phases=phases, batch_size=batch_size, precision=precision, desc=name)
        fit(model, x[: max(batch_size * 3, images // 4)], None if y is None else y[: max(batch_size * 3, images // 4)],
            **kwargs)                                   # warm-up: allocator, kernels, autotuning
        result = fit(model, x, y, **kwargs)
        rate = result.train_images_per_second
        rows.append({"study": study, "model": name,
                     "parameters": sum(p.numel() for p in model.parameters()),
                     "train_images_per_second": round(rate, 1),
                     "mflops_per_image": round(fpi / 1e6, 3),
                     "achieved_gflops": round(rate * fpi / 1e9, 2)})
        print(f"  {study} {name:24s} {rate:10.0f} img/s  {fpi / 1e6:8.2f} MFLOP/img", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    ap.add_argument("--images", type=int, default=None, help="images per timed epoch (default: 8192 CPU, 65536 GPU)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    device = pick_device(args.device)
    precision = resolve_precision(device, args.precision)
    images = args.images or (65536 if device.type == "cuda" else 8192)
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'CPU'}, " \
        f"{torch.get_num_threads()} threads"
    print(f"device: {device.type} ({what}), precision {precision}, batch {args.batch_size}, "
          f"{images} images per timed epoch, torch {torch.__version__}", file=sys.stderr)
    nominal, nominal_how = nominal_peak(device, precision)
    matmul = measured_matmul_peak(device, precision)
    rows = bench(device, precision, images, args.batch_size)
    for r in rows:
        flops = r["achieved_gflops"] * 1e9
        r["fraction_of_nominal_peak"] = round(flops / nominal, 4) if nominal else None
        r["fraction_of_matmul_peak"] = round(flops / matmul, 4)

    print(f"\nnominal peak: {nominal / 1e9:,.0f} GFLOP/s ({nominal_how})" if nominal else f"\nnominal peak: {nominal_how}")
    print(f"measured peak (one large {precision} matmul): {matmul / 1e9:,.0f} GFLOP/s\n")
    header = "| study | model | parameters | images/s | MFLOP/image (fwd+bwd) | GFLOP/s | of nominal peak | of matmul peak |"
    print(header)
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        nom = f"{100 * r['fraction_of_nominal_peak']:.1f}%" if r["fraction_of_nominal_peak"] is not None else "n/a"
        print(f"| {r['study']} | {r['model']} | {r['parameters']:,} | {r['train_images_per_second']:,.0f} | "
              f"{r['mflops_per_image']:.2f} | {r['achieved_gflops']:.1f} | {nom} | "
              f"{100 * r['fraction_of_matmul_peak']:.1f}% |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": device.type, "device_name": what, "precision": precision,
                                         "batch_size": args.batch_size, "images": images,
                                         "nominal_peak_flops": nominal, "nominal_peak": nominal_how,
                                         "matmul_peak_flops": matmul, "models": rows}, indent=2))


if __name__ == "__main__":
    main()
