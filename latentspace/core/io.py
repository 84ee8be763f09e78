"""File input and output: the one YAML reader (one-line errors), and atomic writes (a killed stage never
leaves a half-written file behind; an interrupted one, Ctrl-C or SIGTERM, removes its temporaries at once)."""
from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml

from latentspace.core.errors import UserError


def read_yaml(path: str | Path, *, what: str = "") -> Any:
    """The one YAML reader of the project (params.yaml, paper_scale.yaml, quick.yaml, references.yaml,
    sweep.yaml): a missing file or invalid YAML is a UserError of one line naming the file (and the line)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        where = f" ({what})" if what else ""
        raise UserError(f"{path}: file not found{where}; run from the project root") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{at}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create private (0600/0700) entries; outputs get the modes a plain open()/mkdir() would give.
_FILE_MODE = 0o666 & ~_umask()
_DIR_MODE = 0o777 & ~_umask()


# While an output is being swapped in (its renames), the stage runner's SIGINT/SIGTERM handler holds the interrupt
# here and it is raised once the swap is done: an interrupt between the two renames of `atomic_dir` would lose
# both the old and the new folder.
_swapping = 0
_held: list[BaseException] = []


def interrupt(exc: BaseException) -> None:
    """Raise `exc` (the stage runner's KeyboardInterrupt) now, or as soon as the swap in progress is done."""
    if _swapping:
        _held.append(exc)
        return
    raise exc


@contextlib.contextmanager
def _swap() -> Iterator[None]:
    global _swapping
    _swapping += 1
    try:
        yield
    finally:
        _swapping -= 1
    if not _swapping and _held:
        exc = _held.pop()
        _held.clear()
        raise exc


# The random part tempfile adds to a name (its _RandomNameSequence: 8 characters of this alphabet).
_TEMP_SUFFIX = re.compile(r"[a-z0-9_]{8}")


def remove_stale_temporaries(path: Path) -> None:
    """Remove what a killed earlier run left beside `path` (`.tmp-<name>.<8 random characters>`, `.tmp-old-<name>`):
    SIGKILL runs no cleanup, and a half-written 50k-image sample is hundreds of MB. Only this output's own
    temporaries match (not those of `<name>.json` beside it), so other outputs' writes are never touched."""
    prefix = f".tmp-{path.name}."
    own = [p for p in glob.glob(str(path.parent / f"{glob.escape(prefix)}*"))
           if _TEMP_SUFFIX.fullmatch(Path(p).name[len(prefix):])]
    for stale in own + [str(path.with_name(f".tmp-old-{path.name}"))]:
        stale = Path(stale)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        elif stale.exists() or stale.is_symlink():
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with _swap():
            if tmp.exists():
                os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; on success it replaces `path` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}.", dir=path.parent))
    try:
        yield tmp
        with _swap():
            os.chmod(tmp, _DIR_MODE)
            if path.exists():
                old = path.with_name(f".tmp-old-{path.name}")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and o != o:
        return None  # NaN is not JSON
    return o


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)


def save_figure(path: str | Path, fig) -> None:
    """Save a matplotlib figure as PNG atomically, then close it."""
    import matplotlib.pyplot as plt
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
