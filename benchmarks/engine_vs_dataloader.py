"""Throughput of the project's training engine against the common tutorial pipeline, on the same model.

For each of Study C's classifiers (conv and fc, or the one `--arch` names), both pipelines train the same model
from the same initial weights with Adam for the same number of steps of the same batch size (the architecture's
`study_c.architectures.<arch>.batch_size` from params.yaml unless `--batch-size` says otherwise), with
RandomErasing(p=1, scale=(0.1, 0.15), value=0) on every training image, in the same precision and with the same
number of threads:

- engine: `latentspace.training.engine.fit` (uint8 dataset as one tensor on the device, index permutation, float
  conversion and erasing per batch on the device);
- baseline: `torchvision.datasets.MNIST` (written from the same arrays in its raw IDX format) with per-sample
  transforms `ToTensor()` + `RandomErasing(...)`, batched by a plain `torch.utils.data.DataLoader` (shuffle), the
  way tutorials do it; each batch is moved to the device in the loop.

Data, in this order: `$LATENTSPACE_DATA_DIR/mnist.npz`, the prepared `data/mnist`, or synthetic digits (the
benchmark says which). Prints both throughputs in training images per second and their ratio.

    python benchmarks/engine_vs_dataloader.py [--steps 200] [--batch-size N] [--arch conv|fc|both] [--workers 0,2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from latentspace.constants import STUDY_C_ARCHS  # noqa: E402
from latentspace.study_c import nets  # noqa: E402
from latentspace.study_c.erasing import erasing  # noqa: E402
from latentspace.core.errors import UserError  # noqa: E402
from latentspace.core.params import load_params  # noqa: E402
from latentspace.datasets import DATA_DIR_ENV, load_prepared  # noqa: E402
from latentspace.training.device import autocast, pick_device, resolve_precision  # noqa: E402
from latentspace.training.engine import Phase, fit, make_optimizer, to_device  # noqa: E402

SCALE, RATIO = (0.1, 0.15), (0.3, 3.3)


def load_images(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """n training images (N, 28, 28) uint8 and labels, and a note on where they came from."""
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir and (Path(data_dir) / "mnist.npz").is_file():
        path = Path(data_dir) / "mnist.npz"
        with np.load(path) as z:
            x, y = z["x_train"], z["y_train"]
        source = f"MNIST from {path}"
    elif (ROOT / "data/mnist/x_train.npy").is_file():
        try:
            arrays = load_prepared("mnist", ROOT / "data")
        except UserError as e:
            raise SystemExit(f"error: {e}") from None
        x, y = np.asarray(arrays["x_train"])[:, 0], np.asarray(arrays["y_train"])
        source = f"MNIST prepared in {ROOT / 'data/mnist'}"
    else:
        # Throughput does not depend on what the pixels show, only on their shape and type.
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n)
        source = (f"SYNTHETIC random images (neither {DATA_DIR_ENV}/mnist.npz nor data/mnist was found); "
                  "throughput does not depend on the pixels")
    reps = -(-n // len(x))
    x, y = np.concatenate([x] * reps)[:n], np.concatenate([y] * reps)[:n]
    return np.ascontiguousarray(x), y.astype(np.int64), source


def write_idx(folder: Path, x: np.ndarray, y: np.ndarray) -> Path:
    """Write x, y as torchvision's MNIST raw files (IDX, big-endian), so `torchvision.datasets.MNIST` reads them."""
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, images, labels in (("train", x, y), ("t10k", x[:10], y[:10])):
        with open(raw / f"{prefix}-images-idx3-ubyte", "wb") as f:
            f.write(bytes([0, 0, 8, 3]) + np.array(images.shape, ">i4").tobytes() + images.tobytes())
        with open(raw / f"{prefix}-labels-idx1-ubyte", "wb") as f:
            f.write(bytes([0, 0, 8, 1]) + np.array([len(labels)], ">i4").tobytes() + labels.astype(np.uint8).tobytes())
    return folder


