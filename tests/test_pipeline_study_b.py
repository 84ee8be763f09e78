"""Study B end to end through DVC, on tiny fake CIFAR-10."""

import numpy as np
import pytest

TINY_STUDY_B = {
    "device": "cpu",
    "study_b.conv1_channels": 4,
    "study_b.conv2_channels": 8,
    "study_b.ae_train_size": 0,
    "study_b.ae_epochs": 2,
    "study_b.ae_batch_size": 64,
    "study_b.probe_train_size": 0,
    "study_b.probe_epochs": 3,
    "study_b.probe_batch_size": 64,
}



@pytest.mark.e2e
def test_study_b_runs_and_adding_a_size_runs_only_its_own_chain(dvc_repo, tiny_datasets_dir, tiny_datasets_params):
    repo = dvc_repo
    env = {"LATENTSPACE_DATA_DIR": str(tiny_datasets_dir)}
    repo.set_params(**tiny_datasets_params, **TINY_STUDY_B, **{"study_b.hidden_sizes": [4]})
    repo.commit("pipeline")   # dvclive, inside a DVC stage, needs a repository with a commit
    ran = repo.ran_stages(repo.dvc("repro", "study_b_summary", env=env).stdout)
    assert {"study_b_autoencoder@4", "study_b_probe@4", "study_b_summary"} <= ran

    n_test = len(np.load(repo.path / "data/cifar10/y_test.npy"))
    probe = repo.json("metrics/study_b/sizes/probe-4.json")
    rows = repo.json("metrics/study_b/confusion/probe-4.json")
    assert len(rows) == n_test == np.asarray(probe["confusion"]).sum()
    assert set(probe["per_class"]["cat"]) == {"precision", "recall"}
    ae = repo.json("metrics/study_b/sizes/ae-4.json")
    assert ae["epochs"] == 2 and ae["test_mse"] > 0 and ae["seconds"] > 0
    test_mse_log = (repo.path / "metrics/study_b/live/ae-4/plots/metrics/test_mse.tsv").read_text().splitlines()
    assert len(test_mse_log) == 1 + 2                      # header + one row per epoch
    assert (repo.path / "metrics/study_b/live/probe-4/plots/metrics/test_accuracy.tsv").exists()
    for png in ("ae-4-reconstructions.png", "probe-4-confusion.png", "summary.png"):
        assert (repo.path / "reports/study_b" / png).stat().st_size > 1000

    repo.commit("baseline")
    out = repo.dvc("exp", "run", "study_b_summary", "-S", "study_b.hidden_sizes=[4,8]", env=env).stdout
    ran = repo.ran_stages(out)
    assert ran == {"study_b_autoencoder@8", "study_b_probe@8", "study_b_summary"}
    summary = repo.json("metrics/study_b/summary.json")
    assert set(summary["by_hidden"]) == {"4", "8"}
    assert [r["hidden"] for r in repo.json("metrics/study_b/plots/mse_by_size.json")] == [4, 8]
