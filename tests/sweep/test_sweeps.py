"""Issue 8's workflows on a tiny pipeline: a delta sweep on DVC's experiment queue run by parallel workers,
and sharing outputs between clones through a local-folder DVC remote."""
import json
import time

import pytest

TINY_STUDY_A = {"rectangles.image_size": 12, "rectangles.samples.eda_free.images": 60,
                "rectangles.samples.eda_contained.images": 60, "rectangles.samples.train.images": 20,
                "rectangles.samples.test.images": 10, "eda.examples": 2}
TARGETS = ("generate_rectangles", "eda")


def _exp_rows(repo) -> list[dict]:
    """(name, delta, red range of class 1 in the free EDA sample) of every experiment of the workspace's commit."""
    shown = json.loads(repo.dvc("exp", "show", "--json").stdout)
    rows = []
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                data = rev.get("data") or {}
                params = data.get("params", {}).get("params.yaml", {}).get("data", {})
                # The EDA summary is a plain (cache: false) output, committed with the experiment.
                sha = data.get("rev") or rev.get("rev")
                shown_file = repo.run("git", "show", f"{sha}:metrics/eda/summary.json", check=False)
                summary = json.loads(shown_file.stdout) if shown_file.returncode == 0 else {}
                red = summary.get("eda_free", {}).get("classes", {}).get("class_1", {}).get("colour", {}).get("R", {})
                rows.append({"name": rev.get("name") or exp.get("name"), "delta": params.get("delta"),
                             "red": (red.get("min"), red.get("max"))})
    return rows


@pytest.mark.e2e
def test_delta_sweep_on_the_queue_with_two_workers(dvc_repo):
    dvc_repo.set_params(**TINY_STUDY_A)
    dvc_repo.dvc("repro", *TARGETS)
    dvc_repo.commit("baseline")

    # A sweep on DVC's queue directly (docs/comparing.md), on the tiny sizes: one queued experiment per value of
    # the range, then two workers. Each asks for the EDA only (and so for the two samples it reads).
    dvc_repo.dvc("exp", "run", "--queue", "-S", "delta=range(5,25,10)", "eda")
    queued = dvc_repo.dvc("queue", "status").stdout
    assert queued.count("Queued") == 2, queued
    dvc_repo.dvc("queue", "start", "--jobs", "2")
    deadline = time.time() + 240
    while time.time() < deadline:
        status = dvc_repo.dvc("queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)       # each `dvc queue status` costs a second of CPU that the queue's workers need
    dvc_repo.dvc("queue", "stop", check=False)
    assert "Failed" not in status, dvc_repo.dvc("queue", "logs", status.split()[-1], check=False).stdout

    rows = {r["delta"]: r for r in _exp_rows(dvc_repo)}
    assert sorted(rows) == [5, 15], rows
    for delta, row in rows.items():
        low, high = row["red"]
        # Class 1's red channel is centred at 42: each sweep point's colours stay within its own range.
        assert 42 - delta <= low and high <= 42 + delta, row


@pytest.mark.e2e
def test_outputs_travel_through_a_local_folder_remote(dvc_repo, tmp_path):
    remote = tmp_path / "remote"
    dvc_repo.set_params(**TINY_STUDY_A)
    dvc_repo.dvc("remote", "add", "-d", "shared", str(remote))
    dvc_repo.dvc("repro", *TARGETS)
    dvc_repo.commit("baseline")
    dvc_repo.dvc("push")
    assert any(remote.rglob("*")), "nothing was pushed"

    # A second machine: a fresh clone pulls everything and has nothing to recompute.
    clone = tmp_path / "clone"
    dvc_repo.run("git", "clone", "-q", str(dvc_repo.path), str(clone))
    pulled = dvc_repo.run(dvc_repo.dvc_bin, "pull", *TARGETS, cwd=clone)
    for rel in ("data/rectangles/train", "reports/eda/geometry.png"):
        assert (clone / rel).exists(), pulled.stdout
    # A sample is stored as its rectangle parameters (the pixels are painted from them).
    assert (clone / "data/rectangles/train/params.npy").read_bytes() == \
        (dvc_repo.path / "data/rectangles/train/params.npy").read_bytes()
    status = dvc_repo.run(dvc_repo.dvc_bin, "status", *TARGETS, cwd=clone).stdout
    assert "up to date" in status, status
