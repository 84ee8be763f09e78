"""Study A1: images of three coloured, axis-aligned rectangles on a black background.

Generation has two steps. `draw_parameters` makes every random choice (draw order, colours, geometry) and
returns the (N, 3, 8) parameter table; `render` turns any slice of that table into images, label maps and
full masks without randomness. So the same table always paints the same pixels, and the table is the complete
description of a sample: the pipeline's samples are stored as their table alone (`write_parameters`, kilobytes
instead of gigabytes for DVC to hash and cache), painted in memory when loaded (`load_rectangles`) or chunk by
chunk where a large sample is only counted (`render_chunks`, the EDA). `write_rectangles` / `save_rectangles`
store the pixels too (the image sets of the latent analysis).
"""
from __future__ import annotations

import json
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentspace.constants import MAX_UNCLIPPED_DELTA, RECTANGLE_CLASS_CENTRES
from latentspace.core.errors import UserError
from latentspace.core.io import atomic_dir

# Class centre colours (rows: class 1, 2, 3; columns: R, G, B).
CLASS_COLOURS = np.array(list(RECTANGLE_CLASS_CENTRES.values()), dtype=np.int64)
N_CLASSES = len(RECTANGLE_CLASS_CENTRES)
# Columns of the parameter table; a class absent from an image has -1 in every column.
COLUMNS = ("R", "G", "B", "w", "h", "xc", "yc", "order")
R, G, B, W, H, XC, YC, ORDER = range(8)
GEOMETRY = ("w", "h", "xc", "yc")
# Images painted at once: bounds the temporary (chunk, 3, H, W) masks to a few tens of MB.
CHUNK_PIXELS = 2**24
ARRAYS = ("images", "labels", "masks", "params")


@dataclass
class RectangleSet:
    images: np.ndarray | None   # (N, H, W, 3) uint8 (None: parameters only, see `load_parameters`)
    labels: np.ndarray | None   # (N, H, W) uint8: 0 background, 1..3 the class on top
    masks: np.ndarray | None    # (N, 3, H, W) bool: full (un-occluded) mask of class k+1; all False if absent
    params: np.ndarray   # (N, 3, 8) int16: R, G, B, w, h, xc, yc, order per class (row k = class k+1)
    meta: dict

    def __len__(self) -> int:
        return len(self.params)


def sample_seed(seed: int, sample: str) -> int:
    """The seed of one named sample, derived from the pipeline's seed: samples differ, yet each depends
    only on the top-level seed and its own name."""
    return (seed + zlib.crc32(f"rectangles-{sample}".encode())) % 2**31


