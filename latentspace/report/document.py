"""A small document model (sections of text, tables, figures, notes) rendered two ways:
Markdown with figures linked by relative path, and one self-contained HTML file.

The HTML opens offline from disk: the style sheet is inline, figures are embedded as base64 data URIs,
and there is no script, font or style from anywhere else.
"""
from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Text:
    """A paragraph. `code` spans in backticks are the only inline markup."""
    text: str


@dataclass
class Note:
    """Something the reader must not miss, such as inputs that are not there yet."""
    text: str


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    # Cell text -> CSS class of a coloured badge in the HTML (e.g. the verdicts); Markdown shows the text.
    badges: dict[str, str] = field(default_factory=dict)
    compact: bool = False


@dataclass
class Figure:
    path: Path
    caption: str


@dataclass
class Gallery:
    """Figures of one kind side by side (in Markdown: one after another)."""
    figures: list


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)
    level: int = 2

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")

    def add(self, *blocks) -> "Section":
        self.blocks.extend(blocks)
        return self


# --- Markdown ---------------------------------------------------------------------------------------

def _md_cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, sections: list[Section], out_dir: Path) -> str:
    """Markdown text; figure links are relative to `out_dir`, where the .md file is written."""
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"{'#' * s.level} {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Text):
                lines += [b.text, ""]
            elif isinstance(b, Note):
                lines += [f"> **Note:** {b.text}", ""]
            elif isinstance(b, Table):
                if b.caption:
                    lines += [f"*{b.caption}*", ""]
                lines.append("| " + " | ".join(_md_cell(c) for c in b.columns) + " |")
                lines.append("|" + "|".join("---" for _ in b.columns) + "|")
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
                lines.append("")
            elif isinstance(b, (Figure, Gallery)):
                for f in (b.figures if isinstance(b, Gallery) else [b]):
                    if isinstance(f, Note):
                        lines += [f"> **Note:** {f.text}", ""]
                        continue
                    rel = Path(os.path.relpath(f.path, out_dir)).as_posix()
                    lines += [f"![{f.caption}]({rel})", "", f"*{f.caption}*", ""]
            else:
                raise TypeError(f"unknown block {b!r}")
    return "\n".join(lines).rstrip() + "\n"


# --- HTML -------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1d2330; background: #fff; margin: 0; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.9rem; border-bottom: 3px solid #2f5d8a; padding-bottom: .3rem; }
h2 { font-size: 1.5rem; margin-top: 2.5rem; border-bottom: 1px solid #c8d2dc; padding-bottom: .2rem; }
h3 { font-size: 1.2rem; margin-top: 1.8rem; color: #2f5d8a; }
h4 { font-size: 1.05rem; margin-top: 1.4rem; }
nav { background: #f3f6f9; border: 1px solid #dde4ea; padding: .6rem 1rem; border-radius: 6px; }
nav ul { margin: .2rem 0; padding-left: 1.2rem; }
nav li.l3 { margin-left: 1.2rem; font-size: .95em; }
nav li.l4 { margin-left: 2.4rem; font-size: .9em; }
a { color: #2f5d8a; }
code { background: #f0f2f5; padding: 0 .25em; border-radius: 3px; font-size: .92em; }
.note { background: #fff6e0; border-left: 4px solid #e0a400; padding: .5rem .8rem; margin: 1rem 0; }
.tablewrap { overflow-x: auto; margin: .8rem 0 1.2rem; }
table { border-collapse: collapse; font-size: .88rem; }
p.caption { font-style: italic; color: #4a5568; margin: 0 0 .3rem; }
th, td { border: 1px solid #d5dbe1; padding: .25rem .55rem; }
th { background: #eef2f6; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.compact { font-size: .8rem; }
table.compact th, table.compact td { padding: .12rem .45rem; }
.badge { display: inline-block; padding: 0 .45em; border-radius: 3px; font-weight: 600; white-space: nowrap; }
.badge.good { background: #d4efdf; color: #145a32; }
.badge.bad { background: #f5d5d1; color: #7b241c; }
.badge.open { background: #fdebd0; color: #7e5109; }
.badge.none { background: #e5e8ec; color: #424949; }
tr:nth-child(even) td { background: #fafbfc; }
figure { margin: 1rem 0 1.6rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #e2e6ea; }
figcaption { font-size: .88rem; color: #4a5568; margin-top: .3rem; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: .4rem 1.2rem; }
.gallery figure { margin: .4rem 0; }
"""

_NUMBER = re.compile(r"^[-+]?(\d[\d,]*\.?\d*(e[-+]?\d+)?|\.\d+)( ± [\d.e+-]+)?%?$")


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def _data_uri(path: Path) -> str:
    kind = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
    mime = kind.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _html_figure(f: Figure | Note) -> str:
    if isinstance(f, Note):
        return f'<div class="note"><strong>Note:</strong> {_inline(f.text)}</div>'
    return (f'<figure><img src="{_data_uri(f.path)}" alt="{html.escape(f.caption)}">'
            f"<figcaption>{_inline(f.caption)}</figcaption></figure>")


def _html_cell(t: Table, c: str) -> str:
    if c in t.badges:
        return f'<td><span class="badge {t.badges[c]}">{_inline(c)}</span></td>'
    return f'<td class="num">{_inline(c)}</td>' if _NUMBER.match(c) else f"<td>{_inline(c)}</td>"


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{_inline(str(c))}</th>" for c in t.columns)
    body = ["<tr>" + "".join(_html_cell(t, str(c)) for c in row) + "</tr>" for row in t.rows]
    cap = f'<p class="caption">{_inline(t.caption)}</p>' if t.caption else ""
    cls = ' class="compact"' if t.compact else ""
    return (f'<div class="tablewrap">{cap}<table{cls}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _unique_anchors(sections: list[Section]) -> list[str]:
    seen: dict[str, int] = {}
    anchors = []
    for s in sections:
        n = seen.get(s.anchor, 0)
        seen[s.anchor] = n + 1
        anchors.append(s.anchor if n == 0 else f"{s.anchor}-{n + 1}")
    return anchors


def to_html(title: str, sections: list[Section], toc_after: int = 0) -> str:
    """One self-contained page; the table of contents comes after the first `toc_after` sections (so that a
    summary section can open the page)."""
    anchors = _unique_anchors(sections)
    toc = "".join(f'<li class="l{s.level}"><a href="#{a}">{_inline(s.title)}</a></li>'
                  for s, a in zip(sections, anchors) if s.level <= 3)
    nav = f"<nav><strong>Contents</strong><ul>{toc}</ul></nav>"
    parts = [f"<h1>{_inline(title)}</h1>"]
    for i, (s, anchor) in enumerate(zip(sections, anchors)):
        if i == toc_after:
            parts.append(nav)
        parts.append(f'<h{s.level} id="{anchor}">{_inline(s.title)}</h{s.level}>')
        for b in s.blocks:
            if isinstance(b, Text):
                parts.append(f"<p>{_inline(b.text)}</p>")
            elif isinstance(b, Note):
                parts.append(f'<div class="note"><strong>Note:</strong> {_inline(b.text)}</div>')
            elif isinstance(b, Table):
                parts.append(_html_table(b))
            elif isinstance(b, Figure):
                parts.append(_html_figure(b))
            elif isinstance(b, Gallery):
                parts.append('<div class="gallery">' + "".join(_html_figure(f) for f in b.figures) + "</div>")
            else:
                raise TypeError(f"unknown block {b!r}")
    if toc_after >= len(sections):
        parts.append(nav)
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
            f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n")
