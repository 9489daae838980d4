"""Features made independent of the mass on the sidebands before any classifier sees them.

A resonant method must not learn the mass from the features: CWoLa would learn the signal
region's mass through any feature that follows it, and CATHODE's classifier learns every way in
which the flow interpolates p(x | m) into the signal region less steeply than the data do, which
makes a bump of background (measured: benchmarks/anomaly_injection.py, docs/anomaly.md). Each
feature is replaced by its conditional quantile given the mass, Φ⁻¹(F(x | m)), with F measured
in mass bins of the sidebands and each quantile level fitted linearly in log m across them: a
smooth trend, interpolated through the signal region, as the sideband fit assumes for the mass
spectrum itself.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

MASS_BINS = 8
LEVELS = np.linspace(0.0, 1.0, 101)


def weighted_quantiles(values: np.ndarray, weight: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of ``values`` (along axis 0) at ``levels``, with event weights."""
    order = np.argsort(values)
    cumulative = np.cumsum(weight[order])
    cumulative = (cumulative - 0.5 * weight[order]) / cumulative[-1]
    return np.interp(levels, cumulative, values[order])


class MassDecorrelation:
    """x → Φ⁻¹(F(x | m)) per feature, F from the sidebands' quantiles linear in log m."""

    def __init__(self, x: np.ndarray, mass: np.ndarray, weight: np.ndarray, rng: np.random.Generator):
        self.discrete = np.all(x == np.round(x), axis=0)
        x = self._dequantised(x, rng)
        log_mass = np.log(mass)
        edges = weighted_quantiles(log_mass, weight, np.linspace(0, 1, MASS_BINS + 1))
        bins = np.clip(np.searchsorted(edges, log_mass, side="right") - 1, 0, MASS_BINS - 1)
        centres, nodes, totals = [], [], []
        for b in range(MASS_BINS):
            chosen = bins == b
            if weight[chosen].sum() <= 0:
                continue
            centres.append(np.average(log_mass[chosen], weights=weight[chosen]))
            totals.append(weight[chosen].sum())
            nodes.append(np.stack([weighted_quantiles(x[chosen, k], weight[chosen], LEVELS) for k in range(x.shape[1])], axis=1))
        design = np.column_stack([np.ones(len(centres)), np.asarray(centres)])
        root = np.sqrt(np.asarray(totals) / np.sum(totals))[:, None]
        targets = np.stack(nodes).reshape(len(centres), -1)  # [bins, levels * features]
        coefficients, *_ = np.linalg.lstsq(design * root, targets * root, rcond=None)
        self.coefficients = coefficients.reshape(2, len(LEVELS), x.shape[1])

    def _dequantised(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.where(self.discrete, x + rng.random(x.shape), x)

    def transform(self, x: np.ndarray, mass: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The decorrelated features of events at ``mass`` (standard normal per feature and mass)."""
        x = self._dequantised(x, rng)
        log_mass = np.log(mass)
        out = np.empty_like(x, dtype=np.float64)
        tail = 0.5 / len(LEVELS)
        for k in range(x.shape[1]):
            nodes = self.coefficients[0, :, k][None, :] + self.coefficients[1, :, k][None, :] * log_mass[:, None]
            nodes = np.maximum.accumulate(nodes, axis=1)  # quantiles never decrease with the level
            above = (nodes <= x[:, k, None]).sum(axis=1)
            upper = np.clip(above, 1, len(LEVELS) - 1)
            low, high = np.take_along_axis(nodes, upper[:, None] - 1, 1)[:, 0], np.take_along_axis(nodes, upper[:, None], 1)[:, 0]
            with np.errstate(invalid="ignore", divide="ignore"):
                step = np.where(high > low, (x[:, k] - low) / (high - low), 0.5)
            level = LEVELS[upper - 1] + np.clip(step, 0.0, 1.0) * (LEVELS[1] - LEVELS[0])
            out[:, k] = stats.norm.ppf(np.clip(level, tail, 1 - tail))
        return out
