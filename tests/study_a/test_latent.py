"""Study A4 latent analysis: known answers on synthetic codes and image-set variants."""

import numpy as np

import pytest

from latentspace.study_a import latent
from latentspace.study_a import separability

IMAGE_SIZE = 32
CLASS_CENTRES = np.array([[42, 127, 212], [127, 212, 42], [212, 42, 127]])


def separated_codes(per_class: int = 80, dim: int = 40, seed: int = 0):
    """Three tight, far-apart Gaussian clusters."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 2, 3], per_class)
    centres = rng.normal(size=(3, dim)) * 8
    return (centres[labels - 1] + rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def random_factors(per_class: int, seed: int = 0):
    """Generator parameters (R, G, B, w, h, xc, yc) of single-rectangle images, as the `all` set draws them."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 2, 3], per_class)
    colour = CLASS_CENTRES[labels - 1] + rng.integers(-15, 16, size=(len(labels), 3))
    geometry = rng.integers(1, IMAGE_SIZE, size=(len(labels), 4))
    return np.concatenate([colour, geometry], axis=1).astype(np.float64), labels


def sweep(codes, labels, reducers=("pca",), dims=(8, 2)):
    return latent.dimension_sweep(codes, labels, dims=list(dims), reducers=list(reducers), holdout_fraction=0.3,
                                  alpha=1.0, metric_sample=500, umap_neighbors=10, umap_epochs=50, seed=0)


def test_separated_clusters_are_compact_and_separable():
    codes, labels = separated_codes()
    metrics, embeddings = sweep(codes, labels, reducers=("pca", "umap"))
    for entry in [metrics["raw"], *metrics["pca"].values(), *metrics["umap"].values()]:
        assert min(entry["f1_fit"].values()) > 0.97
        assert min(entry["f1_heldout"].values()) > 0.97
        assert entry["silhouette"] > 0.6
        assert entry["within_between_ratio"] < 0.5
    assert sorted(metrics["pca"]) == sorted(metrics["umap"]) == ["2", "8"]
    assert embeddings["pca"].shape == embeddings["umap"].shape == (len(labels), 2)


def test_shuffled_labels_fall_to_chance_on_held_out_data():
    codes, labels = separated_codes()
    shuffled = np.random.default_rng(1).permutation(labels)
    metrics, _ = sweep(codes, shuffled)
    raw = metrics["raw"]
    # One class against two others, balanced weights: chance F1 is about 0.4 (precision 1/3, recall ~1/2).
    assert raw["f1_heldout_mean"] < 0.55
    assert abs(raw["silhouette"]) < 0.1
    assert 0.9 < raw["within_between_ratio"] < 1.1
    # 40 dimensions, 168 fitting points: the probe partly memorises noise, the held-out score cannot.
    assert raw["f1_fit_mean"] > raw["f1_heldout_mean"]


def test_sweep_keeps_only_dimensions_below_the_code_size():
    assert latent.valid_dims([64, 16, 4, 2], n_samples=1000, code_dim=16) == [4, 2]
    assert latent.valid_dims([64, 16, 4, 2], n_samples=10, code_dim=1024) == [4, 2]


def test_parameter_encoder_is_continuous_and_random_encoder_is_not():
    factors, labels = random_factors(per_class=150)
    own_parameters = np.concatenate([factors[:, :3] / latent.COLOUR_SCALE, factors[:, 3:] / IMAGE_SIZE], axis=1)
    good, pairs = latent.continuity(own_parameters, factors, labels, image_size=IMAGE_SIZE, k=10)
    assert good["spearman"] > 0.85
    assert min(good["spearman_within_class"].values()) > 0.85
    assert len(pairs["geodesic"]) == len(pairs["parameter"]) == round(good["connected_fraction"] * 450 * 449 / 2)

    noise = np.random.default_rng(2).normal(size=(len(labels), 16))
    bad, _ = latent.continuity(noise, factors, labels, image_size=IMAGE_SIZE, k=10)
    assert abs(bad["spearman"]) < 0.1
    assert bad["components"] == 1


