"""Write the generated parts of README.md and docs/*.md from tracked files (`make docs`).

A generated block sits between two HTML comments, `<!-- generated: KIND ARGS -->` and `<!-- end generated -->`;
everything outside them is prose and left alone. Kinds:

- `glance`: the verdict table and the headline numbers (metrics/verdicts.json, metrics/headline/*.json) and a link
  to the committed key figure;
- `costs`: the cost box (docs/costs.yaml, the measured install and disk sizes, and metrics/stage_times.json);
- `stage-times`: the time of every stage of the last full run (metrics/stage_times.json);
- `datasets`: the checksums of the datasets the committed run read (metrics/datasets/*.json);
- `params PREFIX...`: a table of every parameter under those keys: default from params.yaml, allowed values
  from the schema (latentspace/core/params.py), notes from the comments above the key in params.yaml.

`python -m latentspace.docs --check` rewrites nothing and fails when a block is stale (tests/test_docs.py).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Callable

import yaml

from latentspace.core.params import SCHEMA
from latentspace.verdicts.base import VERDICTS

DOC_FILES = ("README.md", "docs/*.md")
COSTS_FILE = "docs/costs.yaml"
STAGE_TIMES = "metrics/stage_times.json"
BLOCK = re.compile(r"(<!-- generated: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)
NOT_YET = "not measured yet"

# Which study a stage belongs to, by the start of its name (stage_times and the cost box group by it).
STUDY_OF_STAGE = (("generate_rectangles", "Study A"), ("eda", "Study A"), ("train_segmentation", "Study A"),
                  ("generate_image_sets", "Study A"), ("latent_analysis", "Study A"),
                  ("prepare_dataset", "datasets"), ("study_b", "Study B"), ("study_c", "Study C"))
STUDY_ORDER = ("Study A", "datasets", "Study B", "Study C", "verdicts, report")


# --- reading ------------------------------------------------------------------------------------------------------

def _json(root: Path, rel: str) -> Any:
    path = root / rel
    return json.loads(path.read_text()) if path.is_file() else None


def stage_seconds(root: Path) -> dict[str, float]:
    """Seconds per stage instance of the last run: metrics/stage_times.json, else the timing files."""
    data = _json(root, STAGE_TIMES)
    stages = (data or {}).get("stages") if isinstance(data, dict) else None
    if not stages:
        stages = {}
        for f in sorted((root / "metrics/timing").glob("*.json")):
            t = json.loads(f.read_text())
            stages[t.get("stage", f.stem)] = t
    out = {}
    for name, v in stages.items():
        s = v.get("seconds") if isinstance(v, dict) else v
        if isinstance(s, (int, float)):
            out[name] = float(s)
    return out


def study_of(stage: str) -> str:
    return next((study for start, study in STUDY_OF_STAGE if stage.startswith(start)), "verdicts, report")


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
        note = _own_words(" ".join(pending + ([inline] if inline else [])))
        if note:
            notes[path] = note
        pending = []
        stack.append((indent, key))
    return notes


def _own_words(note: str) -> str:
    """Drop references to the protocol's section numbers (the protocol document is not part of the repository;
    the docs describe it in their own words)."""
    note = re.sub(r"\s*\(SPEC [A-Z]\d*\)", "", note)
    return re.sub(r"\(SPEC [A-Z]\d*: ([^)]*)\)", r"(\1)", note)


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


# --- formatting ---------------------------------------------------------------------------------------------------

def fmt_value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, (list, dict)):
        return yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()
    return str(v)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return NOT_YET
    s = round(seconds)
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s" if s < 3600 else f"{s // 3600} h {s % 3600 // 60:02d} min"


def fmt_bytes(n: float | None) -> str:
    """Binary units rounded up to one decimal, as `du -sh` prints them (so the two can be compared)."""
    if n is None:
        return NOT_YET
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{math.ceil(n / size * 10) / 10:.1f} {unit}"
    return f"{n:.0f} B"


def table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in r) + " |"
                     for r in [header, rule, *rows]) + "\n"


# --- blocks -------------------------------------------------------------------------------------------------------

def block_params(root: Path, args: list[str]) -> str:
    values = yaml.safe_load((root / "params.yaml").read_text()) or {}
    notes = params_comments((root / "params.yaml").read_text())
    rows, last_anchor = [], None
    for path, spec in schema_leaves(SCHEMA):
        dotted = ".".join(path)
        if not any(dotted == a or dotted.startswith(a + ".") for a in args):
            continue
        value: Any = values
        for k in path:
            value = value.get(k) if isinstance(value, dict) else None
        allowed = spec.describe() if hasattr(spec, "describe") else "an empty mapping (no settings)"
        # The note of the nearest key (this one or a parent) with a comment, once per comment block.
        anchor = next((path[:i] for i in range(len(path), 0, -1) if path[:i] in notes), None)
        note = notes[anchor] if anchor and anchor != last_anchor else ""
        last_anchor = anchor or last_anchor
        rows.append([f"`{dotted}`", f"`{fmt_value(value)}`", allowed, note])
    if not rows:
        raise ValueError(f"no parameter in the schema under {' '.join(args)}")
    return table(["parameter", "default", "allowed", "notes"], rows)


def block_stage_times(root: Path, args: list[str]) -> str:
    times = stage_seconds(root)
    if not times:
        return "No stage times recorded yet: `make repro` writes them.\n"
    rows = []
    for study in STUDY_ORDER:
        mine = sorted((s, t) for s, t in times.items() if study_of(s) == study)
        rows += [[study, f"`{s}`", f"{t:.1f}"] for s, t in mine]
        if mine:
            rows.append([f"**{study}**", "**all**", f"**{sum(t for _, t in mine):.0f}**"])
    total = sum(times.values())
    rows.append(["**all stages**", "", f"**{total:.0f}** ({fmt_duration(total)})"])
    return table(["study", "stage", "seconds"], rows, "llr")


def block_costs(root: Path, args: list[str]) -> str:
    c = (yaml.safe_load((root / COSTS_FILE).read_text()) or {}) if (root / COSTS_FILE).is_file() else {}
    run, env, disk = c.get("full_run") or {}, c.get("environment") or {}, c.get("disk") or {}
    times = stage_seconds(root)
    per_study = {s: sum(t for n, t in times.items() if study_of(n) == s) for s in STUDY_ORDER}
    split = ", ".join(f"{s} {fmt_duration(t)}" for s, t in per_study.items() if t)
    cpu = fmt_duration(run.get("wall_seconds"))
    if times:
        cpu += f" (the stages' own time {fmt_duration(sum(times.values()))}: {split})"
    gpu = run.get("gpu") or {}
    rows = [
        ["full `make repro`, 2 CPU cores, fp32", cpu],
        ["full run on a GPU" + (f" ({gpu['name']})" if gpu.get("name") else ""),
         fmt_duration(gpu["wall_seconds"]) if gpu.get("wall_seconds") else "not measured"],
        ["peak memory (RAM) of the full run", fmt_bytes(run.get("peak_memory_bytes"))],
        ["Python environment (`.venv`, default install)", f"{fmt_bytes(env.get('venv_bytes'))}, of which "
         f"{fmt_bytes(env.get('cuda_libraries_bytes'))} CUDA libraries (`TORCH=cpu` leaves them out)"],
        ["fresh `make setup` (default install)", fmt_duration(env.get("install_seconds"))],
        ["workspace data after a run (`data/`, `models/`, `reports/`)", fmt_bytes(disk.get("workspace_bytes"))],
        ["DVC cache after a run (`.dvc/cache`)", fmt_bytes(disk.get("dvc_cache_bytes"))],
    ]
    machine = c.get("machine", "the development machine")
    return (table(["cost", "measured"], rows)
            + f"\nMeasured on {machine}{', ' + str(c['date']) if c.get('date') else ''}. "
              f"Sources: `{COSTS_FILE}`, `{STAGE_TIMES}`; `make docs` rewrites this box.\n")


def block_datasets(root: Path, args: list[str]) -> str:
    rows = []
    for f in sorted((root / "metrics/datasets").glob("*.json")):
        d = json.loads(f.read_text())
        for file, digest in sorted((d.get("sha256") or {}).items()):
            # The file name only: where the copy lived on the machine that ran is not part of the repository.
            rows.append([d.get("dataset", f.stem), d.get("source", ""), f"`{Path(file).name}`", f"`{digest}`",
                         f"{d.get('train', '—')} / {d.get('val', '—')} / {d.get('test', '—')}"])
    if not rows:
        return "No dataset prepared yet: `make repro` records the checksums here.\n"
    return table(["dataset", "source", "file", "sha256", "train / validation / test"], rows)


VERDICT_ORDER = VERDICTS
REFERENCES = "references.yaml"
SHOWN_CHECKS = 3            # a claim with more checks (cells, nets) shows only its verdict counts in the README
LONGEST_CELL = 120          # a longer value is left to the report


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if 0.1 <= abs(v) <= 1 else f"{v:.3g}" if abs(v) >= 1e-3 else f"{v:.4f}"
    return fmt_value(v)


def _std(mean: Any, std: Any) -> str:
    """` ± std`, to the decimals of the mean when the mean is a fraction shown with three."""
    if not isinstance(std, (int, float)) or isinstance(std, bool):
        return ""
    return f" ± {std:.3f}" if isinstance(mean, float) and 0.1 <= abs(mean) <= 1 else f" ± {std:.1g}"


def _cell(v: Any, exact: bool = False) -> str:
    """A value, short: a spread as mean ± std (n), a mapping as `key value` pairs; `exact` (published values)
    keeps numbers as written."""
    if v is None:
        return "—"
    if isinstance(v, dict) and "mean" in v:
        n = len(v["values"]) if isinstance(v.get("values"), list) else 0
        return _num(v["mean"]) + _std(v["mean"], v.get("std")) + (f" (n={n})" if n > 1 else "")
    if isinstance(v, dict):
        return ", ".join(f"{k} {_cell(x, exact)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_cell(x, exact) for x in v)
    if exact and isinstance(v, float):
        return f"{v:.6g}"                           # as published (a computed difference without float noise)
    return fmt_value(v) if exact else _num(v)


def _verdicts(claims: list[dict]) -> str:
    counts = {v: 0 for v in VERDICT_ORDER}
    for c in claims:
        counts[c.get("verdict", "—")] = counts.get(c.get("verdict", "—"), 0) + 1
    shown = {v: n for v, n in counts.items() if n}
    return f"**{next(iter(shown))}**" if len(shown) == 1 else ", ".join(f"{n} {v}" for v, n in shown.items())


def verdict_rows(root: Path, claims: list[dict]) -> list[list[str]]:
    """One row per claim of references.yaml; the checks of a claim made per cell, net or size are summarised."""
    refs = (yaml.safe_load((root / REFERENCES).read_text()) or {}) if (root / REFERENCES).is_file() else {}
    statements = {c["id"]: c.get("statement", "") for c in refs.get("claims", []) if isinstance(c, dict)}
    groups: dict[str, list[dict]] = {}
    for c in claims:
        cid = str(c.get("id", ""))
        groups.setdefault(next((r for r in statements if cid == r or cid.startswith(r + ".")), cid), []).append(c)
    rows = []
    for base, group in groups.items():
        def per_check(key: str) -> str:
            exact = key == "published"
            if len(group) == 1 or exact and len({repr(g.get(key)) for g in group}) == 1:
                text = _cell(group[0].get(key), exact)
            elif len(group) > SHOWN_CHECKS:
                return f"{len(group)} checks: see the report"
            else:
                text = "; ".join(f"{str(g.get('id'))[len(base) + 1:]}: {_cell(g.get(key), exact)}" for g in group)
            return text if len(text) <= LONGEST_CELL else "see the report"
        statement = " ".join(str(statements.get(base) or group[0].get("statement", base)).split())
        rows.append([group[0].get("study", ""), statement, per_check("published"), per_check("measured"),
                     _verdicts(group)])
    return rows


def headline_tables(root: Path) -> str:
    """A few headline numbers per study (metrics/headline/*.json, written by the verdicts stage), as small tables."""
    from latentspace.constants import LOSSES, NETS, STUDY_C_CELLS, STUDY_C_REGIMES

    a, b, c = ((_json(root, f"metrics/headline/{n}.json") or {}) for n in ("study_a", "study_b", "study_c"))
    out = []
    losses = [l for l in LOSSES if any(f"{n}_{l}_test_miou" in a for n in NETS)]
    nets = [n for n in NETS if any(f"{n}_{l}_test_miou" in a for l in LOSSES)]
    if losses:
        def seg(n: str, l: str) -> str:
            sep = a.get(f"{n}_{l}_min_pair_sep")
            return _num(a.get(f"{n}_{l}_test_miou")) + ("" if sep is None else f" / {_num(sep)}")
        out.append("**Study A**: test mean IoU / smallest pair separability in the 2-D embedding, means over launches "
                   f"(colour baseline: {_num(a.get('baseline_test_miou'))})\n\n"
                   + table(["net", *losses], [[f"`{n}`"] + [seg(n, l) for l in losses] for n in nets],
                           "l" + "r" * len(losses)))
    sizes = sorted(int(k[1:-10]) for k in b if re.fullmatch(r"h\d+_probe_acc", k))
    if sizes:
        out.append("**Study B**, per latent size, means over seeds\n\n" + table(
            ["", *map(str, sizes)], [["probe test accuracy", *(_num(b[f"h{h}_probe_acc"]) for h in sizes)],
                                     ["test MSE", *(_num(b.get(f"h{h}_test_mse")) for h in sizes)]],
            "l" + "r" * len(sizes)))
    cells = [x for x in STUDY_C_CELLS if any(k.startswith(x.replace("-", "_") + "_") for k in c)]
    if cells:
        def acc(cell: str, r: str) -> str:
            key = f"{cell.replace('-', '_')}_{r}_acc"
            std = c.get(key + "_std")
            return _num(c.get(key)) + _std(c.get(key), std)
        out.append("**Study C**, test accuracy, mean ± std over seeds\n\n" + table(
            ["cell", *STUDY_C_REGIMES], [[f"`{x}`", *(acc(x, r) for r in STUDY_C_REGIMES)] for x in cells], "lrrr"))
    return "\n".join(out)


def block_glance(root: Path, args: list[str]) -> str:
    found = _json(root, "metrics/verdicts.json")
    claims = [c for c in (found or {}).get("claims", []) if isinstance(c, dict)] if isinstance(found, dict) else []
    if not claims:
        return "No verdicts yet: `make repro` runs the pipeline and `make docs` fills in this section.\n"
    rows = verdict_rows(root, claims)
    out = [f"{_verdicts(claims)} ({len(claims)} checks of {len(rows)} published claims)\n\n",
           table(["study", "claim", "published", "measured", "verdict"], rows)]
    numbers = headline_tables(root)
    if numbers:
        out.append("\n" + numbers)
    # The figure named in the block's marker, with links to the other key figures of the report's top.
    figures = sorted(p.relative_to(root).as_posix() for p in (root / "reports/glance").glob("*.png"))
    shown = next((f for f in args if f in figures), figures[0] if figures else None)
    if shown:
        others = ", ".join(f"[{Path(f).stem.replace('_', ' ')}]({f})" for f in figures if f != shown)
        out.append(f"\n![{Path(shown).stem.replace('_', ' ')}]({shown})\n" + (f"\nKey figures of the other studies: {others}.\n" if others else ""))
    out.append("\nFrom `metrics/verdicts.json` and `metrics/headline/` of the committed run. Every number, figure and "
               "test behind them: [reports/report.md](reports/report.md).\n")
    return "".join(out)


BLOCKS: dict[str, Callable[[Path, list[str]], str]] = {
    "glance": block_glance, "costs": block_costs, "stage-times": block_stage_times,
    "datasets": block_datasets, "params": block_params,
}


# --- rewriting ----------------------------------------------------------------------------------------------------

def doc_paths(root: Path) -> list[Path]:
    return [p for pattern in DOC_FILES for p in sorted(root.glob(pattern))]


def render(text: str, root: Path) -> str:
    def replace(m: re.Match) -> str:
        kind, *args = m.group("spec").split()
        if kind not in BLOCKS:
            raise ValueError(f"unknown generated block {kind!r}; known: {', '.join(BLOCKS)}")
        return m.group(1) + BLOCKS[kind](root, args) + m.group(4)
    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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


if __name__ == "__main__":
    sys.exit(main())
