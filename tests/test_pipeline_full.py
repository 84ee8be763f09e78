"""The whole pipeline at tiny sizes: one `dvc repro` runs every stage (the shared tiny pipeline of conftest.py),
a second runs none, and `dvc exp run -S delta=25` reruns Study A (and the report that shows it) and nothing of
Studies B and C."""
import json
import re

import pytest
from test_compare import check_comparisons

# Stage families (the part of a name before '@') of Study A: everything downstream of the generator.
STUDY_A = {"generate_rectangles", "eda", "train_segmentation", "generate_image_sets", "latent_analysis"}


# Keys that would change on every rerun, or with the machine (not "precision": Study B's per-class metric).
TIMING_KEY = re.compile(r'"[a-z_]*(seconds|per_second|device)[a-z_]*"\s*:')


def _stages(repo) -> set[str]:
    return set(repo.dvc("stage", "list", "--all", "--name-only").stdout.split())


@pytest.mark.e2e
def test_whole_pipeline_then_noop_then_delta_reruns_only_study_a(tiny_pipeline_repo, tiny_datasets_dir, tmp_path):
    dvc_repo = tiny_pipeline_repo       # one `dvc repro` of every stage, committed (tests/tiny_pipeline.py)
    env = {"LATENTSPACE_DATA_DIR": str(tiny_datasets_dir)}
    ran = dvc_repo.ran
    everything = _stages(dvc_repo)
    assert ran == everything
    assert {s.split("@")[0] for s in everything} >= STUDY_A | {"prepare_dataset", "study_b_autoencoders",
                                                              "study_b_probes", "study_b_summary", "study_c", "report"}
    html = (dvc_repo.path / "reports/report.html").read_text()
    assert "Study A" in html and "Study B" in html and "Study C" in html
    times = dvc_repo.json("metrics/stage_times.json")
    # Every stage reports its time; the report's own is the file's top-level `seconds`.
    assert set(times["stages"]) == everything - {"report"} and times["seconds"] > 0
    # Wall times, throughput and device live in one timing file per stage instance (named as DVC names it),
    # never in a metrics file: a rerun of unchanged code then changes no metric.
    timing = {p.stem: dvc_repo.json(f"metrics/timing/{p.name}")
              for p in (dvc_repo.path / "metrics/timing").glob("*.json")}
    assert set(timing) == everything and all(t["stage"] == name and t["seconds"] > 0 for name, t in timing.items())
    for path in (dvc_repo.path / "metrics").rglob("*.json"):
        rel = path.relative_to(dvc_repo.path).as_posix()
        if not rel.startswith("metrics/timing/") and rel != "metrics/stage_times.json":
            assert not TIMING_KEY.search(path.read_text()), f"{rel} holds a time, throughput or device"
    # The shared run committed its outputs: nothing is left uncommitted.
    assert dvc_repo.run("git", "status", "--porcelain").stdout.strip() == ""

    # Rerunning a trained net with nothing changed rewrites its timing file only.
    dvc_repo.dvc("repro", "-f", "-s", "train_segmentation", env=env)
    changed = dvc_repo.run("git", "status", "--porcelain", "--untracked-files=all").stdout.split("\n")
    changed = {line[3:] for line in changed if line.strip()}
    assert changed <= {"metrics/timing/train_segmentation.json", "dvc.lock"}, changed
    assert json.loads(dvc_repo.dvc("metrics", "diff", "--json").stdout) == {}
    dvc_repo.commit("rerun")

    # Nothing changed: nothing runs.
    assert dvc_repo.ran_stages(dvc_repo.dvc("repro", env=env).stdout) == set()

    # delta feeds the generator, so all of Study A reruns, then the verdicts and the report; Studies B and C stay
    # cached.
    ran = dvc_repo.ran_stages(dvc_repo.dvc("exp", "run", "-n", "wider-colours", "-S", "delta=25", env=env).stdout)
    assert {s.split("@")[0] for s in ran} == STUDY_A | {"verdicts", "report"}
    assert ran >= {s for s in everything if s.split("@")[0] in STUDY_A}
    # The report names the experiment and the parameter it changed.
    md = (dvc_repo.path / "reports/report.md").read_text()
    assert "`wider-colours`" in md and "| `delta` | 15 | 25 |" in md

    # The two runs compared as a user would (tests/test_compare.py): metrics diff, exp show, plots diff offline.
    dvc_repo.dvc("exp", "branch", "wider-colours", "delta-25")
    check_comparisons(dvc_repo, "main", "delta-25", tmp_path)
