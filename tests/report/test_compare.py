"""Comparing two runs the DVC way, as a new user would: after `dvc exp run -S delta=25` and `dvc exp branch`,
`dvc metrics diff main <branch>` (few rows, none of them timing), `dvc exp show --only-changed` (fits a 160-column
terminal) and `dvc plots diff main <branch>`, whose HTML renders its charts in headless Chromium with no network.
The checks run on tests/test_pipeline_full.py's tiny pipeline (`check_comparisons`); here, that the browser check
can fail."""
from __future__ import annotations

import configparser
import json
import re
import subprocess
from pathlib import Path

import pytest
from browser import find_browser, page_network_requests

ROOT = Path(__file__).resolve().parents[2]
BRANCH = "delta-25"
MAX_DIFF_ROWS = 40
TERMINAL = 160
# The README's `dvc exp show --only-changed --drop ...`: the dependency columns (file paths) go, the metrics
# (`key`, or `path:key` when two files share a key) and parameters stay.
DROP_DEPS = "^(data|models|reports|metrics|stages|latentspace)/[^:]*$"
# What never belongs in a comparison of results: wall times, throughput, device.
TIMING = re.compile(r"timing|seconds|per_second|throughput|device|precision", re.I)


def project_html_template() -> str:
    """The template `dvc plots` uses unasked in this project (.dvc/config: plots.html_template)."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc/config")
    template = config.get("plots", "html_template")
    assert (ROOT / ".dvc" / template).resolve() == (ROOT / "plots/offline.html").resolve()
    return template


def check_comparisons(repo, base: str, branch: str, work: Path) -> None:
    """The three comparisons of `branch` (an experiment that changed delta) with `base`, as a user makes them.
    tests/test_pipeline_full.py calls this on its tiny pipeline (running it is the expensive part)."""
    browser = find_browser()
    # The project's offline template, where the project's .dvc/config points (`dvc plots` uses it unasked).
    (repo.path / "plots").mkdir(exist_ok=True)
    (repo.path / "plots/offline.html").write_bytes((ROOT / "plots/offline.html").read_bytes())
    repo.dvc("config", "plots.html_template", project_html_template())

    # 1. `dvc metrics diff main <branch>`: a screenful, only headline numbers, no timing.
    diff = json.loads(repo.dvc("metrics", "diff", base, branch, "--json").stdout)
    rows = [(path, key) for path, changes in diff.items() for key in changes]
    assert 0 < len(rows) <= MAX_DIFF_ROWS, rows
    assert not [r for r in rows if TIMING.search(" ".join(r))], rows
    assert {Path(path).parent.name for path, _ in rows} == {"headline"}, rows
    assert any("study_a" in path for path, _ in rows), rows
    shown = repo.dvc("metrics", "diff", base, branch).stdout.strip().splitlines()
    assert len(shown) <= MAX_DIFF_ROWS + 1, "\n".join(shown)      # and a header line

    # 2. `dvc exp show --only-changed` lists the changed dependencies too, each a 32-digit hash; without them (the
    # README's command) the table fits a 160-column terminal. --md prints every column at its full width (the
    # terminal table would squeeze them to fit).
    full_header, full_width = exp_show_header_and_width(repo, "--only-changed")
    header, widest = exp_show_header_and_width(repo, "--only-changed", "--drop", DROP_DEPS)
    assert widest <= TERMINAL, f"{widest} columns (without --drop: {full_width}): {header}"
    assert "delta" in header and "test_miou" in header and not TIMING.search(full_header), full_header
    # --drop removed dependency columns only: every metric and parameter column is still there.
    dropped = {c.strip() for c in full_header.split("|")} - {c.strip() for c in header.split("|")}
    assert all("/" in c and ":" not in c for c in dropped), dropped

    # 3. `dvc plots diff main <branch>`: overlaid curves and figures side by side, drawn offline.
    out = work / "dvc_plots"
    repo.dvc("plots", "diff", base, branch, "-o", str(out))
    page = out / "index.html"
    html = page.read_text()
    assert "cdn.jsdelivr" not in html and not re.search(r"""src\s*=\s*["']?\s*(https?:|//)""", html)
    specs = re.findall(r"var spec = (.*?);\s*vegaEmbed\('#", html, re.S)
    charts = [spec for spec in specs if spec.strip() != "{}"]
    images = len(re.findall(r"<img ", re.sub(r"<script>.*?</script>", "", html, flags=re.S)))
    # Overlaid curves of every study; each figure once per revision.
    assert len(charts) >= 3 and images >= 4, (len(charts), images)
    result = render_in_chromium(browser, page, work)
    assert result["embedded"] == len(charts), result
    assert result["drawn"] == len(charts), result       # every chart with data has a canvas with pixels on it
    # Plots of files this tiny pipeline does not make (other nets, sizes) say so in place of a chart.
    assert result["no_data"] == len(specs) - len(charts), result
    assert result["errors"] == [], result
    assert result["images"] == images and result["broken"] == [], result
    assert result["page_requests"] == [], result


