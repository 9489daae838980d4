"""Auxiliary features x of a reconstructed pair, chosen to be close to independent of its mass.

The resonant methods learn what distinguishes the signal region from the background expected
there; a feature that follows the mass for QCD lets them learn the mass instead, and sculpt a
bump. :func:`mass_correlations` measures that on background, so a user can drop such features.
Each feature reads the per-event table's columns of one assignment method ``M``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

Columns = Mapping[str, np.ndarray]


def _pair(columns: Columns, method: str, field: str) -> tuple[np.ndarray, np.ndarray]:
    values = columns[f"{method}_{field}"]
    return values[:, 0], values[:, 1]


def mass_asymmetry(columns: Columns, method: str) -> np.ndarray:
    """|m1 - m2| / (m1 + m2): small for two decays of one particle."""
    m1, m2 = _pair(columns, method, "mass")
    return np.abs(m1 - m2) / (m1 + m2)


def pt_over_mass_max(columns: Columns, method: str) -> np.ndarray:
    """The harder candidate's pT over the average mass (boost)."""
    return np.fmax(*_pair(columns, method, "pt")) / columns[f"{method}_mavg"]


def pt_over_mass_min(columns: Columns, method: str) -> np.ndarray:
    """The softer candidate's pT over the average mass."""
    return np.fmin(*_pair(columns, method, "pt")) / columns[f"{method}_mavg"]


def pt_balance(columns: Columns, method: str) -> np.ndarray:
    """|pT1 - pT2| / (pT1 + pT2): a pair recoiling against nothing is balanced."""
    pt1, pt2 = _pair(columns, method, "pt")
    return np.abs(pt1 - pt2) / (pt1 + pt2)


def delta_eta(columns: Columns, method: str) -> np.ndarray:
    """|η1 - η2|: t-channel QCD scatters forward, s-channel pair production is central."""
    eta1, eta2 = _pair(columns, method, "eta")
    return np.abs(eta1 - eta2)


def candidate_ht_fraction(columns: Columns, method: str) -> np.ndarray:
    """(pT1 + pT2) / HT: how much of the event's activity the two candidates carry."""
    pt1, pt2 = _pair(columns, method, "pt")
    return (pt1 + pt2) / columns["ht"]


def dalitz_min(columns: Columns, method: str) -> np.ndarray:
    """Smallest m_ij² / m² inside a candidate, averaged over the two: near 1/3 for a three-body decay,
    near 0 when a candidate holds a soft or collinear jet (QCD radiation)."""
    return np.mean(_pair(columns, method, "dalitz_min"), axis=0)


def dalitz_max(columns: Columns, method: str) -> np.ndarray:
    """Largest m_ij² / m² inside a candidate, averaged over the two."""
    return np.mean(_pair(columns, method, "dalitz_max"), axis=0)


def jet_multiplicity(columns: Columns, method: str) -> np.ndarray:
    return columns["n_jets"].astype(np.float64)


def sphericity(columns: Columns, method: str) -> np.ndarray:
    """Sphericity of the kept jets: a heavy pair's decays fill the event, QCD stays dijet-like."""
    return columns["sphericity"]


def aplanarity(columns: Columns, method: str) -> np.ndarray:
    return columns["aplanarity"]


def model_score(columns: Columns, method: str) -> np.ndarray:
    """The method's own per-event score (ABC: its mass-decorrelated anomaly score)."""
    return columns[f"{method}_score"]


FEATURES: dict[str, Callable[[Columns, str], np.ndarray]] = {
    "mass_asymmetry": mass_asymmetry,
    "pt_over_mass_max": pt_over_mass_max,
    "pt_over_mass_min": pt_over_mass_min,
    "pt_balance": pt_balance,
    "delta_eta": delta_eta,
    "candidate_ht_fraction": candidate_ht_fraction,
    "dalitz_min": dalitz_min,
    "dalitz_max": dalitz_max,
    "n_jets": jet_multiplicity,
    "sphericity": sphericity,
    "aplanarity": aplanarity,
    "score": model_score,
}


# the features used unless others are named: on weighted QCD (p̂T > 400 GeV, HT > 1 TeV; ABC or
# six-jet mass-asymmetry assignment, within a window's analysis range near 1 TeV) their rank
# correlation with the mass is below 0.2 in size and each separates 1 TeV gluino pairs from QCD at
# the same mass (AUC 0.62-0.89, benchmarks/results/anomaly_injection.json); the pT / m and
# HT-fraction features follow the mass more (-0.2 to -0.5 there, -0.5 to -0.8 over the whole
# spectrum), and a classifier would learn the mass from them
DEFAULT_FEATURES = ("mass_asymmetry", "delta_eta", "dalitz_min", "dalitz_max", "n_jets", "sphericity", "aplanarity", "score")


def default_features(columns: Columns, method: str, names: tuple[str, ...] = DEFAULT_FEATURES) -> list[str]:
    """The ``names`` the table has columns for (``score`` only for methods that write one)."""
    return [name for name in names if name != "score" or f"{method}_score" in columns]


def feature_matrix(columns: Columns, method: str, names: list[str]) -> np.ndarray:
    """``[events, features]`` float64 in the order of ``names``."""
    return np.stack([FEATURES[name](columns, method) for name in names], axis=1).astype(np.float64)


def weighted_correlation(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> float:
    """Pearson correlation of ``a`` and ``b`` with event weights."""
    weight = weight / weight.sum()
    da, db = a - weight @ a, b - weight @ b
    return float(weight @ (da * db) / np.sqrt((weight @ (da * da)) * (weight @ (db * db))))


def mass_correlations(mass: np.ndarray, features: np.ndarray, weight: np.ndarray, names: list[str]) -> dict[str, float]:
    """Weighted rank correlation (Spearman) of every feature with the mass: 0 means independent
    to first order; ranks make it blind to the features' scales and tails."""
    order = np.argsort(np.argsort(mass))
    return {
        name: weighted_correlation(order.astype(np.float64), np.argsort(np.argsort(features[:, k])).astype(np.float64), weight)
        for k, name in enumerate(names)
    }
