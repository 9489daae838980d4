"""A binned mass spectrum with weighted bins, in the form the fit and the scan use.

Weighted histograms (generated QCD carries event weights) are handled by effective entries:
a bin with sum of weights ``w`` and sum of squared weights ``w2`` holds ``t = w^2 / w2``
effective unweighted entries at scale ``s = w2 / w``. Poisson statistics apply to ``t``; for
unweighted data ``s = 1`` and ``t`` is the count itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pairhunt.errors import PairhuntError

MIN_BINS = 8  # a 5-parameter fit needs a few degrees of freedom left


@dataclass(frozen=True)
class Spectrum:
    """Bin edges (GeV), sums of weights and sums of squared weights per bin."""

    edges: np.ndarray
    values: np.ndarray
    variances: np.ndarray

    def __post_init__(self):
        if len(self.edges) != len(self.values) + 1 or len(self.values) != len(self.variances):
            raise PairhuntError("spectrum: edges must have one entry more than values and variances")
        if np.any(~np.isfinite(self.values)) or np.any(self.values < 0) or np.any(self.variances < 0):
            raise PairhuntError("spectrum: bin contents must be finite and non-negative")

    @classmethod
    def from_hist(cls, histogram) -> Spectrum:
        """From a 1D ``hist.Hist`` (Weight storage, or plain counts as unweighted)."""
        if histogram.ndim != 1:
            raise PairhuntError(f"spectrum: need a 1D histogram, got {histogram.ndim} axes")
        values = np.asarray(histogram.values(), dtype=np.float64)
        variances = histogram.variances()
        variances = values.copy() if variances is None else np.asarray(variances, dtype=np.float64)
        return cls(np.asarray(histogram.axes[0].edges, dtype=np.float64), values, variances)

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def widths(self) -> np.ndarray:
        return np.diff(self.edges)

    def scale(self) -> np.ndarray:
        """Weight per effective entry, per bin; empty bins take the spectrum's average scale."""
        total = self.values.sum()
        average = self.variances.sum() / total if total > 0 else 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(self.values > 0, self.variances / self.values, average)
        return np.where(scale > 0, scale, average)

    def effective_counts(self) -> np.ndarray:
        return self.values / self.scale()

    def restrict(self, low: float | None, high: float | None) -> Spectrum:
        """The bins whose centres lie in [low, high] (None: open)."""
        centres = self.centres
        keep = np.ones(len(centres), dtype=bool)
        if low is not None:
            keep &= centres >= low
        if high is not None:
            keep &= centres <= high
        if not keep.any():
            raise PairhuntError(f"spectrum: no bin between {low} and {high} GeV")
        first, last = np.flatnonzero(keep)[[0, -1]]
        return Spectrum(self.edges[first : last + 2], self.values[first : last + 1], self.variances[first : last + 1])

    def fit_range(self) -> Spectrum:
        """From the spectrum's maximum (above the selection's turn-on) to its last filled bin."""
        if self.values.sum() <= 0:
            raise PairhuntError("spectrum is empty: nothing to fit")
        start = int(np.argmax(self.values))
        stop = int(np.flatnonzero(self.values > 0)[-1])
        return Spectrum(self.edges[start : stop + 2], self.values[start : stop + 1], self.variances[start : stop + 1])

    def check_fittable(self) -> None:
        if self.values.sum() <= 0:
            raise PairhuntError("spectrum is empty: nothing to fit")
        if len(self.values) < MIN_BINS:
            raise PairhuntError(f"spectrum has {len(self.values)} bins in the fit range; need at least {MIN_BINS}")
