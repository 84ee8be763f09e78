"""The report: built from a fake metrics tree (never the real pipeline), read as a reader would read it
(headless Chromium opening the HTML from disk), and rerendered when a metrics value changes."""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
import yaml

from latentspace.report import run_identity, stage_times, write_report, write_stage_times

ROOT = Path(__file__).resolve().parents[1]


# --- a fake project: params.yaml, metrics and figures of every study ---------------------------------

def tiny_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour, written with the standard library only."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def put_json(root: Path, rel: str, data) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data))


def put_png(root: Path, rel: str, rgb=(47, 93, 138)) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(tiny_png(60, 30, rgb))


def fake_study_b(root: Path, sizes: list[int]) -> None:
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for i, h in enumerate(sizes):
        put_json(root, f"metrics/study_b/sizes/ae-{h}.json",
                 {"hidden": h, "test_mse": 0.05 - 0.005 * i, "val_mse": 0.051 - 0.005 * i, "seconds": 10.0 + i})
        put_json(root, f"metrics/study_b/sizes/probe-{h}.json",
                 {"hidden": h, "train_accuracy": 0.4 + 0.01 * i, "val_accuracy": 0.39, "test_accuracy": 0.38 + 0.01 * i,
                  "test_macro_f1": 0.37 + 0.01 * i, "best_epoch": 3, "epochs": 4,
                  "per_class": {c: {"precision": 0.3 + 0.01 * k, "recall": 0.2} for k, c in enumerate(classes)},
                  "confusion": [[1] * 10] * 10, "seconds": 2.5})
        put_png(root, f"reports/study_b/probe-{h}-confusion.png")
        put_png(root, f"reports/study_b/ae-{h}-reconstructions.png")
    put_png(root, "reports/study_b/summary.png")
    put_json(root, "metrics/study_b/summary.json", {"best_probe_hidden": sizes[-1], "seconds": 0.4})


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder with the real params.yaml (made small) and metrics + figures for every study."""
    root = tmp_path / "project"
    root.mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["study_b"]["hidden_sizes"] = [16, 32]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    fake_study_b(root, [16, 32])
    return root


def render(root: Path, env: dict | None = None) -> tuple[str, str]:
    write_report(root, root / "reports/report.md", root / "reports/report.html", env=env or {})
    return (root / "reports/report.md").read_text(), (root / "reports/report.html").read_text()


# --- content ------------------------------------------------------------------------------------------

def test_a_changed_metrics_value_changes_the_report(project):
    md, html = render(project)
    assert "0.3812" not in md
    probe = json.loads((project / "metrics/study_b/sizes/probe-32.json").read_text())
    probe["test_accuracy"] = 0.3812
    put_json(project, "metrics/study_b/sizes/probe-32.json", probe)
    md2, html2 = render(project)
    assert "0.3812" in md2 and "0.3812" in html2
    assert md2 != md


def test_every_study_without_metrics_says_so(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    md, html = render(tmp_path)
    assert md.count("Not available yet") >= 1
    assert "No dataset record" in md
    assert "No stage has written its metrics yet" in md
    assert 'class="note"' in html


def test_a_missing_size_is_named(project):
    (project / "metrics/study_b/sizes/probe-32.json").unlink()
    md, _ = render(project)
    assert "`metrics/study_b/sizes/probe-32.json`" in md


def test_stage_times_are_collected_and_named_after_their_stage(project):
    (project / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "study_b_probe@16": {"outs": [{"path": "metrics/study_b/sizes/probe-16.json"}]}}}))
    times = stage_times(project)
    assert times["study_b_probe@16"]["seconds"] == 2.5
    assert times["study_b/sizes/ae-32"]["seconds"] == 11.0
    write_stage_times(project / "metrics/stage_times.json", times, 0.7)
    record = json.loads((project / "metrics/stage_times.json").read_text())
    assert record["stages"]["study_b_probe@16"] == 2.5
    assert record["total_seconds"] == pytest.approx(sum(t["seconds"] for t in times.values()))
    assert record["seconds"] == 0.7
    # The record of stage times is not a stage of its own.
    assert "stage_times" not in stage_times(project)
    md, _ = render(project)
    assert "`study_b_probe@16`" in md and "11.0" in md


# --- which run made the report ------------------------------------------------------------------------

def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout


def set_param(root: Path, key: str, value) -> dict:
    params = yaml.safe_load((root / "params.yaml").read_text())
    node = params
    *parents, last = key.split(".")
    for k in parents:
        node = node[k]
    node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def test_run_identity_baseline_uncommitted_and_experiment(project):
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "params.yaml")
    git(project, "commit", "-qm", "baseline")
    head = git(project, "rev-parse", "HEAD").strip()
    params = yaml.safe_load((project / "params.yaml").read_text())
    text = " ".join(getattr(b, "text", "") for b in run_identity(project, params, env={}))
    assert "committed baseline" in text and head[:7] in text

    params = set_param(project, "delta", 25)
    blocks = run_identity(project, params, env={})
    assert "uncommitted" in blocks[0].text
    assert blocks[1].rows == [["`delta`", "15", "25"]]

    blocks = run_identity(project, params, env={"DVC_EXP_NAME": "brisk-owl", "DVC_EXP_BASELINE_REV": head})
    assert "brisk-owl" in blocks[0].text and head[:7] in blocks[0].text
    assert blocks[1].rows == [["`delta`", "15", "25"]]


@pytest.mark.e2e
def test_dvc_exp_run_report_names_the_experiment_and_its_changes(dvc_repo):
    """Only the report stage, on a fake metrics tree: `dvc exp run -S` must rerun it and list the change."""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    (dvc_repo.path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"report": pipeline["stages"]["report"]}}))
    for rel in ("latentspace/report.py", "latentspace/document.py"):
        (dvc_repo.path / rel).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / rel, dvc_repo.path / rel)
    fake_study_b(dvc_repo.path, yaml.safe_load((ROOT / "params.yaml").read_text())["study_b"]["hidden_sizes"])
    for dep in pipeline["stages"]["report"]["deps"]:
        if not (dvc_repo.path / dep).exists():   # a study not faked here: an empty record keeps DVC content
            put_json(dvc_repo.path, f"{dep}/placeholder.json", {})
    dvc_repo.commit("inputs")
    dvc_repo.dvc("repro", "report")
    dvc_repo.commit("baseline")
    md = (dvc_repo.path / "reports/report.md").read_text()
    assert "committed baseline" in md

    res = dvc_repo.dvc("exp", "run", "-S", "delta=25", "-n", "wider-colours")
    assert "report" in dvc_repo.ran_stages(res.stdout + res.stderr)
    md = (dvc_repo.path / "reports/report.md").read_text()
    assert "`wider-colours`" in md
    assert "| `delta` | 15 | 25 |" in md


# --- as a reader sees it: headless Chromium opens the HTML from disk ----------------------------------

def find_browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    reason = ("no Chromium found (install Debian's `chromium`, or run `make test` as root, which installs it)")
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}")
    pytest.skip(reason)


# Writes what the page loaded into the DOM, for --dump-dom to return: images that did not decode, and
# every resource the page fetched (Resource Timing lists fetches, not data: URIs).
PROBE_SCRIPT = """<script>
window.addEventListener('load', function () {
  var broken = Array.prototype.filter.call(document.images, function (i) {
    return !i.complete || i.naturalWidth === 0; }).map(function (i) { return i.getAttribute('src').slice(0, 60); });
  var fetched = performance.getEntriesByType('resource').map(function (e) { return e.name; });
  var out = document.createElement('pre');
  out.id = 'probe-result';
  out.textContent = JSON.stringify({images: document.images.length, broken: broken, fetched: fetched});
  document.body.appendChild(out);
});
</script>"""


def browse(browser: str, html_path: Path, work: Path) -> dict:
    """Open `html_path` from disk: take a screenshot, and report images, fetches and page network requests."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND"]
    probe_copy = html_path.with_name(html_path.stem + ".probe.html")
    probe_copy.write_text(html_path.read_text().replace("</body>", PROBE_SCRIPT + "</body>"))
    netlog = work / "netlog.json"
    dom = subprocess.run([browser, *flags, f"--user-data-dir={work / 'profile-dom'}", f"--log-net-log={netlog}",
                          "--dump-dom", probe_copy.as_uri()], capture_output=True, text=True, timeout=60)
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"the page did not finish loading in Chromium:\n{dom.stderr[-2000:]}"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    shot = work / "screenshot.png"
    subprocess.run([browser, *flags, f"--user-data-dir={work / 'profile-shot'}", "--window-size=1280,2400",
                    f"--screenshot={shot}", html_path.as_uri()], capture_output=True, timeout=60)
    result["screenshot"] = shot
    result["page_requests"] = page_network_requests(netlog)
    return result


