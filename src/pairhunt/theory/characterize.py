"""A mass window's events placed on the theory map (``pairhunt characterize``).

The set to characterise is the signal region's events minus an estimate of the background
there: the dijet function fitted to the sidebands (signal region blinded, as the bump hunt's
sideband fit) predicts the background count B in the signal region, and the sideband events
enter the set with negative weights summing to -B, half from each side, so features that change
smoothly with the mass are interpolated into the window. The network pools events by their
weighted mean, so this subtraction is exact in its pooled representation. ``raw=True`` places
the window's events as they are.

Statistical spread: the set is resampled (Poisson bootstrap of every event); the probabilities
reported are averages over the resamples, and the fraction of resamples unlike every theory is
reported beside the flag of the set itself. The set is flagged when it is unlike every theory on
the map (its densities) or in the pooled representation (:mod:`pairhunt.theory.novelty`); both
compare it with library sets of its *effective* size, (Σw)²/Σw², which the subtraction lowers: a
small or heavily subtracted excess scatters more and is judged accordingly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairhunt.bumphunt.fit import fit_dijet
from pairhunt.bumphunt.spectrum import Spectrum
from pairhunt.errors import PairhuntError
from pairhunt.theory.embedding import TheoryMap
from pairhunt.theory.inputs import TheoryEvents

BINS_PER_WINDOW = 5  # mass bins per signal-region width in the sideband fit
BOOTSTRAP_BATCH = 16  # resampled sets drawn at a time
BOOTSTRAP_TRIES = 100  # batches drawn at most: resamples with a non-positive total are skipped


@dataclass(frozen=True)
class WindowSet:
    """The events of the analysis range with their weights in the set (0: not in it)."""

    features: np.ndarray
    weights: np.ndarray
    description: dict


def _sideband_background(mass: np.ndarray, weight: np.ndarray, low: float, high: float, sideband: float) -> float:
    """The background in ``[low, high)`` predicted by a 3-parameter dijet fit to the sidebands."""
    step = (high - low) / BINS_PER_WINDOW
    n_side = max(1, int(round(sideband * BINS_PER_WINDOW)))
    edges = low + step * np.arange(-n_side, BINS_PER_WINDOW + n_side + 1)
    values = np.histogram(mass, bins=edges, weights=weight)[0]
    variances = np.histogram(mass, bins=edges, weights=weight**2)[0]
    fit = fit_dijet(Spectrum(edges, values, variances), 3, blind=(low, high))
    centres = 0.5 * (edges[1:] + edges[:-1])
    return float(fit.expected()[(centres > low) & (centres < high)].sum())


def window_set(events: TheoryEvents, low: float, high: float, sideband: float = 1.0, raw: bool = False) -> WindowSet:
    """The signal region ``[low, high)`` minus its sideband-estimated background (or raw)."""
    if not 0 < low < high:
        raise PairhuntError(f"the window must satisfy 0 < low < high, got [{low}, {high})")
    width = high - low
    in_window = (events.mass >= low) & (events.mass < high)
    below = (events.mass >= low - sideband * width) & (events.mass < low)
    above = (events.mass >= high) & (events.mass < high + sideband * width)
    observed = float(events.weight[in_window].sum())
    if observed <= 0:
        raise PairhuntError(f"no events in the window [{low:g}, {high:g}) GeV")
    weights = np.where(in_window, events.weight, 0.0)
    description = {"window_gev": [low, high], "signal_region_events": int(in_window.sum()), "signal_region_weight": observed}
    if raw:
        return WindowSet(events.features, weights, dict(description, background_subtracted=False))
    try:
        background = _sideband_background(events.mass, events.weight, low, high, sideband)
    except PairhuntError as error:
        raise PairhuntError(f"the sideband fit failed ({error}); place the window's events as they are with --raw") from None
    if observed - background <= 0.05 * observed:
        raise PairhuntError(
            f"the window holds {observed:.1f} (weighted) events and the sidebands predict {background:.1f}: no excess to "
            "characterise; place the window's events as they are with --raw"
        )
    sides = [s for s in (below, above) if events.weight[s].sum() > 0]
    for side in sides:
        weights = np.where(side, -events.weight * background / len(sides) / events.weight[side].sum(), weights)
    description.update(
        background_subtracted=True, sideband_events=int(below.sum() + above.sum()),
        background_estimate=background, signal_estimate=observed - background,
    )
    return WindowSet(events.features, weights, description)


def _bootstrap_weights(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``[n, events]``: Poisson resamples of ``weights`` that keep a positive total."""
    kept = []
    for _ in range(BOOTSTRAP_TRIES):
        batch = weights * rng.poisson(1.0, size=(BOOTSTRAP_BATCH, len(weights)))
        kept.extend(batch[batch.sum(axis=1) > 0])
        if len(kept) >= n:
            return np.array(kept[:n])
    raise PairhuntError(
        f"only {len(kept)} of {BOOTSTRAP_TRIES * BOOTSTRAP_BATCH} resamples of the window kept more signal than subtracted "
        "background: the excess is too weak to characterise"
    )


