"""Fit the dijet function to a spectrum with iminuit, and pick its number of parameters.

The fit minimises the Poisson deviance of the effective entries (see :mod:`.spectrum`), which
stays correct for bins with few or zero entries. Among 3, 4 and 5 parameters an F-test on the
deviance adds a parameter only when it improves the fit significantly (p < ``alpha``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from iminuit import Minuit
from scipy import stats

from pairhunt.bumphunt.dijet import N_PARAMETERS, SQRT_S, bin_integrals, start_values
from pairhunt.bumphunt.spectrum import Spectrum
from pairhunt.errors import PairhuntError

F_TEST_ALPHA = 0.05


def poisson_deviance(observed: np.ndarray, expected: np.ndarray) -> float:
    """-2 log(L / L_saturated) for independent Poisson bins."""
    expected = np.maximum(expected, 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_term = np.where(observed > 0, observed * np.log(observed / expected), 0.0)
    return float(2.0 * np.sum(expected - observed + log_term))


@dataclass(frozen=True)
class BackgroundFit:
    """A converged dijet fit: parameters, covariance and the predicted bin contents."""

    spectrum: Spectrum
    params: np.ndarray
    covariance: np.ndarray
    deviance: float
    sqrt_s: float = SQRT_S
    fitted: np.ndarray | None = None  # bins the likelihood used (None: all; a blinded fit leaves some out)

    @property
    def n_params(self) -> int:
        return len(self.params)

    @property
    def ndf(self) -> int:
        used = len(self.spectrum.values) if self.fitted is None else int(self.fitted.sum())
        return used - self.n_params

    def expected(self, params: np.ndarray | None = None) -> np.ndarray:
        """Predicted sum of weights per bin."""
        return bin_integrals(self.spectrum.edges, self.params if params is None else params, self.sqrt_s)

    def expected_effective(self) -> np.ndarray:
        return self.expected() / self.spectrum.scale()

    def jacobian(self) -> np.ndarray:
        """d(expected effective entries per bin) / d(parameter), central differences."""
        scale = self.spectrum.scale()
        columns = []
        for k in range(self.n_params):
            step = 1e-4 * max(1.0, abs(self.params[k]))
            up, down = self.params.copy(), self.params.copy()
            up[k] += step
            down[k] -= step
            columns.append((self.expected(up) - self.expected(down)) / (2 * step) / scale)
        return np.stack(columns, axis=1)

    def pulls(self) -> np.ndarray:
        """(observed - expected) / sqrt(variance of the expectation's Poisson), in effective entries."""
        expected = self.expected_effective()
        return (self.spectrum.effective_counts() - expected) / np.sqrt(np.maximum(expected, 1e-9))

    def pseudo_experiment(self, rng: np.random.Generator) -> Spectrum:
        """Poisson counts drawn from the fitted background in every bin, as unweighted effective entries."""
        counts = rng.poisson(self.expected_effective()).astype(np.float64)
        return Spectrum(self.spectrum.edges, counts, counts.copy())

    def pseudo_experiment_start(self) -> np.ndarray:
        """Start values for refitting a pseudo-experiment: these parameters, rescaled to weight 1."""
        start = self.params.copy()
        start[0] -= np.log(self.spectrum.scale().mean())
        return start

    def to_dict(self) -> dict:
        return {
            "n_params": self.n_params,
            "params": [float(p) for p in self.params],
            "param_names": ["log_p0", "p1", "p2", "p3", "p4"][: self.n_params],
            "deviance": self.deviance,
            "ndf": self.ndf,
        }


def fit_dijet(
    spectrum: Spectrum,
    n_params: int,
    start: np.ndarray | None = None,
    sqrt_s: float = SQRT_S,
    blind: tuple[float, float] | None = None,
) -> BackgroundFit:
    """Maximum-likelihood fit of the ``n_params``-parameter dijet function; with ``blind`` =
    (low, high) the bins inside are left out (a sideband fit that predicts a signal region)."""
    if n_params not in N_PARAMETERS:
        raise PairhuntError(f"the dijet function has 3, 4 or 5 parameters, not {n_params}")
    spectrum.check_fittable()
    centres = spectrum.centres
    fitted = None if blind is None else ~((centres > blind[0]) & (centres < blind[1]))
    used = np.ones(len(centres), dtype=bool) if fitted is None else fitted
    if used.sum() <= n_params:
        raise PairhuntError(f"{int(used.sum())} bins cannot constrain {n_params} parameters")
    observed, scale = spectrum.effective_counts(), spectrum.scale()
    if start is None:
        start = start_values(n_params, spectrum.edges, spectrum.values[used].sum() * len(used) / used.sum(), sqrt_s)

    def cost(params: np.ndarray) -> float:
        return poisson_deviance(observed[used], bin_integrals(spectrum.edges, params, sqrt_s)[used] / scale[used])

    minuit = Minuit(cost, np.asarray(start, dtype=np.float64))
    minuit.errordef = Minuit.LEAST_SQUARES  # the deviance is -2 log L
    minuit.strategy = 1
    minuit.migrad(ncall=20_000)
    if not minuit.valid:
        minuit.migrad(ncall=20_000)  # a second descent from where the first stopped
    if not minuit.valid:
        raise PairhuntError(f"the {n_params}-parameter dijet fit did not converge")
    minuit.hesse()
    params = np.array(minuit.values)
    return BackgroundFit(spectrum, params, np.array(minuit.covariance), float(minuit.fval), sqrt_s, fitted)


def f_test(simple: BackgroundFit, extended: BackgroundFit) -> float:
    """p-value that the extra parameter's deviance improvement is chance."""
    if extended.ndf <= 0:
        return 1.0
    improvement = max(simple.deviance - extended.deviance, 0.0) / (extended.n_params - simple.n_params)
    statistic = improvement / max(extended.deviance / extended.ndf, 1e-12)
    return float(stats.f.sf(statistic, extended.n_params - simple.n_params, extended.ndf))


@dataclass(frozen=True)
class FitChoice:
    """All fits tried, the F-test p-values between neighbours, and the chosen fit."""

    fits: list[BackgroundFit]
    p_values: list[float]
    chosen: BackgroundFit

    def to_dict(self) -> dict:
        return {
            "chosen_n_params": self.chosen.n_params,
            "f_test_alpha": F_TEST_ALPHA,
            "fits": [f.to_dict() for f in self.fits],
            "f_test_p_values": {f"{a.n_params}->{b.n_params}": p for a, b, p in zip(self.fits, self.fits[1:], self.p_values)},
        }


def choose_fit(spectrum: Spectrum, n_params: int | None = None, sqrt_s: float = SQRT_S) -> FitChoice:
    """Fit with 3, 4, 5 parameters (each starting from the last) and keep the F-test's choice.

    ``n_params`` forces one function instead.
    """
    if n_params is not None:
        fit = fit_dijet(spectrum, n_params, sqrt_s=sqrt_s)
        return FitChoice([fit], [], fit)
    fits: list[BackgroundFit] = []
    for n in N_PARAMETERS:
        start = None if not fits else np.append(fits[-1].params, 0.0)
        try:
            fits.append(fit_dijet(spectrum, n, start=start, sqrt_s=sqrt_s))
        except PairhuntError:
            if not fits:
                raise
            break
    p_values = [f_test(a, b) for a, b in zip(fits, fits[1:])]
    chosen = fits[0]
    for fit, p in zip(fits[1:], p_values):
        if p >= F_TEST_ALPHA:
            break
        chosen = fit
    return FitChoice(fits, p_values, chosen)
