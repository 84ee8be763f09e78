"""Load and validate references.yaml like params.yaml: every fact and claim key known, every value of its type.

The schema is plain data: FACTS below for the published facts, and per claim id the keys its rule reads
(`CLAIM_KEYS` of latentspace/verdicts/study_{a,b,c}.py). An unknown key (with "did you mean"), a value of the
wrong type (a published accuracy typed `0.43x6`), an unknown claim id, or a claim naming a missing fact is a
one-line UserError naming the key.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentspace.constants import CIFAR10_CLASSES, LOSSES, NETS, RECTANGLE_CLASSES, STUDY_C_CELLS, STUDY_C_REGIMES
from latentspace.core.errors import UserError
from latentspace.core.io import read_yaml
from latentspace.core.params import Choice, Float, Int, ListOf
from latentspace.verdicts.base import KINDS

REFERENCES_FILE = "references.yaml"


@dataclass(frozen=True)
class Text:
    def describe(self) -> str:
        return "a text"

    def check(self, v: Any) -> bool:
        return isinstance(v, str) and bool(v.strip())


@dataclass(frozen=True)
class Optional:
    """A key that may be left out."""
    spec: Any


@dataclass(frozen=True)
class MapOf:
    """A mapping whose keys are `key` values (e.g. the latent sizes) and whose values are `value`."""
    key: Any
    value: Any


@dataclass(frozen=True)
class Matrix:
    size: int

    def describe(self) -> str:
        return f"a {self.size} x {self.size} matrix of counts (a list of {self.size} lists of integers >= 0)"

    def check(self, v: Any) -> bool:
        return (isinstance(v, list) and len(v) == self.size
                and all(isinstance(r, list) and len(r) == self.size and all(Int(0).check(x) for x in r) for r in v))


ACCURACY = Float(0, 1)
SCORES = {"test_accuracy": ACCURACY, "test_macro_f1": ACCURACY}
FACTS: dict[str, dict] = {
    "study_a_parameters": {"source": Text(), "what": Text(), "values": {n: Optional(Int(1)) for n in NETS}},
    "study_a_latent_figures": {"source": Text(), "what": Text(), "values": {n: Optional({
        "shape": Choice("clean", "apart"), "class_apart": Optional(Choice(*RECTANGLE_CLASSES))}) for n in NETS}},
    "study_a_wce_weights": {"source": Text(), "what": Text(),
                            "values": {"background": Float(0, lo_open=True), "rectangle_class": Float(0, lo_open=True)}},
    "study_b_probe_accuracy": {"source": Text(), "what": Text(), "autoencoder_epochs": Optional(Int(1)),
                               "values": MapOf(Int(1, 65536), ACCURACY)},
    "study_b_confusion": {"source": Text(), "what": Text(), "values": MapOf(Int(1, 65536), Matrix(len(CIFAR10_CLASSES)))},
    "study_c_test_scores": {"source": Text(), "what": Text(), "runs_per_cell": Optional(Int(1)),
                            "values": {c: {r: SCORES for r in STUDY_C_REGIMES} for c in STUDY_C_CELLS}},
}
CLAIM_COMMON = {"id": Text(), "study": Choice("A", "B", "C"), "kind": Choice(*KINDS), "source": Text(),
                "statement": Text()}
# Keys a claim's rule may read, for the claims that use them (imported by the study modules).
FACT = lambda name: Choice(name)  # noqa: E731  (a claim's `facts` must name exactly its own fact)
LOSS, LOSS_LIST = Choice(*LOSSES), ListOf(Choice(*LOSSES))
CLASS_LIST = ListOf(Choice(*CIFAR10_CLASSES))
CONFUSIONS = MapOf(Int(1, 65536), MapOf(Choice(*CIFAR10_CLASSES), CLASS_LIST))


def _fail(path: str, where: str, message: str) -> None:
    raise UserError(f"{path}: {where}: {message}")


def validate(data: Any, spec: Any, where: str, path: str) -> None:
    """Check `data` against `spec` (a dict of key specs, MapOf, or a value spec with check/describe)."""
    if isinstance(spec, dict):
        if not isinstance(data, dict):
            _fail(path, where, f"expected a mapping with keys {', '.join(map(str, spec))}")
        for key in data:
            if key not in spec:
                close = difflib.get_close_matches(str(key), [str(k) for k in spec], n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                _fail(path, f"{where}.{key}", f"unknown key{hint}; allowed here: {', '.join(map(str, spec))}")
        for key, sub in spec.items():
            if key not in data:
                if not isinstance(sub, Optional):
                    _fail(path, f"{where}.{key}", "missing")
                continue
            validate(data[key], sub.spec if isinstance(sub, Optional) else sub, f"{where}.{key}", path)
    elif isinstance(spec, MapOf):
        if not isinstance(data, dict) or not data:
            _fail(path, where, "expected a non-empty mapping")
        for key, value in data.items():
            if not spec.key.check(key):
                _fail(path, f"{where}.{key}", f"unknown key; expected {spec.key.describe()}")
            validate(value, spec.value, f"{where}.{key}", path)
    elif not spec.check(data):
        _fail(path, where, f"{data!r} is not allowed; expected {spec.describe()}")


def load_references(path: str | Path, claim_keys: dict[str, dict]) -> dict:
    """references.yaml, validated; claim_keys: per known claim id, the extra keys its rule reads."""
    path = Path(path)
    refs = read_yaml(path, what="the published facts the verdicts compare with")
    if not isinstance(refs, dict) or not isinstance(refs.get("facts"), dict) or not isinstance(refs.get("claims"), list):
        raise UserError(f"{path}: expected a mapping with `facts` (a mapping) and `claims` (a list)")
    validate(refs["facts"], {name: Optional(spec) for name, spec in FACTS.items()}, "facts", path.as_posix())
    for key in refs:
        if key not in ("facts", "claims"):
            _fail(path.as_posix(), str(key), "unknown key; allowed: facts, claims")
    seen = set()
    for i, claim in enumerate(refs["claims"]):
        cid = claim.get("id") if isinstance(claim, dict) else None
        if cid not in claim_keys:
            close = difflib.get_close_matches(str(cid), list(claim_keys), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            _fail(path.as_posix(), f"claims[{i}].id", f"{cid!r} has no rule{hint}; known: {', '.join(claim_keys)}")
        if cid in seen:
            _fail(path.as_posix(), f"claims[{i}].id", f"{cid!r} appears twice")
        seen.add(cid)
        validate(claim, {**CLAIM_COMMON, **claim_keys[cid]}, f"claims[{i}] ({cid})", path.as_posix())
        if "facts" in claim and claim["facts"] not in refs["facts"]:
            _fail(path.as_posix(), f"claims[{i}] ({cid}).facts", f"names {claim['facts']!r}, which is not under `facts`")
    return refs
