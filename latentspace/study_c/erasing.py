"""Augmentations applied per batch on the device (the engine's `augment` argument).

`random_erasing` is torchvision's `RandomErasing(p=1, value=0)` for a whole batch at once. torchvision draws,
per image, up to 10 candidate boxes (area fraction uniform in `scale`, aspect ratio log-uniform in `ratio`,
sides rounded) and erases the first that fits inside the image at a uniform position; when none of the 10
fits, the image stays as it is. Here every image's 10 candidates are drawn in one call and the first that fits
is taken, so the distribution is the same and nothing runs per image in Python.
"""
from __future__ import annotations

import math

import torch

ATTEMPTS = 10  # torchvision's RandomErasing.get_params tries this many boxes per image


def check_erasing_args(scale: tuple[float, float], ratio: tuple[float, float]) -> None:
    if not (len(scale) == 2 and 0 < scale[0] <= scale[1] <= 1):
        raise ValueError(f"erasing scale {tuple(scale)} must be (lo, hi) with 0 < lo <= hi <= 1")
    if not (len(ratio) == 2 and 0 < ratio[0] <= ratio[1]):
        raise ValueError(f"erasing ratio {tuple(ratio)} must be (lo, hi) with 0 < lo <= hi")


def erasing_boxes(batch: int, height: int, width: int, generator: torch.Generator | None, *,
                  scale: tuple[float, float] = (0.1, 0.15), ratio: tuple[float, float] = (0.3, 3.3),
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
    """Per image the box torchvision would erase: (top, left, h, w) int64 tensors of length `batch`,
    with h = w = 0 for an image none of whose candidates fit."""
    check_erasing_args(scale, ratio)
    area = height * width
    u = torch.rand(4, batch, ATTEMPTS, generator=generator, device=device, dtype=torch.float64)
    erase_area = area * (scale[0] + (scale[1] - scale[0]) * u[0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[1])
    # torch.round, like Python's round(), rounds halves to even.
    h = torch.sqrt(erase_area * aspect).round().long()
    w = torch.sqrt(erase_area / aspect).round().long()
    fits = (h < height) & (w < width)
    first = fits.long().argmax(dim=1, keepdim=True)          # index of the first candidate that fits
    found = fits.any(dim=1)
    h = torch.where(found, h.gather(1, first).squeeze(1), 0)
    w = torch.where(found, w.gather(1, first).squeeze(1), 0)
    # The position is uniform over the places where the box fits: randint(0, H - h + 1) in torchvision.
    top = (u[2, :, 0] * (height - h + 1)).floor().long().clamp_(max=height - h)
    left = (u[3, :, 0] * (width - w + 1)).floor().long().clamp_(max=width - w)
    return top, left, h, w


def random_erasing(x: torch.Tensor, generator: torch.Generator | None, *,
                   scale: tuple[float, float] = (0.1, 0.15), ratio: tuple[float, float] = (0.3, 3.3),
                   value: float = 0.0) -> torch.Tensor:
    """Erase one random box per image of a (B, C, H, W) batch (all channels) to `value`; returns a new tensor."""
    batch, _, height, width = x.shape
    top, left, h, w = erasing_boxes(batch, height, width, generator, scale=scale, ratio=ratio, device=x.device)
    rows = torch.arange(height, device=x.device)
    cols = torch.arange(width, device=x.device)
    in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])       # (B, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])     # (B, W)
    mask = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]          # (B, 1, H, W)
    return x.masked_fill(mask, value)


def erasing(scale: tuple[float, float] = (0.1, 0.15), ratio: tuple[float, float] = (0.3, 3.3),
            value: float = 0.0):
    """`random_erasing` with fixed settings, in the form the engine's `augment` argument takes."""
    check_erasing_args(scale, ratio)
    scale, ratio = tuple(scale), tuple(ratio)

    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_erasing(x, generator, scale=scale, ratio=ratio, value=value)
    augment.settings = {"name": "random_erasing", "p": 1.0, "scale": list(scale), "ratio": list(ratio), "value": value}
    return augment