def exp_show_header_and_width(repo, *args: str) -> tuple[str, int]:
    table = repo.dvc("exp", "show", *args, "--md").stdout
    lines = [line for line in table.splitlines() if line.startswith("|")]
    assert len(lines) >= 4 and "wider-colours" in table, table      # header, rule, workspace, main, experiment
    return lines[0], max(len(line) for line in lines)


# --- the browser check ---------------------------------------------------------------------------------------

# After the charts had time to render: how many vega-embed containers exist, how many hold a canvas with non-blank
# pixels, error messages vega-embed showed, and images that did not decode.
PROBE = """<script>
window.addEventListener('error', function (e) { (window.__errors = window.__errors || []).push(String(e.message)); });
window.addEventListener('load', function () { setTimeout(function () {
  var embeds = document.querySelectorAll('.vega-embed');
  var drawn = Array.prototype.filter.call(embeds, function (el) {
    var c = el.querySelector('canvas');
    if (!c || c.width === 0 || c.height === 0) return false;
    var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (var i = 3; i < d.length; i += 4) { if (d[i] !== 0) return true; }
    return false;
  }).length;
  var broken = Array.prototype.filter.call(document.images, function (i) {
    return !i.complete || i.naturalWidth === 0; }).map(function (i) { return i.getAttribute('src').slice(0, 60); });
  var out = document.createElement('pre');
  out.id = 'probe-result';
  out.textContent = JSON.stringify({embedded: embeds.length, drawn: drawn, images: document.images.length,
    no_data: document.querySelectorAll('.no-data').length,
    broken: broken, errors: (window.__errors || []).concat(Array.prototype.map.call(
      document.querySelectorAll('.vega-embed .error, .error-message'), function (e) { return e.textContent; }))});
  document.body.appendChild(out);
}, 1500); });
</script>"""






def render_in_chromium(browser: str, page: Path, work: Path) -> dict:
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    netlog = work / "netlog.json"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=15000",
             f"--user-data-dir={work / 'profile'}", f"--log-net-log={netlog}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120)
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"the page did not finish loading in Chromium:\n{dom.stderr[-2000:]}"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    result["page_requests"] = page_network_requests(netlog)
    return result


def test_the_browser_check_catches_charts_that_cannot_load_their_scripts(tmp_path):
    """DVC's own page (Vega from a CDN) with the network off: nothing renders, and the check says so."""
    browser = find_browser()
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "mark": "line",
            "data": {"values": [{"x": 0, "y": 1}, {"x": 1, "y": 2}]},
            "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}}
    from dvc_render.html import PAGE_HTML
    from dvc_render.vega import VegaRenderer
    div = VegaRenderer.DIV.replace("{id}", "chart").replace("{partial}", json.dumps(spec))
    page = tmp_path / "index.html"
    page.write_text(PAGE_HTML.replace("{refresh_tag}", "").replace("{scripts}", VegaRenderer.SCRIPTS)
                    .replace("{plot_divs}", div))
    result = render_in_chromium(browser, page, tmp_path)
    assert result["drawn"] == 0, result
    assert any("cdn.jsdelivr.net" in url for url in result["page_requests"]), result

    # The same chart in the project's offline template draws; an empty one (no revision has its files) says so.
    empty = VegaRenderer.DIV.replace("{id}", "nothing").replace("{partial}", "{}")
    offline = tmp_path / "offline.html"
    offline.write_text((ROOT / "plots/offline.html").read_text().replace("{refresh_tag}", "")
                       .replace("{plot_divs}", div + empty))
    result = render_in_chromium(browser, offline, tmp_path / "second")
    assert (result["embedded"], result["drawn"], result["no_data"], result["errors"], result["page_requests"]) \
        == (1, 1, 1, [], []), result
