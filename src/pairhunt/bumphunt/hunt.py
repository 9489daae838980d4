"""The bump hunt of one spectrum: choose the background fit, scan, correct for the look-elsewhere
effect; and the signal-injection test that checks the chain recovers a known bump."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pairhunt.bumphunt.dijet import SQRT_S
from pairhunt.bumphunt.fit import FitChoice, choose_fit
from pairhunt.bumphunt.scan import WIDTHS, GlobalSignificance, ScanResult, global_significance, scan
from pairhunt.bumphunt.spectrum import Spectrum
from pairhunt.errors import PairhuntError

DEFAULT_RESOLUTION = 0.1  # sigma_m / m


@dataclass(frozen=True)
class BumpHunt:
    """Result of :func:`bump_hunt`."""

    fit: FitChoice
    scan: ScanResult
    global_: GlobalSignificance | None
    resolution: float

    def to_dict(self) -> dict:
        spectrum = self.fit.chosen.spectrum
        return {
            "fit_range_gev": [float(spectrum.edges[0]), float(spectrum.edges[-1])],
            "bins": len(spectrum.values),
            "effective_entries": float(spectrum.effective_counts().sum()),
            "resolution": self.resolution,
            "window_half_widths_in_resolution": list(WIDTHS),
            "background_fit": self.fit.to_dict(),
            "most_significant_window": self.scan.best_window(),
            "global": None if self.global_ is None else self.global_.to_dict(),
        }


def bump_hunt(
    spectrum: Spectrum,
    resolution: float = DEFAULT_RESOLUTION,
    fit_range: tuple[float | None, float | None] | None = None,
    n_params: int | None = None,
    pseudo_experiments: int = 200,
    seed: int = 1,
    sqrt_s: float = SQRT_S,
    progress: bool = False,
) -> BumpHunt:
    """Fit, scan and (with ``pseudo_experiments`` > 0) the global significance.

    Without ``fit_range`` the fit starts at the spectrum's maximum, above the turn-on that the
    event selection imprints, and ends at its last filled bin.
    """
    fitted = spectrum.fit_range() if fit_range is None else spectrum.restrict(*fit_range)
    choice = choose_fit(fitted, n_params, sqrt_s)
    result = scan(choice.chosen, resolution)
    global_ = None
    if pseudo_experiments > 0:
        global_ = global_significance(
            choice.chosen, float(result.significances.max()), resolution, pseudo_experiments, seed, progress=progress
        )
    return BumpHunt(choice, result, global_, resolution)


def inject(background: Spectrum, signal: Spectrum, strength: float, counts: bool = False) -> Spectrum:
    """``background + strength * signal`` (same binning).

    Weighted templates (``counts=False``): the strength scales the signal's weights, so its
    variances scale as strength squared. Expected event counts (``counts=True``, pseudo-data): the
    strength scales the number of events, and the sum is counts again (variance = value).
    """
    if background.edges.shape != signal.edges.shape or not np.allclose(background.edges, signal.edges):
        raise PairhuntError("background and signal spectra must share their binning")
    values = background.values + strength * signal.values
    variances = values.copy() if counts else background.variances + strength**2 * signal.variances
    return Spectrum(background.edges, values, variances)


def injection_test(
    background: Spectrum,
    signal: Spectrum,
    strengths: list[float],
    resolution: float = DEFAULT_RESOLUTION,
    fit_range: tuple[float | None, float | None] | None = None,
    counts: bool = False,
) -> list[dict]:
    """Recovered window and local significance for each injected signal strength.

    The fit range is fixed by the background alone, so a strong signal cannot move it.
    ``counts``: both spectra are expected event counts (see :func:`inject`).
    """
    fitted = background.fit_range() if fit_range is None else background.restrict(*fit_range)
    low, high = float(fitted.edges[0]), float(fitted.edges[-1])
    rows = []
    for strength in strengths:
        data = inject(background, signal, strength, counts)
        hunt = bump_hunt(data, resolution, fit_range=(low, high), pseudo_experiments=0)
        injected = data.restrict(low, high)
        signal_in_range = signal.restrict(low, high)
        rows.append(
            {
                "strength": strength,
                "injected_signal_sum": float(strength * signal_in_range.values.sum()),
                "injected_signal_peak_gev": float(signal_in_range.centres[np.argmax(signal_in_range.values)]),
                "effective_entries": float(injected.effective_counts().sum()),
                "n_params": hunt.fit.chosen.n_params,
                **{k: v for k, v in hunt.scan.best_window().items() if k in ("low_gev", "high_gev", "centre_gev", "local_significance")},
            }
        )
    return rows
