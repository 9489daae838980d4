"""A model as the processor runs it: one ONNX file, or the k fold models of a k-fold training.

A k-fold model set is a directory of ONNX files, one per fold, each an ordinary pairhunt model
whose contract carries its :class:`~pairhunt.contract.FoldRule`. The set is checked as a whole
(every fold present once, all folds of one model: kind, topology, features, inputs, outputs) and
routes each event to the fold model that did not train on it, by its NanoAOD ``event`` number.
A fold model alone is refused: it would score the events it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairhunt.contract import EVENT_BRANCH, ModelContract
from pairhunt.errors import PairhuntError

# what the fold models of one set must share (normalisation differs: each fold's comes from its own training events)
SHARED = ("kind", "topology", "features", "max_jets", "inputs", "outputs", "global_features")


@dataclass(frozen=True)
class ModelSet:
    """ONNX files indexed by fold (one file for an ordinary model) and the contract they share."""

    source: Path
    members: tuple[Path, ...]
    contract: ModelContract

    @property
    def folds(self) -> int:
        return len(self.members)

    def routes(self, event: np.ndarray | None, rows: np.ndarray) -> list[tuple[Path, np.ndarray]]:
        """``(model file, event indices)``: each of ``rows`` goes to the model that did not train on it."""
        if self.folds == 1:
            return [(self.members[0], rows)]
        if event is None:
            raise PairhuntError(
                f"{self.source} is a {self.folds}-fold model set routed by the {EVENT_BRANCH!r} number of each event, "
                f"and the input has no {EVENT_BRANCH!r} branch"
            )
        fold = np.asarray(event)[rows] % self.folds
        return [(path, rows[fold == f]) for f, path in enumerate(self.members)]


def load_model_set(path: Path) -> ModelSet:
    """The model at ``path``: an ONNX file, or a directory holding the fold models of one training."""
    from pairhunt.assign.onnx import read_contract

    if path.is_file():
        contract = read_contract(path)
        if contract.fold_rule is not None:
            rule = contract.fold_rule
            raise PairhuntError(
                f"{path} is fold {rule.fold} of a {rule.folds}-fold model set; give the set's directory, "
                "so that every event is scored by a fold model that did not train on it"
            )
        return ModelSet(path, (path,), contract)
    files = sorted(path.glob("*.onnx"))
    if not files:
        raise PairhuntError(f"{path}: a directory without ONNX models (a k-fold model set holds one per fold)")
    contracts = {file: read_contract(file) for file in files}
    return ModelSet(path, _fold_order(path, contracts), contracts[files[0]])


def _fold_order(path: Path, contracts: dict[Path, ModelContract]) -> tuple[Path, ...]:
    """The files by fold, after checking that they are every fold of one model."""
    first, reference = next(iter(contracts.items()))
    for file, contract in contracts.items():
        if contract.fold_rule is None:
            raise PairhuntError(f"model set {path}: {file.name} is not a fold model (no fold rule in its contract)")
        for key in SHARED:
            if getattr(contract, key) != getattr(reference, key):
                raise PairhuntError(f"model set {path}: {file.name} and {first.name} differ in {key}; they are not folds of one model")
    counts = {c.fold_rule.folds for c in contracts.values()}
    if len(counts) > 1:
        raise PairhuntError(f"model set {path}: fold models of {sorted(counts)} folds mixed")
    folds = counts.pop()
    by_fold: dict[int, list[Path]] = {}
    for file, contract in contracts.items():
        by_fold.setdefault(contract.fold_rule.fold, []).append(file)
    for fold in range(folds):
        if fold not in by_fold:
            raise PairhuntError(f"model set {path}: fold {fold} of {folds} is missing; its events would not be scored")
        if len(by_fold[fold]) > 1:
            raise PairhuntError(f"model set {path}: fold {fold} appears in {', '.join(f.name for f in by_fold[fold])}")
    return tuple(by_fold[fold][0] for fold in range(folds))
