"""Is a set like any theory of the library? A Gaussian test of its pooled representation, per theory.

Why beside the map's densities: the map keeps, in two dimensions, what tells the library's theories
apart, and a theory outside the library can land on or between its clusters (stop pairs beside
the gluino line, models/theory_map.md). The network's pooled representation, the weighted mean of
the per-event φ's before ρ squeezes it onto the map, keeps every direction it learnt. Being a mean
over the set's events it is close to Gaussian, so per theory the pooled representations of its
library sets have a mean vector and a covariance (shrunk towards its diagonal: a covariance of
that many dimensions from a few hundred sets needs it to invert well). A set's squared
Mahalanobis distance from every theory is compared with the distance that a fixed small fraction
of that theory's own validation sets exceed. As for sizes: smaller sets scatter more, so the
thresholds are calibrated per set size and a set is judged by those of the largest calibrated
size not above its own. A set beyond every theory's threshold is *unlike every theory*.

A set is flagged unlike the library when either this test or the map's densities say so
(:class:`pairhunt.theory.embedding.Placement`); compared on the leave-one-theory-out protocol of
``benchmarks/theory_map_selection.py`` (models/theory_map.md).
"""

from __future__ import annotations

import numpy as np

from pairhunt.errors import PairhuntError
from pairhunt.theory.density import thresholds_for_size


class SetNovelty:
    """Per theory, the mean and covariance of its sets' pooled representations, and the unlike thresholds."""

    def __init__(self, means: dict[str, list], covariances: dict[str, list], thresholds: dict | None = None):
        """``thresholds``: per set size, per theory (as :meth:`calibrate` gives them)."""
        self.classes = list(means)
        self.means = np.array([means[c] for c in self.classes], dtype=np.float64)
        self.covariances = np.array([covariances[c] for c in self.classes], dtype=np.float64)
        self.precisions = np.linalg.inv(self.covariances)
        self.thresholds = {int(k): np.array([t[c] for c in self.classes]) for k, t in (thresholds or {}).items()}

    @classmethod
    def fit(cls, library: dict[str, np.ndarray], shrinkage: float) -> SetNovelty:
        """From ``library``: theory -> pooled representations ``[n, hidden]`` of its library sets."""
        if not 0 <= shrinkage < 1:
            raise PairhuntError(f"the covariance shrinkage must be in [0, 1), got {shrinkage}")
        means, covariances = {}, {}
        for name, points in library.items():
            points = np.asarray(points, dtype=np.float64)
            if len(points) <= points.shape[1]:
                raise PairhuntError(f"theory {name!r}: {len(points)} sets cannot fix a covariance of {points.shape[1]} dimensions")
            covariance = np.cov(points, rowvar=False)
            diagonal = np.diag(np.maximum(np.diag(covariance), 1e-12))
            means[name] = points.mean(axis=0).tolist()
            covariances[name] = ((1 - shrinkage) * covariance + shrinkage * diagonal).tolist()
        return cls(means, covariances)

    def distances(self, pooled: np.ndarray) -> np.ndarray:
        """``[sets, theories]``: squared Mahalanobis distances of pooled sets from every theory."""
        delta = np.atleast_2d(pooled)[:, None, :] - self.means[None]
        return np.einsum("stf,tfg,stg->st", delta, self.precisions, delta)

    def thresholds_for(self, set_size: float) -> np.ndarray:
        """Per theory, the threshold of the largest calibrated set size not above ``set_size``."""
        return thresholds_for_size(self.thresholds, set_size)

    def unlike(self, pooled: np.ndarray, set_size: float) -> np.ndarray:
        """``[sets]`` bool: beyond every theory's threshold for sets of ``set_size`` events."""
        return (self.distances(pooled) > self.thresholds_for(set_size)).all(axis=1)

    def calibrate(self, validation: dict[str, np.ndarray], quantile: float, set_size: int) -> dict[str, float]:
        """Per theory, the distance that ``quantile`` of its own ``validation`` sets (of
        ``set_size`` events, pooled) exceed; kept for sets of that size."""
        if not 0 < quantile < 1:
            raise PairhuntError(f"the unlike quantile must be between 0 and 1, got {quantile}")
        thresholds = {
            name: float(np.quantile(self.distances(np.asarray(validation[name]))[:, k], 1 - quantile))
            for k, name in enumerate(self.classes)
        }
        self.thresholds[int(set_size)] = np.array([thresholds[c] for c in self.classes])
        return thresholds

    def to_dict(self) -> dict:
        """What the contract carries (:meth:`from_dict` reads it back)."""
        return {
            "means": {c: m.tolist() for c, m in zip(self.classes, self.means)},
            "covariances": {c: v.tolist() for c, v in zip(self.classes, self.covariances)},
            "thresholds": {str(k): dict(zip(self.classes, t.tolist())) for k, t in self.thresholds.items()},
        }

    @classmethod
    def from_dict(cls, values: dict) -> SetNovelty:
        return cls(values["means"], values["covariances"], values["thresholds"])