def colour_ranges(delta: int) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive per-class, per-channel colour bounds (3, 3), each range clipped to [0, 255]."""
    return np.clip(CLASS_COLOURS - delta, 0, 255), np.clip(CLASS_COLOURS + delta, 0, 255)


def _check_args(n: int, image_size: int, delta: int, classes, fixed: dict) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(image_size, (int, np.integer)) or not 1 <= image_size <= 32767:
        raise ValueError(f"image_size must be an integer from 1 to 32767, got {image_size!r}")
    if isinstance(delta, bool) or not isinstance(delta, (int, np.integer)) or not 0 <= delta <= 127:
        raise ValueError(f"delta must be an integer from 0 to 127, got {delta!r}")
    if classes is not None:
        classes = np.asarray(classes)
        if classes.shape != (n,) or not np.isin(classes, (1, 2, 3)).all():
            raise ValueError(f"classes must be an array of shape ({n},) with values 1, 2, 3")
    for key, value in fixed.items():
        if key == "color":
            if value is not True:
                raise ValueError("fixed['color'] must be True (the class-centre colour)")
            continue
        if key not in GEOMETRY:
            raise ValueError(f"unknown fixed factor {key!r}; expected among color, {', '.join(GEOMETRY)}")
        lo, hi = (1, image_size) if key in ("w", "h") else (0, image_size - 1)
        if not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
            raise ValueError(f"fixed[{key!r}] must be an integer from {lo} to {hi}, got {value!r}")


def _inside(size: int, extent: np.ndarray, centre: np.ndarray) -> np.ndarray:
    start = centre - extent // 2
    return (start >= 0) & (start + extent <= size)


def _draw_geometry(rng: np.random.Generator, count: int, size: int, fixed: dict, contained: bool) -> dict:
    """w, h in [1, size], xc, yc in [0, size); with `contained`, redraw the failing rectangles (only them,
    all their free factors at once) until every one lies inside the frame."""
    def draw(name: str, k: int) -> np.ndarray:
        if name in fixed:
            return np.full(k, fixed[name], dtype=np.int64)
        lo, hi = (1, size) if name in ("w", "h") else (0, size - 1)
        return rng.integers(lo, hi, size=k, endpoint=True)

    geo = {name: draw(name, count) for name in GEOMETRY}
    if not contained:
        return geo
    for extent, centre in (("w", "xc"), ("h", "yc")):
        if extent in fixed and centre in fixed and not _inside(size, np.array(fixed[extent]), np.array(fixed[centre])):
            raise ValueError(f"fixed {extent}={fixed[extent]}, {centre}={fixed[centre]} cannot lie inside a "
                             f"{size}x{size} frame, so no contained rectangle exists")
    failing = np.flatnonzero(~(_inside(size, geo["w"], geo["xc"]) & _inside(size, geo["h"], geo["yc"])))
    while failing.size:
        for name in GEOMETRY:
            geo[name][failing] = draw(name, failing.size)
        ok = _inside(size, geo["w"][failing], geo["xc"][failing]) & _inside(size, geo["h"][failing], geo["yc"][failing])
        failing = failing[~ok]
    return geo


def draw_parameters(n: int, *, image_size: int, delta: int, seed: int, contained: bool,
                    classes=None, fixed: dict | None = None) -> tuple[np.ndarray, dict]:
    """Every random choice of a sample: the (n, 3, 8) int16 parameter table and the sample's meta."""
    fixed = dict(fixed or {})
    _check_args(n, image_size, delta, classes, fixed)
    rng = np.random.default_rng(seed)
    table = np.full((n, N_CLASSES, len(COLUMNS)), -1, dtype=np.int16)
    if classes is None:
        # Every image holds all three classes; draw_class[i, p] is the class painted at position p.
        rows = np.broadcast_to(np.arange(N_CLASSES), (n, N_CLASSES))
        draw_class = rng.permuted(rows, axis=1)
        order = np.argsort(draw_class, axis=1)  # position at which class k+1 is painted
        img_idx, cls_idx = np.indices((n, N_CLASSES)).reshape(2, -1)
        positions = order.reshape(-1)
    else:
        img_idx, cls_idx = np.arange(n), np.asarray(classes, dtype=np.int64) - 1
        positions = np.zeros(n, dtype=np.int64)
    count = len(img_idx)

    lo, hi = colour_ranges(delta)
    if fixed.get("color"):
        colours = CLASS_COLOURS[cls_idx]
    else:
        colours = rng.integers(lo[cls_idx], hi[cls_idx], endpoint=True)
    geo = _draw_geometry(rng, count, image_size, fixed, contained)

    table[img_idx, cls_idx, R:B + 1] = colours
    for name, col in zip(GEOMETRY, (W, H, XC, YC)):
        table[img_idx, cls_idx, col] = geo[name]
    table[img_idx, cls_idx, ORDER] = positions

    clipped = bool(delta > MAX_UNCLIPPED_DELTA) and not fixed.get("color")
    if clipped:
        print(f"note: delta={delta} > {MAX_UNCLIPPED_DELTA}: colour ranges clipped to [0, 255] "
              f"(class centre - delta below 0 or + delta above 255)", file=sys.stderr)
    meta = {"n": int(n), "image_size": int(image_size), "delta": int(delta), "seed": int(seed),
            "contained": bool(contained), "clipped_colours": clipped,
            "colour_ranges": {f"class_{k + 1}": {ch: [int(lo[k, c]), int(hi[k, c])] for c, ch in enumerate("RGB")}
                              for k in range(N_CLASSES)},
            "one_per_image": classes is not None, "fixed": {k: (bool(v) if k == "color" else int(v))
                                                           for k, v in sorted(fixed.items())}}
    return table, meta


