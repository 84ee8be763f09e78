import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from latentspace.training.metrics import classification_report, confusion_matrix


def test_report_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 500)
    p = np.where(rng.random(500) < 0.7, y, rng.integers(0, 4, 500))
    p[p == 3] = 2  # class 3 never predicted: precision 0/0 must count as 0
    cm = confusion_matrix(y, p, 4)
    assert cm.sum() == 500 and cm[:, 3].sum() == 0
    rep = classification_report(cm)
    assert np.isclose(rep["accuracy"], accuracy_score(y, p))
    assert np.isclose(rep["macro_f1"], f1_score(y, p, average="macro", zero_division=0))
    prec = precision_score(y, p, average=None, labels=range(4), zero_division=0)
    rec = recall_score(y, p, average=None, labels=range(4), zero_division=0)
    assert np.allclose([rep["per_class"][str(i)]["precision"] for i in range(4)], prec)
    assert np.allclose([rep["per_class"][str(i)]["recall"] for i in range(4)], rec)
