"""Sliding-window scan for local excesses over the fitted background, and the look-elsewhere
effect from background-only pseudo-experiments.

Windows are centred on every bin, with half-widths of ``k`` times the mass resolution at that
mass (``resolution`` is relative: sigma_m / m). In each window the local p-value is the
probability of at least the observed effective entries from a Poisson mean that is itself
uncertain by the fit's error (Gaussian, averaged with Gauss-Hermite quadrature). Only excesses
count. The global p-value is the fraction of pseudo-experiments (Poisson draws of the fitted
background, refitted and rescanned) whose most significant window is at least as significant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.progress import track
from scipy import special, stats

from pairhunt.bumphunt.fit import BackgroundFit, fit_dijet
from pairhunt.bumphunt.spectrum import Spectrum
from pairhunt.errors import PairhuntError

WIDTHS = (1.0, 2.0)  # window half-widths in units of the mass resolution
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def windows(spectrum: Spectrum, resolution: float, widths: tuple[float, ...] = WIDTHS) -> np.ndarray:
    """``[windows, 2]`` first and last bin of every (centre, width) window, duplicates removed."""
    if resolution <= 0:
        raise PairhuntError(f"the mass resolution must be positive, got {resolution}")
    centres = spectrum.centres
    rows = set()
    for k in widths:
        half = k * resolution * centres
        first = np.searchsorted(centres, centres - half, side="left")
        last = np.searchsorted(centres, centres + half, side="right") - 1
        rows.update(zip(first.tolist(), last.tolist()))
    return np.array(sorted(rows), dtype=np.int64).reshape(-1, 2)


def window_sums(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (bins along the first axis) over every window."""
    cumulative = np.concatenate([np.zeros_like(values[:1]), np.cumsum(values, axis=0)])
    return cumulative[rows[:, 1] + 1] - cumulative[rows[:, 0]]


def excess_p_value(observed: np.ndarray, expected: np.ndarray, uncertainty: np.ndarray) -> np.ndarray:
    """P(N >= observed) for a Poisson mean ~ Normal(expected, uncertainty) truncated at zero.

    ``observed`` may be non-integer (effective entries): P(N >= n | b) = P(n, b), the regularised
    lower incomplete gamma function. Deficits get p = 1.
    """
    means = np.maximum(expected[:, None] + uncertainty[:, None] * _NODES[None, :], 1e-12)
    tail = special.gammainc(np.maximum(observed, 1e-12)[:, None], means)
    p = (tail * _WEIGHTS[None, :]).sum(axis=1)
    return np.where(observed > expected, np.clip(p, 1e-300, 1.0), 1.0)


def significance(p_value: np.ndarray | float) -> np.ndarray:
    """One-sided Gaussian significance of a p-value (0 for p >= 0.5)."""
    return np.maximum(stats.norm.isf(np.clip(p_value, 1e-300, 1.0)), 0.0)


@dataclass(frozen=True)
class ScanResult:
    """Every window's observed and expected effective entries, p-value and significance."""

    spectrum: Spectrum
    windows: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    uncertainty: np.ndarray
    p_values: np.ndarray

    @property
    def significances(self) -> np.ndarray:
        return significance(self.p_values)

    @property
    def best(self) -> int:
        return int(np.argmin(self.p_values))

    def window_range(self, index: int) -> tuple[float, float]:
        first, last = self.windows[index]
        return float(self.spectrum.edges[first]), float(self.spectrum.edges[last + 1])

    def best_window(self) -> dict:
        i = self.best
        low, high = self.window_range(i)
        return {
            "low_gev": low,
            "high_gev": high,
            "centre_gev": 0.5 * (low + high),
            "observed_effective": float(self.observed[i]),
            "expected_effective": float(self.expected[i]),
            "expected_uncertainty": float(self.uncertainty[i]),
            "local_p_value": float(self.p_values[i]),
            "local_significance": float(significance(self.p_values[i])),
        }


def scan(fit: BackgroundFit, resolution: float, widths: tuple[float, ...] = WIDTHS) -> ScanResult:
    """Local p-values of all windows of the fitted spectrum."""
    spectrum = fit.spectrum
    rows = windows(spectrum, resolution, widths)
    observed = window_sums(spectrum.effective_counts(), rows)
    expected = window_sums(fit.expected_effective(), rows)
    window_jacobian = window_sums(fit.jacobian(), rows)
    variance = np.einsum("wi,ij,wj->w", window_jacobian, fit.covariance, window_jacobian)
    uncertainty = np.sqrt(np.maximum(variance, 0.0))
    return ScanResult(spectrum, rows, observed, expected, uncertainty, excess_p_value(observed, expected, uncertainty))


@dataclass(frozen=True)
class GlobalSignificance:
    """Look-elsewhere correction from background-only pseudo-experiments."""

    pseudo_experiments: int
    failed_fits: int
    max_local_significances: np.ndarray
    observed: float

    @property
    def p_value(self) -> float:
        """Fraction at least as significant; 0 means below 1 / pseudo_experiments."""
        return float((self.max_local_significances >= self.observed).mean())

    @property
    def significance(self) -> float:
        bound = 1.0 / (len(self.max_local_significances) + 1)
        return float(significance(max(self.p_value, bound)))

    def to_dict(self) -> dict:
        return {
            "pseudo_experiments": self.pseudo_experiments,
            "failed_fits": self.failed_fits,
            "global_p_value": self.p_value,
            "global_significance": self.significance,
            "p_value_is_upper_bound": self.p_value == 0.0,
        }


def global_significance(
    fit: BackgroundFit,
    observed_max: float,
    resolution: float,
    pseudo_experiments: int = 200,
    seed: int = 1,
    widths: tuple[float, ...] = WIDTHS,
    progress: bool = False,
) -> GlobalSignificance:
    """Draw the fitted background (effective entries) ``pseudo_experiments`` times, refit, rescan."""
    rng = np.random.default_rng(seed)
    start = fit.pseudo_experiment_start()
    maxima, failed = [], 0
    for _ in track(range(pseudo_experiments), description="pseudo-experiments", disable=not progress):
        pseudo = fit.pseudo_experiment(rng)
        try:
            pseudo_fit = fit_dijet(pseudo, fit.n_params, start=start, sqrt_s=fit.sqrt_s)
        except PairhuntError:
            failed += 1
            continue
        maxima.append(scan(pseudo_fit, resolution, widths).significances.max())
    if not maxima:
        raise PairhuntError("no pseudo-experiment fit converged; the global significance is unknown")
    return GlobalSignificance(pseudo_experiments, failed, np.array(maxima), observed_max)
