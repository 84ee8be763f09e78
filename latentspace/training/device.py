"""The one place that picks the device and the arithmetic precision."""
from __future__ import annotations

import contextlib

import torch

from latentspace.core.errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("parameter 'device' = 'cuda' but no CUDA GPU is visible; use auto or cpu")
    if name not in ("cpu", "cuda"):
        raise UserError(f"parameter 'device' = {name!r} is not allowed; expected one of auto, cpu, cuda")
    return torch.device(name)


def _cpu_has_fast_bf16() -> bool:
    # bf16 autocast only pays off on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX);
    # elsewhere it is emulated and slower than fp32.
    caps = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    return "AVX512" in str(caps).upper() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """Return the precision actually used: 'fp32', 'bf16' or 'fp16'."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if _cpu_has_fast_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UserError("parameter 'precision' = 'fp16' needs a CUDA device; use auto, fp32 or bf16 on the CPU")
    return precision


def autocast(device: torch.device, precision: str):
    """Mixed-precision context for the forward pass ('fp32' means none)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup_run(params: dict) -> tuple[torch.device, str]:
    """The device and precision a stage runs on, from the shared `device`, `precision` and `seed` parameters,
    with every random generator seeded: the first step of each stage that runs a net."""
    device = pick_device(params["device"])
    precision = resolve_precision(device, params["precision"])
    seed_everything(params["seed"])
    return device, precision
