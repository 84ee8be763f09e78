"""Study B end to end through DVC, on tiny fake CIFAR-10: one pooled stage trains every autoencoder, one probes
them all, the summary draws the figures and says which claims the run's scale decides."""

import json

import numpy as np
import pytest
import torch

from latentspace import paths
from latentspace.constants import CIFAR10_CLASSES
from latentspace.study_b import autoencoder as ae
from latentspace.study_b import probe as pr

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
STAGES = {"study_b_autoencoders", "study_b_probes", "study_b_summary"}


@pytest.mark.e2e
def test_study_b_pools_every_run_and_a_probe_setting_leaves_the_autoencoders_alone(tiny_pipeline_repo, tiny_datasets_dir):
    repo = tiny_pipeline_repo           # the shared tiny pipeline (TINY_STUDY_B), run and committed
    env = {"LATENTSPACE_DATA_DIR": str(tiny_datasets_dir)}
    assert STAGES <= repo.ran

    n_train = len(np.load(repo.path / "data/cifar10/y_train.npy"))
    n_test = len(np.load(repo.path / "data/cifar10/y_test.npy"))
    probe = repo.json("metrics/study_b/sizes/probe-4.json")
    rows = repo.json("metrics/study_b/confusion/probe-4.json")
    assert len(rows) == n_test == np.asarray(probe["confusion"]).sum()
    assert set(probe["per_class"]["cat"]) == {"precision", "recall", "f1"}
    assert probe["standardized"] is False and probe["train_images"] == n_train   # all training codes
    assert probe["stopping"]["max_epochs"] == 3
    record = repo.json("metrics/study_b/autoencoders/ae-4.json")
    assert record["max_epochs"] == 2 and record["test_mse"] > 0 and "seconds" not in record
    assert record["stopping"]["epoch_kept"] == record["epoch_kept"]
    assert record["stopping"]["hit_cap"] == record["hit_cap"]
    assert record["val_loss_curve"][record["epoch_kept"] - 1] == min(record["val_loss_curve"])
    assert repo.json("metrics/study_b/autoencoders/ae-4-s1.json")["seed"] == 1
    assert sorted(p.name for p in (repo.path / "models/study_b").iterdir()) == ["ae-4-s1.pt", "ae-4.pt"]
    # The saved probes, on the saved autoencoders' codes, give the test predictions of the confusion rows again.
    assert sorted(p.name for p in (repo.path / "models/study_b_probes").iterdir()) == ["probe-4-s1.pt", "probe-4.pt"]
    x_test = torch.from_numpy(ae.images_nchw(np.load(repo.path / "data/cifar10/x_test.npy")))
    for tag in ("4", "4-s1"):
        codes = ae.encode_images(ae.load_autoencoder(repo.path / paths.study_b_model(tag)), x_test)
        predicted = pr.load_probe(repo.path / paths.study_b_probe_model(tag))(codes).numpy()
        rows = repo.json(f"metrics/study_b/confusion/probe-{tag}.json")
        assert [CIFAR10_CLASSES[c] for c in predicted] == [r["predicted"] for r in rows]
    assert (repo.path / "metrics/study_b/live/probes/probe-4/plots/metrics/test_accuracy.tsv").exists()
    assert (repo.path / "metrics/study_b/live/autoencoders/ae-4-s1/plots/metrics/val_loss.tsv").exists()
    assert repo.json("metrics/timing/study_b_autoencoders.json")["seconds"] > 0
    for png in ("ae-4-reconstructions.png", "ae-4-s1-reconstructions.png", "probe-4-confusion.png",
                "probe-4-s1-confusion.png", "summary.png"):
        assert (repo.path / "reports/study_b" / png).stat().st_size > 1000

    summary = repo.json("metrics/study_b/summary.json")
    h4 = summary["by_hidden"]["4"]
    assert h4["seeds"] == [0, 1] and len(h4["probe_test_accuracy_values"]) == 2
    assert h4["probe_test_accuracy"] == pytest.approx(np.mean(h4["probe_test_accuracy_values"]))
    assert len(h4["per_class"]["cat"]["recall_values"]) == 2
    jpeg = probe["jpeg_roundtrip"]
    assert jpeg["test_accuracy_copy"] == probe["test_accuracy"] and 0 <= jpeg["test_accuracy_roundtrip"] <= 1
    assert repo.json("metrics/study_b/sizes/probe-4-s1.json")["jpeg_roundtrip"] is None
    data = summary["data"]
    assert data["source"] == "offline copy" and data["jpeg_decoded"] is True and "location" not in data
    assert str(tiny_datasets_dir) not in (repo.path / "metrics/study_b/summary.json").read_text()
    assert data["jpeg_roundtrip_drop"] == pytest.approx(jpeg["test_accuracy_copy"] - jpeg["test_accuracy_roundtrip"])
    scale = summary["scale"]
    assert scale["ae_runs"] == 2 and scale["full_train_images"] == n_train and scale["all_training_data"]
    assert set(scale["claims"]) == {"b-below-half", "b-mse-decreasing", "b-probe-accuracy"}

    # A probe setting makes the probes and the summary (which reads it) stale, not the autoencoders.
    params = (repo.path / "params.yaml").read_text()
    repo.set_params(**{"study_b.probe_lr": 0.002})
    stale = set(json.loads(repo.dvc("status", "--json", env=env).stdout))
    assert stale & STAGES == {"study_b_probes", "study_b_summary"}
    (repo.path / "params.yaml").write_text(params)
    out = repo.dvc("exp", "run", "study_b_summary", "-S", "study_b.hidden_sizes=[4,8]", env=env).stdout
    assert repo.ran_stages(out) == STAGES
    summary = repo.json("metrics/study_b/summary.json")
    assert set(summary["by_hidden"]) == {"4", "8"} and summary["by_hidden"]["4"]["seeds"] == [0, 1]
    assert [r["hidden"] for r in repo.json("metrics/study_b/plots/mse_by_size.json")] == [4, 8]
