"""One resonant anomaly search in one window: score the events, cut, and measure what the cut
does to the mass spectrum (sideband-fit significance, bump hunt, sculpting of simulated background)."""

from __future__ import annotations

from dataclasses import dataclass

import hist
import numpy as np

from pairhunt.anomaly.features import mass_correlations
from pairhunt.anomaly.methods import Scores, SearchConfig, cathode, cwola, idealised, supervised
from pairhunt.anomaly.regions import OUTSIDE, SIDEBAND, SIGNAL_REGION, Window
from pairhunt.anomaly.sample import AnomalySample
from pairhunt.anomaly.significance import keep_threshold, sculpting, sideband_significance, spectrum_of
from pairhunt.bumphunt import BumpHunt, bump_hunt
from pairhunt.errors import PairhuntError


@dataclass(frozen=True)
class Cut:
    keep: float
    threshold: float
    passed: np.ndarray  # per data event
    significance: dict
    hunt: BumpHunt | None
    sculpting: dict | None


def score_events(
    method: str, data: AnomalySample, window: Window, config: SearchConfig,
    reference: AnomalySample | None = None, signal: AnomalySample | None = None, also: AnomalySample | None = None,
) -> Scores:
    """The scores of ``method``; ``reference`` (simulated background) is needed by the idealised and
    supervised classifiers, ``signal`` by the supervised one."""
    if method == "cwola":
        return cwola(data, window, config, also)
    if method == "cathode":
        return cathode(data, window, config, also)[0]
    if reference is None:
        raise PairhuntError(f"--method {method} needs a simulated background (--reference)")
    if method == "idealised":
        return idealised(data, reference, window, config, also)
    if signal is None:
        raise PairhuntError("--method supervised needs a simulated signal (--signal)")
    return supervised(data, signal, reference, window, config, also)


def passing(data: AnomalySample, scores: Scores, window: Window, keep: float) -> tuple[float, np.ndarray]:
    """The score threshold that keeps the fraction ``keep`` of the analysis range's data, and
    which data events pass it."""
    roles = window.roles(data.mass)
    threshold = keep_threshold(np.nan_to_num(scores.data, nan=-np.inf), roles, data.weight, keep)
    return threshold, (roles != OUTSIDE) & (np.nan_to_num(scores.data, nan=-np.inf) >= threshold)


def apply_cut(
    data: AnomalySample, scores: Scores, window: Window, keep: float, background: AnomalySample | None,
    pseudo_experiments: int, seed: int, resolution: float, toys: int = 0,
) -> Cut:
    """Keep the fraction ``keep`` of the analysis range's data with the highest scores; the
    sideband fit's p-value also from ``toys`` pseudo-datasets when > 0."""
    threshold, passed = passing(data, scores, window, keep)
    try:
        significance = sideband_significance(data.mass[passed], data.weight[passed], window, toys=toys, seed=seed)
    except PairhuntError as error:  # too few events after the cut to fit the sidebands
        significance = {"error": str(error)}
    spectrum = spectrum_of(data.mass[passed], data.weight[passed], window.edges())
    try:
        hunt = bump_hunt(spectrum, resolution, fit_range=window.range, pseudo_experiments=pseudo_experiments, seed=seed)
    except PairhuntError:
        hunt = None  # too few events after the cut for a fit over the whole range
    shape = None
    if background is not None:
        kept = np.nan_to_num(scores.also, nan=-np.inf) >= threshold
        inside = window.roles(background.mass) != OUTSIDE
        shape = sculpting(background.mass[inside], background.weight[inside], kept[inside], window.edges())
    return Cut(keep, threshold, passed, significance, hunt, shape)


def mass_histogram(data: AnomalySample, window: Window, cuts: list[Cut]) -> hist.Hist:
    """The data's mass in the analysis range, before and after every cut."""
    h = hist.Hist(
        hist.axis.StrCategory([], name="selection", growth=True),
        hist.axis.Variable(window.edges(), name="mass", label="Average parent mass [GeV]"),
        storage=hist.storage.Weight(),
    )
    inside = window.roles(data.mass) != OUTSIDE
    h.fill(selection="all", mass=data.mass[inside], weight=data.weight[inside])
    for cut in cuts:
        h.fill(selection=f"keep_{cut.keep:g}", mass=data.mass[cut.passed], weight=data.weight[cut.passed])
    return h


def score_histogram(data: AnomalySample, window: Window, scores: Scores) -> hist.Hist:
    """The data's scores in the signal region and in the sidebands."""
    roles = window.roles(data.mass)
    h = hist.Hist(
        hist.axis.StrCategory(["sideband", "signal_region"], name="selection"),
        hist.axis.Regular(50, 0.0, 1.0, name="score", label="Anomaly score"),
        storage=hist.storage.Weight(),
    )
    for role, name in ((SIDEBAND, "sideband"), (SIGNAL_REGION, "signal_region")):
        chosen = roles == role
        h.fill(selection=name, score=scores.data[chosen], weight=data.weight[chosen])
    return h


def describe(data: AnomalySample, window: Window) -> dict:
    """Counts per role and each feature's correlation with the mass in the analysis range."""
    roles = window.roles(data.mass)
    inside = roles != OUTSIDE
    return {
        "events": {"total": len(data), "sidebands": int((roles == SIDEBAND).sum()), "signal_region": int((roles == SIGNAL_REGION).sum())},
        "mass_correlations": mass_correlations(data.mass[inside], data.features[inside], data.weight[inside], list(data.names)),
    }
