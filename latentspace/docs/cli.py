"""Find the generated blocks of README.md and docs/*.md, render each from its kind, and rewrite (or check) them."""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Callable

from latentspace.docs.colours import block_colours
from latentspace.docs.convergence import block_convergence
from latentspace.docs.costs import (block_costs, block_engine, block_layer_order, block_pool, block_size_trial,
                                   block_stage_times, block_workers)
from latentspace.docs.glance import block_glance
from latentspace.docs.params_table import block_params
from latentspace.docs.readers import block_datasets

DOC_FILES = ("README.md", "docs/*.md")
BLOCK = re.compile(r"(<!-- generated: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)

BLOCKS: dict[str, Callable[[Path, list[str]], str]] = {
    "glance": block_glance, "costs": block_costs, "stage-times": block_stage_times, "workers": block_workers,
    "pool": block_pool, "engine": block_engine, "layer-order": block_layer_order, "size-trial": block_size_trial,
    "convergence": block_convergence, "colours": block_colours, "datasets": block_datasets, "params": block_params,
}


def doc_paths(root: Path) -> list[Path]:
    return [p for pattern in DOC_FILES for p in sorted(Path(root).glob(pattern))]


def render(text: str, root: Path) -> str:
    def replace(m: re.Match) -> str:
        kind, *args = m.group("spec").split()
        if kind not in BLOCKS:
            raise ValueError(f"unknown generated block {kind!r}; known: {', '.join(BLOCKS)}")
        return m.group(1) + BLOCKS[kind](Path(root), args) + m.group(4)
    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m latentspace.docs",
                                     description="Rewrite the generated blocks of README.md and docs/*.md.")
    parser.add_argument("--check", action="store_true", help="rewrite nothing; exit 1 when a block is stale")
    parser.add_argument("--root", type=Path, default=Path("."))
    a = parser.parse_args(argv)
    stale = []
    for path in doc_paths(a.root):
        old = path.read_text()
        new = render(old, a.root)
        if new != old:
            stale.append(path.relative_to(a.root).as_posix())
            if not a.check:
                path.write_text(new)
    verb = "stale" if a.check else "rewritten"
    print(f"{verb}: {', '.join(stale)}" if stale else "generated blocks up to date")
    return 1 if a.check and stale else 0
