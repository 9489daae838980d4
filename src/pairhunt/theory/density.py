"""Where the library's theories live on the map: one Gaussian kernel density per theory.

Each theory's density is a kernel estimate over its embedded training sets, with the bandwidth
of Scott's rule times the theory's own covariance (clusters of different size and shape are each
described in their own units). A point's probability of each theory is its density over the sum
(equal priors). A point is *unlike every theory* when its density is below each theory's
threshold, the density that a fixed small fraction of that theory's own validation sets fall
below: so about that fraction of library sets are flagged, by construction, and a theory that
lands between or away from the clusters is. Smaller sets scatter more, so the thresholds are
calibrated for several set sizes and a set is judged by those of its own size (the largest
calibrated size not above it): a small excess is not flagged for being small.
"""

from __future__ import annotations

import numpy as np

from pairhunt.errors import PairhuntError


def _logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    top = values.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.exp(values - top).sum(axis=axis))


def thresholds_for_size(thresholds: dict[int, np.ndarray], set_size: float) -> np.ndarray:
    """Of per-set-size thresholds, those of the largest calibrated size not above ``set_size``
    (the smallest calibrated one below it): a small set is not judged as a large one."""
    if not thresholds:
        raise PairhuntError("no unlike thresholds: calibrate them first")
    sizes = sorted(thresholds)
    return thresholds[max([k for k in sizes if k <= set_size], default=sizes[0])]


class _Kernel:
    """A Gaussian KDE of ``points [n, d]`` (Scott's factor n^(-1/(d+4)) times their covariance)."""

    def __init__(self, points: np.ndarray):
        points = np.asarray(points, dtype=np.float64)
        n, d = points.shape
        if n <= d:
            raise PairhuntError(f"a kernel density in {d} dimensions needs more than {d} points, got {n}")
        covariance = np.atleast_2d(np.cov(points, rowvar=False)) * n ** (-2.0 / (d + 4))
        covariance += np.eye(d) * 1e-9 * np.trace(covariance)
        self.points = points
        self.whiten = np.linalg.cholesky(np.linalg.inv(covariance))
        self.log_norm = -0.5 * d * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(covariance)[1] - np.log(n)

    def log_density(self, x: np.ndarray) -> np.ndarray:
        delta = (np.asarray(x, dtype=np.float64)[:, None, :] - self.points[None]) @ self.whiten
        return _logsumexp(-0.5 * (delta**2).sum(axis=-1), axis=1) + self.log_norm


class TheoryDensity:
    """Kernel densities of the library's theories (``library``: theory -> points ``[n, d]``)."""

    def __init__(self, library: dict[str, np.ndarray], thresholds: dict[int, dict[str, float]] | None = None):
        """``thresholds``: per set size, per theory (as :meth:`calibrate` gives them)."""
        self.classes = list(library)
        self.kernels = [_Kernel(np.asarray(library[c])) for c in self.classes]
        self.thresholds = {int(k): np.array([t[c] for c in self.classes]) for k, t in (thresholds or {}).items()}

    def log_densities(self, points: np.ndarray) -> np.ndarray:
        """``[n, theories]`` log densities."""
        return np.stack([k.log_density(np.atleast_2d(points)) for k in self.kernels], axis=1)

    def probabilities(self, points: np.ndarray) -> np.ndarray:
        """``[n, theories]``: each theory's density over their sum."""
        log = self.log_densities(points)
        return np.exp(log - _logsumexp(log, axis=1)[:, None])

    def thresholds_for(self, set_size: float) -> np.ndarray:
        """Per theory, the threshold of the largest calibrated set size not above ``set_size``
        (the smallest calibrated one below it)."""
        return thresholds_for_size(self.thresholds, set_size)

    def unlike(self, points: np.ndarray, set_size: float) -> np.ndarray:
        """``[n]`` bool: below every theory's threshold for sets of ``set_size`` events."""
        return (self.log_densities(points) < self.thresholds_for(set_size)).all(axis=1)

    def calibrate(self, validation: dict[str, np.ndarray], quantile: float, set_size: int) -> dict[str, float]:
        """Per theory, the log density that ``quantile`` of its own ``validation`` sets (of
        ``set_size`` events) fall below; kept for sets of that size."""
        if not 0 < quantile < 1:
            raise PairhuntError(f"the unlike quantile must be between 0 and 1, got {quantile}")
        thresholds = {
            name: float(np.quantile(self.kernels[k].log_density(np.asarray(validation[name])), quantile))
            for k, name in enumerate(self.classes)
        }
        self.thresholds[int(set_size)] = np.array([thresholds[c] for c in self.classes])
        return thresholds
