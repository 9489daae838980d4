"""What the theory map sees of an event: the reconstructed pair and the event's shape, read from
a finished run's per-event table for one assignment method (numpy only, no torch).

The mass scale separates the masses of one theory; the candidates' internal structure (Dalitz
variables), their balance, boosts and angles, the jet multiplicity and the event shape separate
decays (three quarks, a cascade, top quarks, paired dijets, QCD radiation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairhunt.anomaly.features import FEATURES, Columns
from pairhunt.anomaly.sample import method_columns
from pairhunt.errors import PairhuntError
from pairhunt.rundir import require_finished


def log_mass(columns: Columns, method: str) -> np.ndarray:
    """log of the average parent mass in GeV: the scale of the theory."""
    return np.log(columns[f"{method}_mavg"])


def log_ht(columns: Columns, method: str) -> np.ndarray:
    return np.log(columns["ht"])


_OWN = {"log_mass": log_mass, "log_ht": log_ht}

EMBEDDING_FEATURES = (
    "log_mass", "mass_asymmetry", "delta_eta", "dalitz_min", "dalitz_max", "n_jets", "log_ht", "sphericity",
    "aplanarity", "pt_over_mass_max", "pt_over_mass_min", "candidate_ht_fraction", "pt_balance",
)


def feature_matrix(columns: Columns, method: str, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """``[events, features]`` float32 in the order of ``names``."""
    unknown = [n for n in names if n not in _OWN and n not in FEATURES]
    if unknown:
        raise PairhuntError(f"unknown theory-map features {unknown}; known: {sorted(set(_OWN) | set(FEATURES))}")
    return np.stack([(_OWN.get(n) or FEATURES[n])(columns, method) for n in names], axis=1).astype(np.float32)


@dataclass(frozen=True)
class TheoryEvents:
    """Selected events with a complete pair: ``features [events, F]``, generator ``weight``, the
    average parent ``mass`` (GeV) and ``origin`` (the dataset each came from)."""

    features: np.ndarray
    weight: np.ndarray
    mass: np.ndarray
    names: tuple[str, ...]
    origin: np.ndarray

    def __len__(self) -> int:
        return len(self.mass)

    def subset(self, keep: np.ndarray) -> TheoryEvents:
        return TheoryEvents(self.features[keep], self.weight[keep], self.mass[keep], self.names, self.origin[keep])


def load_events(
    run_dir: str | Path, method: str, datasets: list[str], names: tuple[str, ...] = EMBEDDING_FEATURES,
    accounting: dict | None = None,
) -> TheoryEvents:
    """The events of ``datasets`` in a finished run, reconstructed by ``method``. ``accounting``,
    if given, receives per dataset the events read, selected and used (a complete pair, finite
    features): the rest are named, not lost."""
    require_finished(run_dir)
    parts = []
    for dataset in datasets:
        columns = method_columns(run_dir, dataset, method)
        matrix = feature_matrix(columns, method, names)
        with np.errstate(invalid="ignore"):
            usable = columns["selected"] & np.isfinite(columns[f"{method}_mavg"]) & np.isfinite(matrix).all(axis=1)
        if accounting is not None:
            accounting[dataset] = {"read": len(usable), "selected": int(columns["selected"].sum()), "used": int(usable.sum())}
        parts.append(TheoryEvents(
            matrix[usable], columns["weight"][usable].astype(np.float64), columns[f"{method}_mavg"][usable].astype(np.float64),
            tuple(names), np.full(int(usable.sum()), dataset),
        ))
    return TheoryEvents(
        np.concatenate([p.features for p in parts]), np.concatenate([p.weight for p in parts]),
        np.concatenate([p.mass for p in parts]), tuple(names), np.concatenate([p.origin for p in parts]),
    )
