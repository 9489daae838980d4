"""What a cut on an anomaly score buys: the sideband-fit significance in the signal region, the
significance-improvement curve, and the sculpting check on background."""

from __future__ import annotations

import numpy as np

from pairhunt.anomaly.regions import OUTSIDE, Window
from pairhunt.bumphunt.fit import fit_dijet
from pairhunt.bumphunt.scan import excess_p_value, significance
from pairhunt.bumphunt.spectrum import Spectrum
from pairhunt.errors import PairhuntError


def keep_threshold(scores: np.ndarray, roles: np.ndarray, weight: np.ndarray, keep: float) -> float:
    """The score above which a (weighted) fraction ``keep`` of the analysis range's events lie."""
    if not 0 < keep <= 1:
        raise PairhuntError(f"the kept fraction must be in (0, 1], got {keep}")
    inside = roles != OUTSIDE
    order = np.argsort(scores[inside])[::-1]
    cumulative = np.cumsum(weight[inside][order]) / weight[inside].sum()
    return float(scores[inside][order][min(np.searchsorted(cumulative, keep), len(order) - 1)])


def spectrum_of(mass: np.ndarray, weight: np.ndarray, edges: np.ndarray) -> Spectrum:
    values, _ = np.histogram(mass, bins=edges, weights=weight)
    variances, _ = np.histogram(mass, bins=edges, weights=weight**2)
    return Spectrum(edges, values, variances)


def _signal_region_test(spectrum: Spectrum, window: Window, n_params: int, start: np.ndarray | None = None):
    """The blinded sideband fit, and the signal region's observed count, prediction, its
    linearised uncertainty and the asymptotic p-value of the excess."""
    fit = fit_dijet(spectrum, n_params, start=start, blind=(window.low, window.high))
    region = ~fit.fitted
    gradient = fit.jacobian()[region].sum(axis=0)
    expected = float(fit.expected_effective()[region].sum())
    uncertainty = float(np.sqrt(max(gradient @ fit.covariance @ gradient, 0.0)))
    observed = float(spectrum.effective_counts()[region].sum())
    p_value = float(excess_p_value(np.array([observed]), np.array([expected]), np.array([uncertainty]))[0])
    return fit, observed, expected, uncertainty, p_value


def sideband_significance(
    mass: np.ndarray, weight: np.ndarray, window: Window, n_params: int = 3, bins_per_region: int = 5,
    toys: int = 0, seed: int = 1,
) -> dict:
    """Fit the dijet function to the sidebands of the events given, predict the signal region,
    and the local significance of what it holds beyond the prediction (fit uncertainty included).

    The asymptotic significance trusts the fit's linearised uncertainty; where few events are
    left, above all in the upper sideband, the prediction scatters more and the asymptotic Z
    over-states (docs/benchmarks.md). With ``toys`` > 0 the p-value is also computed from
    pseudo-data drawn from the sideband fit in every bin (effective entries) and fitted the same
    way: the fraction whose asymptotic p-value is at least as small as the data's."""
    spectrum = spectrum_of(mass, weight, window.edges(bins_per_region))
    fit, observed, expected, uncertainty, p_value = _signal_region_test(spectrum, window, n_params)
    result = {
        "observed": observed,
        "expected": expected,
        "expected_uncertainty": uncertainty,
        "p_value": p_value,
        "local_significance": float(significance(p_value)),
        "sideband_deviance": fit.deviance,
        "sideband_ndf": fit.ndf,
    }
    if toys > 0:
        result.update(_toy_p_value(fit, window, n_params, p_value, toys, seed))
    return result


def _toy_p_value(fit, window: Window, n_params: int, p_value: float, toys: int, seed: int) -> dict:
    """P(asymptotic p <= the data's) on pseudo-data from the sideband fit; (k + 1) / (n + 1), so
    it never reads 0 (with n toys the significance is resolved up to about Φ⁻¹(1 − 1/n))."""
    rng = np.random.default_rng(seed)
    start = fit.pseudo_experiment_start()
    as_small, failed = 0, 0
    for _ in range(toys):
        try:
            toy_p = _signal_region_test(fit.pseudo_experiment(rng), window, n_params, start)[-1]
        except PairhuntError:
            failed += 1
            continue
        as_small += toy_p <= p_value
    done = toys - failed
    if done == 0:
        raise PairhuntError("no pseudo-data fit converged; the toy p-value is unknown")
    toy_p_value = (as_small + 1) / (done + 1)
    return {
        "toys": done, "toys_failed": failed, "p_value_toys": toy_p_value, "local_significance_toys": float(significance(toy_p_value)),
        "toys_lower_bound": as_small == 0,  # no toy was as extreme: the data's Z is at least this
    }


def sic_curve(
    scores: np.ndarray, is_signal: np.ndarray, weight: np.ndarray, points: int = 200
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal efficiency, background efficiency and SIC = ε_S / √ε_B at thresholds spread over the
    background's score quantiles (events given: those of the signal region)."""
    background = ~is_signal
    levels = np.quantile(scores[background], np.linspace(0.0, 1.0, points, endpoint=False))
    passes = scores[None, :] >= levels[:, None]
    eps_s = (passes[:, is_signal] * weight[is_signal]).sum(axis=1) / weight[is_signal].sum()
    eps_b = (passes[:, background] * weight[background]).sum(axis=1) / weight[background].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        sic = np.where(eps_b > 0, eps_s / np.sqrt(eps_b), np.nan)
    return eps_s, eps_b, sic


def max_sic(eps_s: np.ndarray, eps_b: np.ndarray, sic: np.ndarray, min_background: float) -> float:
    """The largest SIC where ε_B still leaves ``min_background`` (a fraction) of the background:
    below, the curve measures the statistics of a handful of events."""
    usable = eps_b >= min_background
    return float(np.nanmax(sic[usable])) if usable.any() else float("nan")


def sculpting(mass: np.ndarray, weight: np.ndarray, passed: np.ndarray, edges: np.ndarray) -> dict:
    """Background mass shape after the cut over before, per bin, normalised to the overall
    efficiency, with binomial errors from effective counts, and χ² against flat."""
    before = spectrum_of(mass, weight, edges)
    after = spectrum_of(mass[passed], weight[passed], edges)
    efficiency = after.values.sum() / before.values.sum()
    effective = before.effective_counts()
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(before.values > 0, after.values / before.values, np.nan)
        error = np.sqrt(fraction * (1 - fraction) / effective)
        ratio = fraction / efficiency
        pull = (fraction - efficiency) / np.sqrt(efficiency * (1 - efficiency) / effective)
    usable = effective * min(efficiency, 1 - efficiency) >= 5
    return {
        "edges": edges.tolist(),
        "efficiency": float(efficiency),
        "ratio": ratio.tolist(),
        "ratio_error": (error / efficiency).tolist(),
        "chi2": float(np.nansum(pull[usable] ** 2)),
        "ndf": int(usable.sum()),
    }