def effective_events(weights: np.ndarray) -> float:
    """(Σw)² / Σw²: the size of an unweighted set with the same statistical precision (the
    subtracted background counts against it)."""
    return float(weights.sum() ** 2 / (weights**2).sum())


def characterize(theory_map: TheoryMap, window: WindowSet, bootstrap: int = 200, seed: int = 1) -> dict:
    """Where the window's set lands: per theory its probability (mean over the resamples), the
    unlike-every-theory flag of the set (judged against library sets of its effective size) and
    the fraction of resamples flagged; points for the plot."""
    used = window.weights != 0
    features, weights = window.features[used], window.weights[used]
    size = effective_events(weights)
    centre = theory_map.place(features[None], weights[None], size)
    resampled = None
    if bootstrap:
        resamples = _bootstrap_weights(weights, bootstrap, np.random.default_rng(seed))
        resampled = theory_map.place(np.broadcast_to(features, (len(resamples), *features.shape)), resamples, size)
    spread = centre if resampled is None else resampled
    probabilities = spread.probabilities.mean(axis=0)
    order = np.argsort(-probabilities)
    nearest = spread.nearest()
    return {
        **window.description,
        "ranking": [
            {"theory": theory_map.classes[k], "probability": float(probabilities[k]),
             "nearest_in_resamples": float(np.mean(nearest == theory_map.classes[k])),
             "log_density": float(centre.log_densities[0, k]), "threshold": float(theory_map.density.thresholds_for(size)[k]),
             "distance": float(centre.distances[0, k]), "distance_threshold": float(theory_map.novelty.thresholds_for(size)[k])}
            for k in order
        ],
        "effective_events": size,
        "unlike_every_theory": bool(centre.unlike[0]),
        "unlike_on_map": bool(centre.unlike_on_map[0]), "unlike_pooled": bool(centre.unlike_pooled[0]),
        "unlike_fraction_of_resamples": None if resampled is None else float(resampled.unlike.mean()),
        "point": centre.points[0].tolist(),
        "resampled_points": [] if resampled is None else resampled.points.tolist(),
        "bootstrap": bootstrap, "seed": seed,
    }


def write_characterization(result: dict, theory_map: TheoryMap, output: str | Path) -> dict[str, Path]:
    """``map.png`` and ``characterize.json`` (written last: its presence marks a finished job)."""
    from pairhunt.atomic import atomic_path
    from pairhunt.theory.plots import plot_map

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    final = output / "characterize.json"
    final.unlink(missing_ok=True)
    paths = {"map": plot_map(theory_map.contract.library, np.array(result["point"]), np.array(result["resampled_points"]), output / "map.png")}
    with atomic_path(final) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2) + "\n")
    return {**paths, "json": final}
