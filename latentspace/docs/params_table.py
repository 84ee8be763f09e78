"""The `params` block: a table of every parameter under some keys, with its default (params.yaml), the values the
schema allows (latentspace/core/params.py) and the comment above it in params.yaml as its note."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from latentspace.core.params import PARAMS_FILE, SCHEMA, lookup
from latentspace.docs.format import fmt, table
from latentspace.docs.readers import params


def params_comments(text: str) -> dict[tuple, str]:
    """The comment block right above each key of a block-style YAML file, and comments after a value on its line.

    A blank line ends a comment block (so the file's header belongs to no key); `# @@ ... @@` lines are markers
    of the shared file's sections, not descriptions."""
    notes: dict[tuple, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            pending = []
            continue
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            if not body.startswith("@@"):
                pending.append(body)
            continue
        m = re.match(r"^(\s*)([^\s#:-][^:#]*?):(?:\s+(.*))?$", line)
        if not m:                                   # a list item or a continuation
            pending = []
            continue
        indent, key, rest = len(m.group(1)), m.group(2).strip().strip("'\""), m.group(3) or ""
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = tuple(k for _, k in stack) + (key,)
        inline = rest.split(" #", 1)[1].strip() if " #" in rest else ""
        note = " ".join(pending + ([inline] if inline else [])).strip()
        if note:
            notes[path] = note
        pending = []
        stack.append((indent, key))
    return notes


def schema_leaves(schema: dict, prefix: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every key of the schema that holds a value (a spec, or an empty mapping), in schema order."""
    out = []
    for key, spec in schema.items():
        path = prefix + (key,)
        if isinstance(spec, dict) and spec:
            out += schema_leaves(spec, path)
        else:
            out.append((path, spec))
    return out


def block_params(root: Path, args: list[str]) -> str:
    text = (Path(root) / PARAMS_FILE).read_text()
    values = params(root)
    notes = params_comments(text)
    rows, last_anchor = [], None
    for path, spec in schema_leaves(SCHEMA):
        dotted = ".".join(path)
        if not any(dotted == a or dotted.startswith(a + ".") for a in args):
            continue
        value = lookup(values, dotted)
        allowed = spec.describe() if hasattr(spec, "describe") else "an empty mapping (no settings)"
        # The note of the nearest key (this one or a parent) with a comment, once per comment block.
        anchor = next((path[:i] for i in range(len(path), 0, -1) if path[:i] in notes), None)
        note = notes[anchor] if anchor and anchor != last_anchor else ""
        last_anchor = anchor or last_anchor
        shown = "—" if value is None else (repr(value) if isinstance(value, float) else fmt(value))
        rows.append([f"`{dotted}`", f"`{shown}`", allowed, note])
    if not rows:
        raise ValueError(f"no parameter in the schema under {' '.join(args)}")
    return table(["parameter", "default", "allowed", "notes"], rows)