def model_for(arch: str, device: torch.device) -> torch.nn.Module:
    return nets.Classifier(nets.initial("encoder", arch, 0, device), nets.initial("head", arch, 0, device))


def run_engine(arch, x, y, *, batch_size, lr, precision, device) -> float:
    model = model_for(arch, device)
    xt, yt = to_device(x[:, None], device), to_device(y, device)
    result = fit(model, xt, yt, loss_fn=F.cross_entropy, phases=[Phase("adam", lr, 1)], batch_size=batch_size,
                 augment=erasing(SCALE, RATIO), precision=precision, seed=0, desc="engine")
    return result.train_images_per_second


def run_dataloader(arch, x, y, *, batch_size, lr, precision, device, workers) -> float:
    import torchvision
    from torchvision import transforms

    model = model_for(arch, device)
    optimizer = make_optimizer(model.parameters(), Phase("adam", lr, 1))
    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.RandomErasing(p=1.0, scale=SCALE, ratio=RATIO, value=0)])
    with tempfile.TemporaryDirectory() as tmp:
        dataset = torchvision.datasets.MNIST(str(write_idx(Path(tmp), x, y)), train=True, download=False,
                                             transform=transform)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                             pin_memory=device.type == "cuda", drop_last=False)
        model.train()
        images = 0
        t0 = None
        for xb, yb in loader:
            if t0 is None:   # the first batch pays for worker start-up: not counted
                t0 = time.perf_counter()
                continue
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            with autocast(device, precision):
                out = model(xb)
            loss = F.cross_entropy(out.float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            images += len(xb)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    return images / seconds


def study_c_batch_size(arch: str) -> int:
    try:
        return load_params(ROOT / "params.yaml")["study_c"]["architectures"][arch]["batch_size"]
    except UserError as e:
        print(f"note: {e}; using batch size 128")
        return 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="training steps of each pipeline")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: study_c.architectures.<arch>.batch_size in params.yaml")
    parser.add_argument("--arch", choices=(*STUDY_C_ARCHS, "both"), default="both")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto")
    parser.add_argument("--workers", default="0,2",
                        help="comma-separated DataLoader worker counts to run the baseline with")
    args = parser.parse_args()
    try:
        workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        raise SystemExit(f"error: --workers {args.workers!r}: expected comma-separated integers, e.g. 0,2") from None
    if args.steps < 2 or (args.batch_size is not None and args.batch_size < 1) or min(workers) < 0:
        raise SystemExit("error: --steps must be at least 2, --batch-size at least 1, --workers at least 0")
    try:
        device = pick_device(args.device)
        precision = resolve_precision(device, args.precision)
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"device {device.type}, precision {precision}, {torch.get_num_threads()} threads", flush=True)
    for arch in STUDY_C_ARCHS if args.arch == "both" else (args.arch,):
        batch_size = args.batch_size or study_c_batch_size(arch)
        n = args.steps * batch_size
        x, y, source = load_images(n)
        print(f"{arch} classifier; data: {source}; {n} images = {args.steps} steps of {batch_size}")
        common = dict(batch_size=batch_size, lr=args.lr, precision=precision, device=device)
        # Warm-up: first calls allocate and pick kernels; neither pipeline should pay for that in its timing.
        warm = min(n, 4 * batch_size)
        run_engine(arch, x[:warm], y[:warm], **common)
        engine = run_engine(arch, x, y, **common)
        print(f"  engine:                 {engine:10.0f} images/s", flush=True)
        for w in workers:
            baseline = run_dataloader(arch, x, y, workers=w, **common)
            print(f"  DataLoader, {w} workers: {baseline:10.0f} images/s  (torchvision MNIST + ToTensor + "
                  f"RandomErasing per sample); engine / DataLoader {engine / baseline:.2f}x", flush=True)

if __name__ == "__main__":
    main()
