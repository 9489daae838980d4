"""CWoLa hunting's sliding signal regions: the search repeated in every window of a scan, each
window with its own classifiers, and how much the most significant window means once the
scan's other windows are counted.

The resonance's mass is not known in advance, so CWoLa hunting (arXiv:1902.02634) slides the
signal region across the spectrum; each window's local significance is that of its signal
region over the sideband fit after the cut. Taking the best of N windows needs a look-elsewhere
correction: here the Bonferroni bound, p_global ≤ N · p_min, conservative because neighbouring
windows share events (pseudo-experiments of the whole scan would retrain every window's
classifiers per experiment).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pairhunt.anomaly.methods import SearchConfig
from pairhunt.anomaly.regions import OUTSIDE, SIDEBAND, SIGNAL_REGION, Window
from pairhunt.anomaly.sample import AnomalySample
from pairhunt.anomaly.search import passing, score_events
from pairhunt.anomaly.significance import sideband_significance
from pairhunt.bumphunt.scan import significance
from pairhunt.errors import PairhuntError


@dataclass(frozen=True)
class WindowSearch:
    """One window of a scan: its events, the sideband-fit significance of the signal region
    without a cut and after the cut (or why a fit or the classifiers were impossible)."""

    window: Window
    events: dict[str, int]
    plain: dict
    cut: dict

    def local_significance(self) -> float:
        """After the cut, from toys where they were run; NaN where it could not be measured."""
        return self.cut.get("local_significance_toys", self.cut.get("local_significance", float("nan")))

    def to_dict(self) -> dict:
        return {**self.window.to_dict(), "events": self.events, "no_cut": self.plain, "cut": self.cut}


def _fit(mass: np.ndarray, weight: np.ndarray, window: Window, toys: int, seed: int) -> dict:
    try:
        return sideband_significance(mass, weight, window, toys=toys, seed=seed)
    except PairhuntError as error:  # too few events to fit the sidebands
        return {"error": str(error)}


def search_window(
    method: str, data: AnomalySample, window: Window, config: SearchConfig, keep: float,
    reference: AnomalySample | None = None, signal: AnomalySample | None = None, toys: int = 0,
) -> WindowSearch:
    """Train the window's classifiers, cut keeping the fraction ``keep`` of its analysis range,
    and measure the signal region against the sideband fit before and after (p-values also from
    ``toys`` pseudo-datasets when > 0)."""
    roles = window.roles(data.mass)
    inside = roles != OUTSIDE
    events = {"signal_region": int((roles == SIGNAL_REGION).sum()), "sidebands": int((roles == SIDEBAND).sum())}
    plain = _fit(data.mass[inside], data.weight[inside], window, toys, config.seed)
    try:
        scores = score_events(method, data, window, config, reference, signal)
    except PairhuntError as error:  # too few events for the classifiers
        return WindowSearch(window, events, plain, {"error": str(error)})
    threshold, passed = passing(data, scores, window, keep)
    cut = _fit(data.mass[passed], data.weight[passed], window, toys, config.seed)
    return WindowSearch(window, events, plain, {"keep": keep, "threshold": threshold, **cut})


def scan_windows(
    method: str, data: AnomalySample, windows: list[Window], config: SearchConfig, keep: float,
    reference: AnomalySample | None = None, signal: AnomalySample | None = None,
    progress: Callable[[Window], None] | None = None, toys: int = 0,
) -> list[WindowSearch]:
    """:func:`search_window` in every window; ``progress`` is told each window before its search."""
    if not windows:
        raise PairhuntError("the scan has no window: widen the mass range or narrow the windows")
    results = []
    for window in windows:
        if progress is not None:
            progress(window)
        results.append(search_window(method, data, window, config, keep, reference, signal, toys))
    return results


def look_elsewhere(results: list[WindowSearch]) -> dict:
    """The most significant window after the cut and its Bonferroni-bounded global significance
    (from the toys' p-values where they were run)."""
    measured = [r for r in results if np.isfinite(r.local_significance())]
    if not measured:
        return {"windows": len(results), "error": "no window could be measured"}
    best = max(measured, key=WindowSearch.local_significance)
    p_global = min(1.0, len(results) * best.cut.get("p_value_toys", best.cut["p_value"]))
    return {
        "windows": len(results),
        "best": best.to_dict(),
        "global_p_value_bound": p_global,
        "global_significance_bound": float(significance(p_global)),
    }
