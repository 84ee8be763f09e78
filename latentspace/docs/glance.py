"""The README's results at a glance: per claim of references.yaml its verdict and, when undecided or not run, the
reason in words; the counts kept apart for claims the sources state, claims derived from their tables and
extensions; the headline numbers per study and the key figures. Verdict words, reasons and kinds are the
report's own (latentspace/report/glance.py), so the README and the report say the same."""
from __future__ import annotations

import re
from pathlib import Path

from latentspace import paths, results
from latentspace.constants import LOSSES, NETS, STUDY_C_CELLS, STUDY_C_REGIMES
from latentspace.docs.format import num, table
from latentspace.docs.readers import statements
from latentspace.report.glance import KIND_NAMES, reason
from latentspace.verdicts.base import KINDS, UNDECIDED, VERDICTS

LONGEST_REASON = 64         # a longer reason or statement is cut (the report has it whole), so the README
LONGEST_STATEMENT = 84     # stays within its 10,000 characters


def _verdict_counts(claims: list[dict]) -> dict[str, int]:
    counts = {v: 0 for v in VERDICTS}
    for c in claims:
        counts[c.get("verdict", "—")] = counts.get(c.get("verdict", "—"), 0) + 1
    return {v: n for v, n in counts.items() if n}


def _phrase(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n)


def kinds_line(rec: dict, claims: list[dict]) -> str:
    """`claims the sources state: 5 reproduced, 3 undecided (of 8 checks); ...` from `counts_by_kind` (else
    counted from the claims)."""
    by_kind = rec.get("counts_by_kind")
    if not isinstance(by_kind, dict) or not by_kind:
        by_kind = {k: _verdict_counts([c for c in claims if c.get("kind", "stated") == k]) for k in KINDS}
    parts = [f"{KIND_NAMES.get(k, k)}: {_phrase(c)} (of {sum(c.values())} checks)"
             for k, c in by_kind.items() if isinstance(c, dict) and sum(c.values())]
    return "; ".join(parts)


def _why(check: dict) -> str:
    try:
        return reason(check)
    except (KeyError, TypeError, AttributeError):     # a verdicts file of an older round
        return str(check.get("reason") or check.get("decide") or "")


def _cut(text: str, longest: int = LONGEST_REASON) -> str:
    text = " ".join(text.split())
    return text if len(text) <= longest else text[:longest - 1].rsplit(" ", 1)[0].rstrip(" ,;:(") + "…"


def claim_rows(root: Path, claims: list[dict]) -> list[list[str]]:
    """One row per claim of references.yaml (its checks per cell, net or size summarised)."""
    refs = statements(root)
    groups: dict[str, list[dict]] = {}
    for c in claims:
        cid = str(c.get("id", ""))
        base = next((r for r in refs if cid == r or cid.startswith(r + ".")), cid.split(".")[0])
        groups.setdefault(base, []).append(c)
    rows = []
    for base, group in groups.items():
        ref = refs.get(base) or {}
        counts = _verdict_counts(group)
        verdict = f"**{next(iter(counts))}**" if len(counts) == 1 else _phrase(counts)
        why = "; ".join(dict.fromkeys(w for c in group if c.get("verdict") != VERDICTS[0]
                                      and c.get("verdict") != VERDICTS[1] and (w := _why(c))))
        statement = " ".join(str(ref.get("statement") or group[0].get("statement", base)).split())
        kind = group[0].get("kind") or ref.get("kind") or "stated"
        marked = _cut(statement, LONGEST_STATEMENT) + ("" if kind == "stated" else f" *({kind})*")
        rows.append([group[0].get("study", ref.get("study", "")), marked, verdict, _cut(why)])
    return rows


def headline_tables(root: Path) -> str:
    """A few headline numbers per study (metrics/headline/*.json, written by the verdicts stage)."""
    a, b, c = (results.read(root, paths.headline(s)) or {} for s in ("study_a", "study_b", "study_c"))
    out = []
    losses = [l for l in LOSSES if any(f"{n}_{l}_test_miou" in a for n in NETS)]
    nets = [n for n in NETS if any(f"{n}_{l}_test_miou" in a for l in LOSSES)]
    if losses:
        def seg(n: str, l: str) -> str:
            sep = a.get(f"{n}_{l}_min_pair_sep")
            return num(a.get(f"{n}_{l}_test_miou")) + ("" if sep is None else f" / {num(sep)}")
        out.append("**Study A**: test mean IoU / smallest pair separability in the 2-D embedding, means over "
                   f"launches (colour baseline: {num(a.get('baseline_test_miou'))})\n\n"
                   + table(["net", *losses], [[f"`{n}`"] + [seg(n, l) for l in losses] for n in nets]))
    sizes = sorted(int(k[1:-10]) for k in b if re.fullmatch(r"h\d+_probe_acc", k))
    if sizes:
        out.append("**Study B**, per latent size, means over seeds\n\n" + table(
            ["", *map(str, sizes)], [["probe test accuracy", *(num(b[f"h{h}_probe_acc"]) for h in sizes)],
                                     ["test MSE", *(num(b.get(f"h{h}_test_mse")) for h in sizes)]]))
    cells = [x for x in STUDY_C_CELLS if any(k.startswith(x.replace("-", "_") + "_") for k in c)]
    if cells:
        def acc(cell: str) -> str:
            return " / ".join(num(c.get(f"{cell.replace('-', '_')}_{r}_acc")) for r in STUDY_C_REGIMES)
        out.append(f"**Study C**, test accuracy {' / '.join(STUDY_C_REGIMES)}, means over seeds: "
                   + "; ".join(f"`{x}` {acc(x)}" for x in cells) + "\n")
    return "\n".join(out)


def block_glance(root: Path, args: list[str]) -> str:
    rec = results.read(root, paths.VERDICTS) or {}
    claims = [c for c in rec.get("claims") or [] if isinstance(c, dict)]
    if not claims:
        return "No verdicts yet: `make repro` runs the pipeline and `make docs` fills in this section.\n"
    rows = claim_rows(root, claims)
    undecided = sum(c.get("verdict") == UNDECIDED for c in claims)
    out = [f"{_phrase(_verdict_counts(claims))} ({len(claims)} checks of {len(rows)} claims). By kind: "
           f"{kinds_line(rec, claims)}.\n\n",
           table(["study", "claim (stated by a source unless marked)", "verdict", "why undecided" if undecided else "note"],
                 rows)]
    numbers = headline_tables(root)
    if numbers:
        out.append("\n" + numbers)
    figures = [paths.glance_figure(s) for s in ("study_a", "study_b", "study_c")
               if (Path(root) / paths.glance_figure(s)).is_file()]
    shown = next((f for f in args if f in figures), figures[0] if figures else None)
    if shown:
        others = ", ".join(f"[{Path(f).stem.replace('_', ' ')}]({f})" for f in figures if f != shown)
        out.append(f"\n![{Path(shown).stem.replace('_', ' ')}]({shown})\n"
                   + (f"\nKey figures of the other studies: {others}.\n" if others else ""))
    out.append(f"\nFrom `{paths.VERDICTS}` and `{paths.HEADLINE_DIR}/`; everything behind them: "
               f"[{paths.REPORT_MD}]({paths.REPORT_MD}).\n")
    return "".join(out)
