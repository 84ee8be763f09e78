"""Study B end to end through DVC, on tiny fake CIFAR-10."""

import numpy as np
import pytest

TINY_STUDY_B = {
    "device": "cpu",
    "study_b.conv1_channels": 4,
    "study_b.conv2_channels": 8,
    "study_b.ae_train_size": 0,
    "study_b.ae_val_size": 0,
    "study_b.ae_max_epochs": 2,
    "study_b.ae_patience": 1,
    "study_b.ae_batch_size": 64,
    "study_b.probe_train_size": 0,
    "study_b.probe_max_epochs": 3,
    "study_b.probe_batch_size": 64,
    "study_b.hidden_sizes": [4],
    "study_b.repeat_sizes": [4],
    "study_b.repeat_seeds": [1],
    "study_b.jpeg_check_hidden": 4,
}


@pytest.mark.e2e
def test_study_b_runs_and_adding_a_size_or_seed_runs_only_its_own_chain(dvc_repo, tiny_datasets_dir,
                                                                          tiny_datasets_params):
    repo = dvc_repo
    env = {"LATENTSPACE_DATA_DIR": str(tiny_datasets_dir)}
    repo.set_params(**tiny_datasets_params, **TINY_STUDY_B)
    repo.commit("pipeline")   # dvclive, inside a DVC stage, needs a repository with a commit
    ran = repo.ran_stages(repo.dvc("repro", "study_b_summary", env=env).stdout)
    assert {"study_b_autoencoder@4", "study_b_probe@4", "study_b_autoencoder_seed@4-1", "study_b_probe_seed@4-1",
            "study_b_summary"} <= ran

    n_test = len(np.load(repo.path / "data/cifar10/y_test.npy"))
    probe = repo.json("metrics/study_b/sizes/probe-4.json")
    rows = repo.json("metrics/study_b/confusion/probe-4.json")
    assert len(rows) == n_test == np.asarray(probe["confusion"]).sum()
    assert set(probe["per_class"]["cat"]) == {"precision", "recall"}
    assert probe["standardized"] is False
    assert probe["train_images"] == len(np.load(repo.path / "data/cifar10/y_train.npy"))   # all training codes
    ae = repo.json("metrics/study_b/sizes/ae-4.json")
    assert ae["max_epochs"] == 2 and ae["test_mse"] > 0 and "seconds" not in ae
    assert ae["val_loss_curve"][ae["epoch_kept"] - 1] == min(ae["val_loss_curve"])
    assert repo.json("metrics/study_b/sizes/ae-4-s1.json")["seed"] == 1
    assert (repo.path / "metrics/study_b/live/probe-4/plots/metrics/test_accuracy.tsv").exists()
    assert repo.json("metrics/timing/study_b_autoencoder_seed@4-1.json")["seconds"] > 0
    for png in ("ae-4-reconstructions.png", "probe-4-confusion.png", "summary.png"):
        assert (repo.path / "reports/study_b" / png).stat().st_size > 1000

    summary = repo.json("metrics/study_b/summary.json")
    h4 = summary["by_hidden"]["4"]
    assert h4["seeds"] == [0, 1] and len(h4["probe_test_accuracy_values"]) == 2
    assert h4["probe_test_accuracy"] == pytest.approx(np.mean(h4["probe_test_accuracy_values"]))
    jpeg = probe["jpeg_roundtrip"]
    assert jpeg["test_accuracy_copy"] == probe["test_accuracy"] and 0 <= jpeg["test_accuracy_roundtrip"] <= 1
    assert repo.json("metrics/study_b/sizes/probe-4-s1.json")["jpeg_roundtrip"] is None
    assert summary["data"]["source"] == "offline copy" and summary["data"]["jpeg_decoded"] is True
    assert summary["data"]["jpeg_roundtrip_drop"] == pytest.approx(
        jpeg["test_accuracy_copy"] - jpeg["test_accuracy_roundtrip"])

    repo.commit("baseline")
    out = repo.dvc("exp", "run", "study_b_summary", "-S", "study_b.hidden_sizes=[4,8]",
                   "-S", "study_b.repeat_seeds=[1,2]", env=env).stdout
    assert repo.ran_stages(out) == {"study_b_autoencoder@8", "study_b_probe@8", "study_b_autoencoder_seed@4-2",
                                    "study_b_probe_seed@4-2", "study_b_summary"}
    summary = repo.json("metrics/study_b/summary.json")
    assert set(summary["by_hidden"]) == {"4", "8"} and summary["by_hidden"]["4"]["seeds"] == [0, 1, 2]
    assert [r["hidden"] for r in repo.json("metrics/study_b/plots/mse_by_size.json")] == [4, 8]