def render(params: np.ndarray, image_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (N,H,W,3), label maps (N,H,W) and full masks (N,3,H,W) painted from a parameter table."""
    p = params.astype(np.int64)
    present = p[:, :, ORDER] >= 0
    axis = np.arange(image_size)

    def cover(extent: np.ndarray, centre: np.ndarray) -> np.ndarray:
        # Which pixel columns (rows) each rectangle covers: [c - e//2, c - e//2 + e) clipped by the frame.
        start = (centre - extent // 2)[..., None]
        return present[..., None] & (axis >= start) & (axis < start + extent[..., None])

    cols = cover(p[:, :, W], p[:, :, XC])                       # (N, 3, W)
    rows = cover(p[:, :, H], p[:, :, YC])                       # (N, 3, H)
    masks = rows[:, :, :, None] & cols[:, :, None, :]           # (N, 3, H, W)
    # Paint in draw order, so a later rectangle covers an earlier one. The colour is painted as one
    # little-endian uint32 (R | G << 8 | B << 16) per pixel: one masked copy per rectangle, not three.
    n = len(p)
    labels = np.zeros((n, image_size, image_size), dtype=np.uint8)
    rgbx = np.zeros((n, image_size, image_size), dtype="<u4")
    packed = (p[:, :, R] | p[:, :, G] << 8 | p[:, :, B] << 16).astype("<u4")
    by_position = np.argsort(np.where(present, p[:, :, ORDER], -1), axis=1, kind="stable")
    img = np.arange(n)
    for k in by_position.T:                 # k[i]: the class row painted next in image i
        painted = masks[img, k]               # all False for an absent class
        np.copyto(labels, (k + 1).astype(np.uint8)[:, None, None], where=painted)
        np.copyto(rgbx, packed[img, k][:, None, None], where=painted)
    channels = rgbx.view(np.uint8).reshape(n, image_size, image_size, 4)
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    for c in range(3):                      # per channel: much faster than one strided 4 -> 3 byte copy
        images[..., c] = channels[..., c]
    return images, labels, masks


def chunk_size(image_size: int) -> int:
    return max(1, CHUNK_PIXELS // (N_CLASSES * image_size * image_size))


def render_chunks(params: np.ndarray, image_size: int):
    """(slice, images, labels, masks) for consecutive chunks of a parameter table: a large sample painted a
    few tens of MB at a time."""
    step = chunk_size(image_size)
    for start in range(0, len(params), step):
        sl = slice(start, min(start + step, len(params)))
        yield (sl, *render(np.asarray(params[sl]), image_size))


def render_set(params: np.ndarray, meta: dict, with_masks: bool = True) -> RectangleSet:
    """A whole sample painted in memory from its table (with_masks=False: masks None, 3/7 of the memory)."""
    n, size = len(params), meta["image_size"]
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty((n, size, size), dtype=np.uint8)
    masks = np.empty((n, N_CLASSES, size, size), dtype=bool) if with_masks else None
    for sl, im, lab, m in render_chunks(params, size):
        images[sl], labels[sl] = im, lab
        if with_masks:
            masks[sl] = m
    return RectangleSet(images=images, labels=labels, masks=masks, params=np.asarray(params), meta=meta)


def generate_rectangles(n: int, *, image_size: int, delta: int, seed: int, contained: bool,
                        classes=None, fixed: dict | None = None) -> RectangleSet:
    """A sample in memory. Default: three rectangles per image, one per class, in a random draw order.
    `classes` (n,) gives ONE rectangle per image of that class; `fixed` fixes factors ("color": True for the
    class-centre colour, "w", "h", "xc", "yc": ints) instead of drawing them."""
    params, meta = draw_parameters(n, image_size=image_size, delta=delta, seed=seed, contained=contained,
                                   classes=classes, fixed=fixed)
    return render_set(params, meta)


# --- files: a directory of .npy files (masks bit-packed along the last axis) + meta.json -------------

def _write_meta(directory: Path, meta: dict) -> None:
    (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _open_arrays(directory: Path, n: int, size: int) -> dict[str, np.ndarray]:
    shapes = {"images": ((n, size, size, 3), np.uint8), "labels": ((n, size, size), np.uint8),
              "masks": ((n, N_CLASSES, size, (size + 7) // 8), np.uint8),
              "params": ((n, N_CLASSES, len(COLUMNS)), np.int16)}
    return {name: np.lib.format.open_memmap(directory / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
            for name, (shape, dtype) in shapes.items()}


def save_rectangles(directory: str | Path, rs: RectangleSet) -> None:
    """Write a sample atomically: the directory is replaced whole, or not at all."""
    size = rs.meta["image_size"]
    with atomic_dir(directory) as tmp:
        out = _open_arrays(tmp, len(rs), size)
        step = chunk_size(size)
        for start in range(0, len(rs), step):
            sl = slice(start, start + step)
            out["images"][sl], out["labels"][sl], out["params"][sl] = rs.images[sl], rs.labels[sl], rs.params[sl]
            out["masks"][sl] = np.packbits(rs.masks[sl], axis=-1)
        for a in out.values():
            a.flush()
        del out
        _write_meta(tmp, rs.meta)


def write_rectangles(directory: str | Path, n: int, *, image_size: int, delta: int, seed: int, contained: bool,
                     classes=None, fixed: dict | None = None) -> dict:
    """Generate a sample chunk by chunk straight into its files (the same bytes as generate_rectangles +
    save_rectangles, without holding the whole sample in memory). Returns the meta."""
    params, meta = draw_parameters(n, image_size=image_size, delta=delta, seed=seed, contained=contained,
                                   classes=classes, fixed=fixed)
    with atomic_dir(directory) as tmp:
        out = _open_arrays(tmp, n, image_size)
        out["params"][:] = params
        step = chunk_size(image_size)
        for start in range(0, n, step):
            sl = slice(start, start + step)
            out["images"][sl], out["labels"][sl], masks = render(params[sl], image_size)
            out["masks"][sl] = np.packbits(masks, axis=-1)
        for a in out.values():
            a.flush()
        del out
        _write_meta(tmp, meta)
    return meta


def write_parameters(directory: str | Path, n: int, *, image_size: int, delta: int, seed: int, contained: bool) -> dict:
    """Store a sample as its parameter table and meta only (the pixels follow from them); returns the meta."""
    params, meta = draw_parameters(n, image_size=image_size, delta=delta, seed=seed, contained=contained)
    meta = {**meta, "pixels_stored": False}
    with atomic_dir(directory) as tmp:
        np.save(tmp / "params.npy", params, allow_pickle=False)
        _write_meta(tmp, meta)
    return meta


def _reader(directory: Path):
    rerun = "rerun the generate_rectangles stage"

    def read(name: str, reader):
        path = directory / name
        try:
            return reader(path)
        except FileNotFoundError:
            raise UserError(f"{path}: missing; {rerun}") from None
        except (ValueError, OSError) as e:
            raise UserError(f"{path}: unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                            f"{rerun}") from None
    return read, rerun


def load_parameters(directory: str | Path) -> RectangleSet:
    """A sample's parameter table and meta, without pixels (images, labels, masks None)."""
    directory = Path(directory)
    read, rerun = _reader(directory)
    meta = read("meta.json", lambda path: json.loads(path.read_text()))
    params = read("params.npy", lambda path: np.load(path, allow_pickle=False))
    n = meta.get("n")
    if not isinstance(n, int) or not isinstance(meta.get("image_size"), int):
        raise UserError(f"{directory / 'meta.json'}: no integer 'n' and 'image_size'; {rerun}")
    if params.shape != (n, N_CLASSES, len(COLUMNS)):
        raise UserError(f"{directory / 'params.npy'}: shape {params.shape} does not match meta.json "
                        f"(expected {(n, N_CLASSES, len(COLUMNS))}); {rerun}")
    return RectangleSet(images=None, labels=None, masks=None, params=params, meta=meta)


def load_rectangles(directory: str | Path, mmap: bool = True, with_masks: bool = True) -> RectangleSet:
    """Read a sample. One stored as its table (`write_parameters`) is painted in memory; one stored with its
    pixels (save_rectangles/write_rectangles) has images, labels and params memory-mapped (with mmap). Masks
    are unpacked into memory, or left as None with with_masks=False."""
    directory = Path(directory)
    if (directory / "meta.json").is_file() and not (directory / "images.npy").exists():
        sample = load_parameters(directory)
        if sample.meta.get("pixels_stored") is False:
            return render_set(sample.params, sample.meta, with_masks=with_masks)
    read, rerun = _reader(directory)
    meta = read("meta.json", lambda path: json.loads(path.read_text()))
    mode = "r" if mmap else None
    arrays = {name: read(f"{name}.npy", lambda path: np.load(path, mmap_mode=mode, allow_pickle=False))
              for name in ARRAYS if name != "masks" or with_masks}
    n, size = meta.get("n"), meta.get("image_size")
    if not isinstance(n, int) or not isinstance(size, int):
        raise UserError(f"{directory / 'meta.json'}: no integer 'n' and 'image_size'; {rerun}")
    expected = {"images": (n, size, size, 3), "labels": (n, size, size),
                "masks": (n, N_CLASSES, size, (size + 7) // 8), "params": (n, N_CLASSES, len(COLUMNS))}
    for name, a in arrays.items():
        if a.shape != expected[name]:
            raise UserError(f"{directory / name}.npy: shape {a.shape} does not match meta.json "
                            f"(expected {expected[name]}); {rerun}")
    masks = (np.unpackbits(arrays["masks"], axis=-1, count=size).view(bool) if with_masks else None)
    return RectangleSet(images=arrays["images"], labels=arrays["labels"], masks=masks,
                        params=arrays["params"], meta=meta)
