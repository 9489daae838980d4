"""k-fold SPA-NET training by event number: one ordinary run directory per fold, ``RUN/fold_<f>``.

The model of fold f trains and validates on the events with ``event % k != f`` and will score
the others (:class:`pairhunt.contract.FoldRule`); ``pairhunt export`` turns the fold runs into a
model set the processor routes by event number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pairhunt.contract import FoldRule
from pairhunt.errors import PairhuntError
from pairhunt.topology import Topology
from pairhunt.train.data import TrainingData
from pairhunt.train.loop import TrainConfig
from pairhunt.train.config import ModelConfig
from pairhunt.train.trainer import Trainer


def fold_run_dir(run_dir: str | Path, fold: int) -> Path:
    return Path(run_dir) / f"fold_{fold}"


def fold_trainers(
    topology: Topology, data: TrainingData, run_dir: str | Path, model_config: ModelConfig, config: TrainConfig, folds: int,
    augment: bool = False,
) -> Iterator[Trainer]:
    """One trainer per fold, built when the previous fold is done (one model in memory at a time)."""
    for fold in range(folds):
        yield Trainer(topology, data, fold_run_dir(run_dir, fold), model_config, config, FoldRule(folds, fold), augment)


def fold_runs(run_dir: str | Path) -> list[Path]:
    """The fold run directories of a k-fold run in fold order; empty for an ordinary run."""
    run_dir = Path(run_dir)
    rules = {}
    for config in sorted(run_dir.glob("fold_*/config.json")):
        rule = json.loads(config.read_text()).get("fold_rule")
        if rule is None:
            raise PairhuntError(f"{config.parent} is not a fold run (no fold_rule in its config.json)")
        rules[config.parent] = FoldRule(**rule)
    if not rules:
        return []
    folds = {r.folds for r in rules.values()}
    if len(folds) > 1:
        raise PairhuntError(f"{run_dir}: fold runs of {sorted(folds)} folds mixed")
    k = folds.pop()
    paths = [fold_run_dir(run_dir, fold) for fold in range(k)]
    for fold, path in enumerate(paths):
        if path not in rules:
            raise PairhuntError(f"{run_dir}: fold {fold} of {k} has no training run; finish `pairhunt train spanet --folds {k}`")
        if rules[path].fold != fold:
            raise PairhuntError(f"{path} holds the run of fold {rules[path].fold}, not of fold {fold}")
    return paths
