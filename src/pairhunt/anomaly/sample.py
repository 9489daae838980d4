"""The events an anomaly search works on: resonant mass, auxiliary features and weights,
read from a finished ``pairhunt run``'s per-event table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from pairhunt.anomaly.features import FEATURES, default_features, feature_matrix
from pairhunt.errors import PairhuntError
from pairhunt.evaluate import load_results
from pairhunt.event_table import KEYS
from pairhunt.rundir import require_finished


@dataclass(frozen=True)
class AnomalySample:
    """Selected events with a complete pair: ``mass`` (the average parent mass), ``features``
    ``[events, len(names)]``, ``weight``, ``origin`` (which dataset each came from), ``keys``
    ``[events, 3]`` (run, luminosityBlock, event: to join results back to NanoAOD) and
    ``event_id``: rows that are copies of one event (pseudo-data drawn with replacement) share
    it, so that k-fold models never train on one copy and score another; ``None``: every row is
    its own event."""

    mass: np.ndarray
    features: np.ndarray
    weight: np.ndarray
    names: tuple[str, ...]
    origin: np.ndarray
    keys: np.ndarray
    event_id: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.mass)

    def event_ids(self) -> np.ndarray:
        """Per row the id of its event (equal for copies of one event)."""
        return np.arange(len(self)) if self.event_id is None else self.event_id

    def subset(self, keep: np.ndarray) -> AnomalySample:
        ids = None if self.event_id is None else self.event_id[keep]
        return AnomalySample(self.mass[keep], self.features[keep], self.weight[keep], self.names, self.origin[keep], self.keys[keep], ids)

    def with_weight(self, weight: np.ndarray) -> AnomalySample:
        return AnomalySample(self.mass, self.features, np.asarray(weight, dtype=np.float64), self.names, self.origin, self.keys, self.event_id)

    @staticmethod
    def concatenate(samples: list[AnomalySample]) -> AnomalySample:
        """The samples one after the other; their events stay distinct from each other's."""
        if len({s.names for s in samples}) != 1:
            raise PairhuntError("samples with different features cannot be joined")
        joined = {f: np.concatenate([getattr(s, f) for s in samples]) for f in ("mass", "features", "weight", "origin", "keys")}
        ids = None
        if any(s.event_id is not None for s in samples):
            offsets = np.cumsum([0] + [int(s.event_ids().max()) + 1 if len(s) else 0 for s in samples[:-1]])
            ids = np.concatenate([s.event_ids() + offset for s, offset in zip(samples, offsets)])
        return AnomalySample(names=samples[0].names, event_id=ids, **joined)

    def unweighted(self, seed: int) -> AnomalySample:
        """Hit-or-miss unweighting: each event kept with probability weight / max weight, so the
        kept events are distinct (no event repeated across folds) and distributed as the weighted
        sample; weights become 1."""
        rng = np.random.default_rng(seed)
        keep = rng.random(len(self)) * self.weight.max() < self.weight
        kept = self.subset(keep)
        return kept.with_weight(np.ones(len(kept)))


def table_columns(table: ak.Array) -> dict[str, np.ndarray]:
    """The table's event-level columns as numpy (per-parent columns as ``[events, parents]``)."""
    columns = {}
    for field in table.fields:
        values = table[field]
        if values.ndim == 1:
            columns[field] = ak.to_numpy(values)
        elif field.endswith(("_mass", "_pt", "_eta", "_phi", "_dalitz_min", "_dalitz_max")):
            columns[field] = ak.to_numpy(values).astype(np.float64)
    return columns


def method_columns(run_dir: str | Path, dataset: str, method: str) -> dict[str, np.ndarray]:
    """:func:`table_columns` of one dataset of a finished run, refusing a table without ``method``
    or without event weights."""
    columns = table_columns(load_results(run_dir, dataset))
    if f"{method}_mavg" not in columns:
        raise PairhuntError(f"method {method!r} is not in the per-event table of {run_dir} (dataset {dataset})")
    if "weight" not in columns:
        raise PairhuntError(f"the per-event table of {run_dir} has no weights: rerun it with this pairhunt version")
    return columns


def columns_sample(columns: dict[str, np.ndarray], method: str, dataset: str, features: list[str] | None = None) -> tuple[AnomalySample, np.ndarray]:
    """The usable rows of one dataset's table columns (selected, a complete pair, finite
    features) as a sample, and which rows those are. ``features`` as in :func:`load_sample`."""
    if features is None:
        names = default_features(columns, method)
    elif list(features) == ["all"]:
        names = default_features(columns, method, tuple(FEATURES))
    else:
        names = list(features)
    unknown = sorted(set(names) - set(FEATURES))
    if unknown:
        raise PairhuntError(f"unknown anomaly features {unknown}; known: {sorted(FEATURES)}")
    usable = columns["selected"] & np.isfinite(columns[f"{method}_mavg"])
    matrix = feature_matrix(columns, method, names)
    usable &= np.isfinite(matrix).all(axis=1)
    keys = np.stack([columns.get(k, np.zeros(len(usable), dtype=np.int64)) for k in KEYS], axis=1).astype(np.int64)
    sample = AnomalySample(
        columns[f"{method}_mavg"][usable], matrix[usable], columns["weight"][usable].astype(np.float64),
        tuple(names), np.full(int(usable.sum()), dataset), keys[usable],
    )
    return sample, usable


def load_sample(
    run_dir: str | Path, method: str, datasets: list[str], features: list[str] | None = None, accounting: dict | None = None
) -> AnomalySample:
    """The ``datasets`` of a finished run, reconstructed by ``method``; ``features`` default to
    :data:`~pairhunt.anomaly.features.DEFAULT_FEATURES`, ``["all"]`` means every known feature,
    in both cases those the table has columns for. ``accounting``, if given, receives per
    dataset the events read, selected, and used (a complete pair and finite features)."""
    require_finished(run_dir)
    parts = []
    for dataset in datasets:
        columns = method_columns(run_dir, dataset, method)
        sample, usable = columns_sample(columns, method, dataset, features)
        if accounting is not None:
            accounting[dataset] = {"read": len(usable), "selected": int(columns["selected"].sum()), "used": int(usable.sum())}
        parts.append(sample)
    return AnomalySample.concatenate(parts)