def page_network_requests(netlog: Path) -> list[str]:
    """URLs the page (not the browser's own services) asked the network for. The page's requests carry
    the file:// page as their network isolation key."""
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except ValueError:   # a browser that did not shut down cleanly leaves the event list open
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"]
            if e["type"] == start and "file://" in str(e["params"].get("network_isolation_key", ""))
            and not e["params"]["url"].startswith(("file:", "data:"))]


def test_html_has_no_script_and_no_remote_reference(project):
    _, html = render(project)
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:|//)", html, re.I)
    assert "@import" not in html


def test_chromium_opens_the_report_offline_with_every_figure(project, tmp_path):
    browser = find_browser()
    render(project)
    html_path = project / "reports/report.html"
    result = browse(browser, html_path, tmp_path)
    assert result["images"] >= 5, result
    assert result["broken"] == [], result
    assert not [u for u in result["fetched"] if not u.startswith(("file:", "data:"))], result
    assert result["page_requests"] == [], result
    assert result["screenshot"].stat().st_size > 10_000
    keep = os.environ.get("REPORT_SCREENSHOT")     # to look at it: REPORT_SCREENSHOT=/tmp/shot.png pytest ...
    if keep:
        shutil.copy(result["screenshot"], keep)


def test_the_browser_check_catches_a_broken_image_and_a_remote_fetch(tmp_path):
    """The check above must be able to fail: a page with a missing figure and a remote style sheet."""
    browser = find_browser()
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="stylesheet" href="https://example.com/a.css">'
                    '</head><body><img src="absent.png"></body></html>')
    result = browse(browser, page, tmp_path)
    assert result["broken"] == ["absent.png"]
    assert "https://example.com/a.css" in result["fetched"]
    assert "https://example.com/a.css" in result["page_requests"]
