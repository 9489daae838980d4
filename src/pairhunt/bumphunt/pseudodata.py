"""Pseudo-data events from a weighted simulated template, every event at most once.

Hit-or-miss: each template event is kept with probability w · N / Σw, so the kept events follow
the weighted template with a Poisson-like count of mean N. Drawing N events *with replacement*
instead repeats events, and an event drawn twice passes every cut twice: the counts a fit treats
as Poisson then scatter more than Poisson, and background alone looks like excesses (measured on
the demo: docs/bumphunt.md).
"""

from __future__ import annotations

import numpy as np

from pairhunt.errors import PairhuntError


def keep_by_weight(weight: np.ndarray, mean: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the template events kept for one set of pseudo-data of ``mean`` events on
    average; refused when an event would need a probability above 1 (the template is too small)."""
    weight = np.asarray(weight, dtype=np.float64)
    probability = weight * mean / weight.sum()
    if probability.max() > 1:
        raise PairhuntError(f"the weighted template gives at most {weight.sum() / weight.max():.0f} distinct events by weight, {mean:g} asked")
    return np.flatnonzero(rng.random(len(weight)) < probability)
