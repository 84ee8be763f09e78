"""The MNIST data stage and Study C end to end through DVC, on tiny fake MNIST."""
import hashlib
import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from latentspace import paths
from latentspace.study_c import regimes
from latentspace.training.engine import evaluate_loss, predict

TINY_STUDY_C = {
    "device": "cpu",
    "study_c.seeds": 2,
    "study_c.patience": 1,
    "study_c.head_batch_size": 64,
    "study_c.architectures.fc": {"batch_size": 64, "ae_max_epochs": 1, "head_max_epochs": 2,
                                 "head_max_epochs_erasing": 2, "classifier_max_epochs": 2},
    "study_c.architectures.conv": {"batch_size": 64, "ae_max_epochs": 1, "head_max_epochs": 2,
                                   "head_max_epochs_erasing": 2, "classifier_max_epochs": 2},
}
# Two of the four cells cover both architectures, both augmentations and every code path of the stage; the
# other two differ only in their matrix values (tests/test_dvc_yaml.py checks what every cell declares).
CELLS = ("fc-none", "conv-erasing")
REGIMES = ("frozen", "fine_tuned", "scratch")


@pytest.mark.e2e
def test_study_c_runs_every_cell_and_records_its_data(tiny_pipeline_repo, tiny_datasets_dir):
    # The shared tiny pipeline (TINY_STUDY_C, one worker), run and committed.
    repo = tiny_pipeline_repo
    env = {"LATENTSPACE_DATA_DIR": str(tiny_datasets_dir)}
    assert {"prepare_dataset@mnist"} | {f"study_c@{c}" for c in CELLS} <= repo.ran

    # Which data it ran on: the source and its checksum, in the tracked metrics of the data stage.
    source = repo.json("metrics/datasets/mnist.json")
    npz = tiny_datasets_dir / "mnist.npz"
    assert source["source"] == "offline copy" and source["obtained_by"] == "offline copy via LATENTSPACE_DATA_DIR"
    assert "location" not in source and str(tiny_datasets_dir) not in json.dumps(source)
    assert source["sha256"] == {"mnist.npz": hashlib.sha256(npz.read_bytes()).hexdigest()}
    assert (source["train"], source["val"], source["test"]) == (500, 100, 200)
    y_test = np.load(repo.path / "data/mnist/y_test.npy")

    for cell in CELLS:
        m = repo.json(f"metrics/study_c/{cell}.json")
        assert m["seeds"] == [0, 1] and len(m["per_seed"]) == 2 and "seconds" not in m
        for regime in REGIMES:
            for metric in ("test_accuracy", "test_macro_f1"):
                s = m[regime][metric]
                assert len(s["values"]) == 2 and s["min"] <= s["mean"] <= s["max"] and s["std"] is not None
            for run in (r[regime] for r in m["per_seed"]):
                # Early stopping: the kept epoch is the one with the lowest validation loss, within the cap.
                assert run["max_epochs"] == 2 and 1 <= run["epoch_kept"] <= run["epochs_run"] <= 2
                assert run["val_loss_curve"][run["epoch_kept"] - 1] == min(run["val_loss_curve"])
                assert run["hit_cap"] == (not run["stopping"]["converged"])
                assert run["stopping"]["converged"] == (run["stopping"]["phases"][0]["stopped_by"] == "patience")
                assert run["best_val_loss"] == min(run["val_loss_curve"])
                assert run["best_val_accuracy"] == run["val_accuracy_curve"][run["epoch_kept"] - 1]
            converged = sum(r[regime]["stopping"]["converged"] for r in m["per_seed"])
            assert m[regime]["runs_converged"] == converged and m["converged"][regime] == f"{converged}/2"
        assert m["autoencoder"]["runs"] == 2 and m["per_seed"][0]["autoencoder"]["stopping"]["max_epochs"] == 1
        assert m["min_delta"] == m["settings"]["min_delta"]
        assert m["settings"]["batch_size"] == 64 and m["patience"] == 1
        assert (m["settings"]["augment"] is None) == cell.endswith("-none")
        assert (repo.path / f"reports/study_c/{cell}-reconstructions.png").stat().st_size > 1000
        assert (repo.path / f"metrics/study_c/live/{cell}/plots/metrics/seed1/scratch/val_accuracy.tsv").exists()
        timing = repo.json(f"metrics/timing/study_c@{cell}.json")
        assert timing["seconds"] > 0 and len(timing["per_seed"]) == 2 and timing["workers"] == 1
        assert (repo.path / f"metrics/study_c/live/{cell}/plots/metrics/seed0/autoencoder/val_loss.tsv").exists()

        # Every seed's test predictions, row k for seeds[k]; they reproduce the accuracy in the metrics.
        with np.load(repo.path / f"data/study_c/predictions/{cell}.npz") as saved:
            assert saved["y_test"].dtype == np.uint8 and np.array_equal(saved["y_test"], y_test)
            assert saved["seeds"].tolist() == [0, 1]
            predictions = {regime: saved[regime] for regime in REGIMES}
        for regime in REGIMES:
            assert predictions[regime].shape == (2, len(y_test)) and predictions[regime].dtype == np.uint8
            accuracy = (predictions[regime] == y_test).mean(axis=1)
            assert np.allclose(accuracy, m[regime]["test_accuracy"]["values"])

        # The saved models give those predictions, and the autoencoders their test MSE, again.
        saved = regimes.load_models(repo.path / paths.study_c_models(cell))
        assert (saved["arch"], saved["augment"], saved["seeds"]) == (*cell.split("-"), [0, 1])
        x_test = torch.from_numpy(np.load(repo.path / "data/mnist/x_test.npy")).reshape(-1, 1, 28, 28)
        for k, seed in enumerate(saved["seeds"]):
            for regime in REGIMES:
                pred = predict(saved["models"][seed][regime], x_test, batch_size=regimes.EVAL_BATCH_SIZE,
                               reduce=lambda out: out.argmax(1))
                assert np.array_equal(pred.numpy(), predictions[regime][k])
            mse = evaluate_loss(saved["models"][seed]["autoencoder"], x_test, None, F.mse_loss,
                                batch_size=regimes.EVAL_BATCH_SIZE)
            assert mse == pytest.approx(m["per_seed"][k]["autoencoder"]["test_mse"], rel=1e-6)

    # Erasing settings and one architecture's caps touch only their own cells.
    repo.set_params(**{"study_c.augmentations.erasing.scale": [0.1, 0.2],
                       "study_c.architectures.fc.ae_max_epochs": 3})
    status = repo.dvc("status", "--json", env=env).stdout
    changed = {k for k in json.loads(status) if k.startswith("study_c@") and k.split("@")[1] in CELLS}
    assert changed == {"study_c@fc-none", "study_c@conv-erasing"}
    repo.set_params(**{"study_c.architectures.fc.ae_max_epochs": 1})
    changed = {k for k in json.loads(repo.dvc("status", "--json", env=env).stdout) if k.split("@")[-1] in CELLS}
    assert changed == {"study_c@conv-erasing"}
    repo.set_params(**{"study_c.augmentations.erasing.scale": [0.1, 0.15], "study_c.min_delta": 0.01})
    changed = {k for k in json.loads(repo.dvc("status", "--json", env=env).stdout) if k.split("@")[-1] in CELLS}
    assert changed == {"study_c@fc-none", "study_c@conv-erasing"}

    # A reversed erasing range stops the stage with one line, and leaves its outputs as they were.
    before = (repo.path / "metrics/study_c/conv-erasing.json").read_text()
    repo.set_params(**{"study_c.augmentations.erasing.scale": [0.3, 0.1]})
    res = repo.run("python", "stages/study_c/cell.py", "--arch", "conv", "--augment", "erasing", env=env, check=False)
    assert res.returncode == 2
    assert res.stderr.strip() == ("error: parameter 'study_c.augmentations.erasing.scale' = [0.3, 0.1] is not "
                                  "allowed; expected [low, high] with 0 < low <= high <= 1")
    assert (repo.path / "metrics/study_c/conv-erasing.json").read_text() == before
