"""The MNIST data stage and Study C end to end through DVC, on tiny fake MNIST."""
import hashlib
import json

import pytest

TINY_STUDY_C = {
    "device": "cpu",
    "study_c.seeds": 2,
    "study_c.batch_size": 64,
    "study_c.warmup_steps": 2,
    "study_c.architectures.fc": {"ae_epochs": 1, "head_epochs": 1, "classifier_epochs": 2, "lr": 0.01},
    "study_c.architectures.conv": {"ae_epochs": 1, "head_epochs": 1, "classifier_epochs": 2, "lr": 0.01},
}
# Two of the four cells cover both architectures, both augmentations and every code path of the stage; the
# other two differ only in their matrix values (tests/test_dvc_yaml.py checks what every cell declares).
CELLS = ("fc-none", "conv-erasing")



@pytest.mark.e2e
def test_study_c_runs_every_cell_and_records_its_data(dvc_repo, tiny_datasets_dir, tiny_datasets_params):
    repo = dvc_repo
    env = {"LATENTSPACE_DATA_DIR": str(tiny_datasets_dir)}
    repo.set_params(**tiny_datasets_params, **TINY_STUDY_C)
    repo.commit("pipeline")   # dvclive, inside a DVC stage, needs a repository with a commit
    out = repo.dvc("repro", *(f"study_c@{c}" for c in CELLS), env=env).stdout
    assert repo.ran_stages(out) == {"prepare_dataset@mnist"} | {f"study_c@{c}" for c in CELLS}

    # Which data it ran on: the source and its checksum, in the tracked metrics of the data stage.
    source = repo.json("metrics/datasets/mnist.json")
    npz = tiny_datasets_dir / "mnist.npz"
    assert source["source"] == "offline copy" and source["location"] == str(npz.resolve())
    assert source["sha256"] == {"mnist.npz": hashlib.sha256(npz.read_bytes()).hexdigest()}
    assert (source["train"], source["val"], source["test"]) == (500, 100, 200)

    for cell in CELLS:
        m = repo.json(f"metrics/study_c/{cell}.json")
        assert m["seeds"] == [0, 1] and len(m["per_seed"]) == 2 and m["seconds"] > 0
        for regime in ("frozen", "fine_tuned", "scratch"):
            for metric in ("test_accuracy", "test_macro_f1"):
                s = m[regime][metric]
                assert len(s["values"]) == 2 and s["min"] <= s["mean"] <= s["max"] and s["std"] is not None
            assert len(m[regime]["mean_val_accuracy_curve"]) == (1 if regime == "frozen" else 2)
            assert len(m["per_seed"][0][regime]["val_loss_curve"]) == len(m[regime]["mean_val_accuracy_curve"])
        assert m["settings"]["classifier_epochs"] == 2 and m["settings"]["batch_size"] == 64
        assert (m["settings"]["augment"] is None) == cell.endswith("-none")
        assert (repo.path / f"reports/study_c/{cell}-reconstructions.png").stat().st_size > 1000
        curve = repo.path / f"metrics/study_c/live/{cell}/plots/metrics/seed1/scratch/val_accuracy.tsv"
        assert len(curve.read_text().splitlines()) == 1 + 2          # header + one row per epoch
    # `dvc plots` sees the per-epoch curves.
    plots = repo.dvc("plots", "show", "--json", env=env).stdout
    assert "seed0/fine_tuned/val_accuracy" in plots

    # Erasing settings and one architecture's schedule touch only their own cells.
    repo.commit("baseline")
    repo.set_params(**{"study_c.augmentations.erasing.scale": [0.1, 0.2],
                       "study_c.architectures.fc.lr": 0.02})
    status = repo.dvc("status", "--json", env=env).stdout
    changed = {k for k in json.loads(status) if k.startswith("study_c@") and k.split("@")[1] in CELLS}
    assert changed == {"study_c@fc-none", "study_c@conv-erasing"}
    repo.set_params(**{"study_c.architectures.fc.lr": 0.01})
    changed = {k for k in json.loads(repo.dvc("status", "--json", env=env).stdout) if k.split("@")[-1] in CELLS}
    assert changed == {"study_c@conv-erasing"}

    # A reversed erasing range stops the stage with one line, and leaves its outputs as they were.
    before = (repo.path / "metrics/study_c/conv-erasing.json").read_text()
    repo.set_params(**{"study_c.augmentations.erasing.scale": [0.3, 0.1]})
    res = repo.run("python", "stages/study_c.py", "--arch", "conv", "--augment", "erasing", env=env, check=False)
    assert res.returncode == 2
    assert res.stderr.strip() == ("error: parameter 'study_c.augmentations.erasing.scale' = [0.3, 0.1] is not "
                                  "allowed; expected [low, high] with 0 < low <= high <= 1")
    assert (repo.path / "metrics/study_c/conv-erasing.json").read_text() == before