def test_parameter_distance_scales_colour_and_geometry():
    a = np.array([[42, 127, 212, 10, 10, 5, 5], [212, 127, 212, 10, 10, 5, 5], [42, 127, 212, 10, 10, 21, 5]],
                 dtype=float)
    d = latent.parameter_distances(a, image_size=IMAGE_SIZE)    # pairs (0,1), (0,2), (1,2)
    np.testing.assert_allclose(d, [1.0, 0.5, 1.5])


def test_umap_runs_only_at_the_umap_dims():
    codes, labels = separated_codes(per_class=30)
    metrics, embeddings = latent.dimension_sweep(codes, labels, dims=[8, 4, 2], reducers=["pca", "umap"],
                                                 holdout_fraction=0.3, alpha=1.0, metric_sample=90,
                                                 umap_neighbors=10, umap_epochs=20, seed=0, umap_dims=[2])
    assert sorted(metrics["pca"]) == ["2", "4", "8"] and sorted(metrics["umap"]) == ["2"]
    assert embeddings["umap"].shape == (90, 2)


def test_umap_seeds_the_random_restarts_of_its_spectral_start(monkeypatch):
    # scipy's eigsh draws ARPACK's restart vectors from OS entropy unless given `rng`, and umap names none: on the
    # kNN graphs of image sets that repeat their images (several components) the start then differed run to run.
    import scipy.sparse.linalg
    original, starts = scipy.sparse.linalg.eigsh, []

    def recording(*args, **kwargs):
        rng = kwargs.get("rng")
        starts.append(None if rng is None else rng.bit_generator.state["state"]["state"])
        return original(*args, **kwargs)
    monkeypatch.setattr(scipy.sparse.linalg, "eigsh", recording)
    codes, _ = separated_codes(per_class=30)
    runs = [latent.reduce_umap(codes, [2], neighbors=10, epochs=20, seed=0)[2] for _ in range(2)]
    assert starts and None not in starts
    # Each fit starts its generator afresh from the seed: the same draws, the same embedding.
    assert starts[: len(starts) // 2] == starts[len(starts) // 2:] and np.array_equal(*runs)
    assert scipy.sparse.linalg.eigsh is recording       # put back once UMAP is done


# --- separability (the claim metrics) ------------------------------------------------------------------

def blobs_2d(centres: dict, per_class: int = 100, spread: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 2, 3], per_class)
    xy = np.array([centres[c] for c in labels], dtype=float) + rng.normal(scale=spread, size=(len(labels), 2))
    return xy, labels


def separate(xy, labels):
    return separability.pairwise_separability(xy, labels, k=10, holdout_fraction=0.3, seed=0)


def test_three_clean_clusters_separate_every_pair_and_none_lies_apart():
    pairs = separate(*blobs_2d({1: (0, 0), 2: (5, 0), 3: (0, 5)}))
    assert list(pairs) == ["1-2", "1-3", "2-3"]
    assert min(pairs.values()) > 0.98
    assert separability.apart_class(pairs, margin=0.1) is None


@pytest.mark.parametrize("apart", [1, 2, 3])
def test_one_class_apart_and_two_mixed_is_found(apart):
    centres = {c: (0, 0) for c in (1, 2, 3)}
    centres[apart] = (6, 6)
    pairs = separate(*blobs_2d(centres))
    for key, value in pairs.items():
        if str(apart) in key.split("-"):
            assert value > 0.98
        else:
            assert 0.3 < value < 0.7               # two classes on one blob: about chance
    assert separability.apart_class(pairs, margin=0.1) == apart


def test_one_blob_is_chance_everywhere():
    pairs = separate(*blobs_2d({c: (0, 0) for c in (1, 2, 3)}))
    assert all(0.3 < v < 0.7 for v in pairs.values())
    assert separability.apart_class(pairs, margin=0.1) is None


def test_collect_lists_pairs_over_launches():
    record = separability.collect([{"1-2": 1.0, "1-3": 1.0, "2-3": 0.5}, {"1-2": 0.9, "1-3": 0.6, "2-3": 0.9}],
                                  [1, 2], margin=0.1)
    assert record == {"pairs": {"1-2": [1.0, 0.9], "1-3": [1.0, 0.6], "2-3": [0.5, 0.9]}, "launches": [1, 2],
                      "apart_class": [1, 2]}
