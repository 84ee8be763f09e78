"""The delta sweep (latentspace/sweep/run.py, sweep.yaml): its settings are checked like params.yaml, a rerun resumes,
and the report is drawn from the experiments' committed metrics; end to end on DVC's queue at tiny sizes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from latentspace.core.errors import UserError
from latentspace.sweep.run import load_config, plan
from latentspace.constants import BOX_OVERLAP_DELTA, CHANNEL_OVERLAP_DELTA
from latentspace.sweep.report import write_sweep_report

ROOT = Path(__file__).resolve().parents[2]


def write_config(folder: Path, **changes) -> Path:
    data = yaml.safe_load((ROOT / "sweep.yaml").read_text())
    data.update(changes)
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_projects_sweep_is_valid_and_covers_the_colour_boundary():
    config = load_config(ROOT / "sweep.yaml")
    assert config.deltas == (0, 15, 30, 42, 43, 60, 90, 127)
    # 42 is the last delta where each channel alone separates the classes; from 85 on, the colour boxes overlap.
    assert (CHANNEL_OVERLAP_DELTA, BOX_OVERLAP_DELTA) == (42.5, 85.0)
    assert config.overrides["segmentation.launches"] == 1
    args = config.set_args(43)
    assert args[-2:] == ["-S", "delta=43"] and "segmentation.losses=[\"wce\"]" in args


@pytest.mark.parametrize("changes, message", [
    ({"overrides": {"segmentation.train_imgs": 10}}, "did you mean 'segmentation.train_images'"),
    ({"overrides": {"segmentation.nadam_epochs": -1}}, "'segmentation.nadam_epochs' = -1 is not allowed"),
    ({"overrides": {"delta": 3}}, "list its values under deltas"),
    ({"deltas": [0, 200]}, "deltas = [0, 200] is not allowed"),
    ({"jobz": 2}, "unknown key 'jobz' (did you mean 'jobs'?)"),
    ({"separability": {"reducer": "tsne", "image_sets": ["all"]}}, "separability.reducer = 'tsne'"),
])
def test_a_bad_setting_is_one_line_naming_it(tmp_path, changes, message):
    with pytest.raises(UserError) as err:
        load_config(write_config(tmp_path, **changes))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_rerun_keeps_finished_deltas_waits_for_queued_ones_and_replaces_stale_ones(tmp_path):
    config = load_config(write_config(tmp_path, deltas=[0, 15, 30, 42]))

    def exp(delta, **params):
        return {"name": config.experiment(delta), "rev": "0" * 40, "params": nested(config.params(delta) | params)}
    # exp show lists a failed task as an experiment with its state: not done.
    exps = [exp(0), exp(15, **{"segmentation.train_images": 7}), dict(exp(42), state="failed")]
    steps = plan(config, exps, {config.experiment(30): "Running", config.experiment(42): "Failed"})
    assert steps == {"done": [0], "waiting": [30], "queue": [15, 42],
                     "remove": [config.experiment(15), config.experiment(42)]}


def nested(dotted: dict) -> dict:
    out: dict = {}
    for key, value in dotted.items():
        node = out
        *parents, last = key.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[last] = value
    return out


# --- the report from committed metrics ---------------------------------------------------------------------------

def fake_experiment(repo: Path, config, delta: int, baseline: str) -> dict:
    """Commit the metrics files an experiment at `delta` would write (colour decides less as delta grows)."""
    colour = 1.0 if delta < BOX_OVERLAP_DELTA else 0.6
    for net, quality in (("nn1", 0.8), ("nn2", 0.9), ("nn3", 0.85)):
        values = [quality * (1 - delta / 400)]
        record = {"summary": {"mean_iou": {"mean": values[0], "min": values[0], "max": values[0], "values": values}}}
        put(repo, f"metrics/segmentation/{net}-wce.json", record)
        layer = "pool3" if net == "nn1" else "bottleneck"
        pairs = {pair: [colour * quality] for pair in ("1-2", "1-3", "2-3")}
        put(repo, f"metrics/latent/{net}-wce.json", {"primary_layer": layer, "separability": {layer: {
            p: {config.reducer: {"pairs": pairs, "launches": [1]}} for p in config.image_sets}}})
    put(repo, "metrics/timing/train_segmentation.json", {"seconds": 10.0 + delta})
    put(repo, "metrics/segmentation/baseline.json", {"mean_iou": colour})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"delta {delta}")
    rev = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "reset", "-q", "--hard", baseline)
    return {"name": config.experiment(delta), "rev": rev, "baseline": baseline, "state": "success",
            "params": nested(config.params(delta) | {"segmentation.nets": ["nn1", "nn2", "nn3"]})}


def put(repo: Path, rel: str, data) -> None:
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def test_the_report_plots_every_net_and_the_baseline_against_delta(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    put(repo, "metrics/timing/train_segmentation.json", {"seconds": 1.0})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline")
    baseline = git(repo, "rev-parse", "HEAD").strip()
    config = load_config(write_config(tmp_path, deltas=[0, 42, 90, 127]))
    exps = [fake_experiment(repo, config, d, baseline) for d in (0, 42, 90)]
    # An experiment of the same name run with other sizes is not this sweep's.
    stale = dict(exps[0], params=nested(config.params(127) | {"segmentation.train_images": 5}),
                 name=config.experiment(127))
    monkeypatch.chdir(repo)
    invocation = {"started": 0.0, "wall_seconds": 540.0, "ran": [0, 42, 90], "failed": [], "jobs": 2}
    report = write_sweep_report(config, repo / "reports", invocation, exps=[*exps, stale])

    frame = report["frame"]
    assert list(frame["delta"]) == [0, 42, 90]
    assert list(frame["baseline"]) == [1.0, 1.0, 0.6]
    assert frame["nn2-wce"].iloc[0] == pytest.approx(0.9)
    assert frame["nn1-wce separability all"].iloc[2] == pytest.approx(0.6 * 0.8)
    # Seconds of the stages each experiment ran: its timing files that differ from the baseline's.
    assert list(frame["stage seconds"]) == [10.0 + 0, 10.0 + 42, 10.0 + 90]
    md = report["md"].read_text()
    assert "| 90 | 0.600 |" in md and "9.0 minutes of wall time for 3 experiments" in md
    assert "No finished experiment for delta [127]" in md
    assert "colour baseline 1.000 and 0.600" in md
    for png in ("mean-iou-vs-delta.png", "separability-vs-delta.png"):
        assert (repo / "reports/sweep" / png).read_bytes()[:4] == b"\x89PNG"
    html = report["html"].read_text()
    assert html.count("data:image/png;base64") == 2 and "<script" not in html

    # A report-only rerun keeps the recorded time; other sweep settings start a new record.
    write_sweep_report(config, repo / "reports", None, exps=exps)
    assert "9.0 minutes" in (repo / "reports/sweep.md").read_text()
    other = load_config(write_config(tmp_path, deltas=[0, 42]))
    write_sweep_report(other, repo / "reports", None, exps=exps)
    assert "minutes of wall time" not in (repo / "reports/sweep.md").read_text()


# --- end to end on DVC's queue -----------------------------------------------------------------------------------

@pytest.mark.e2e
def test_the_sweep_runs_on_the_queue_then_resumes_without_rerunning(dvc_repo):
    """Two deltas of a tiny Study A (one net, one loss, one launch of one epoch per phase): the queue, the wait, the
    report from the experiments' commits, and a rerun that finds both done."""
    from test_pipeline_study_a_nets import TINY as TINY_STUDY_A_NETS
    from test_sweeps import TINY_STUDY_A
    dvc_repo.set_params(**{**TINY_STUDY_A, **TINY_STUDY_A_NETS, "segmentation.launches": 1, "latent.launches": 1})
    dvc_repo.commit("tiny study A")
    config = yaml.safe_load((ROOT / "sweep.yaml").read_text())
    config.update(deltas=[0, 127], targets=["train_segmentation"], if_cached=[],
                  overrides={"rectangles.samples.test.images": 12})
    (dvc_repo.path / "sweep.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    dvc_repo.commit("sweep settings")

    run = dvc_repo.run(sys.executable, "-m", "latentspace.sweep.run", check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "to run: [0, 127]" in run.stdout and "this run took" in run.stdout, run.stdout
    results = (dvc_repo.path / "reports/sweep/results.csv").read_text().splitlines()
    header = results[0].split(",")
    rows = {int(r.split(",")[0]): dict(zip(header, r.split(","))) for r in results[1:]}
    assert sorted(rows) == [0, 127]
    # With disjoint colour boxes the nearest-centre baseline is exact; with overlapping ones it is not.
    assert float(rows[0]["baseline"]) > float(rows[127]["baseline"])
    assert float(rows[127]["stage seconds"]) > 0
    md = (dvc_repo.path / "reports/sweep.md").read_text()
    assert "| 127 |" in md and "minutes of wall time for 2 experiments" in md, md

    again = dvc_repo.run(sys.executable, "-m", "latentspace.sweep.run", check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "done already: [0, 127]" in again.stdout and "to run: none" in again.stdout, again.stdout
    assert "minutes of wall time for 2 experiments" in (dvc_repo.path / "reports/sweep.md").read_text()
