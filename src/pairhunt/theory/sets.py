"""Sets of events from one theory: drawn by weight for training, disjoint for testing.

Training sees an endless supply of sets, each of ``set_size`` events drawn with probability
proportional to their generator weight (QCD is weighted), with replacement. A test set must not
share events with another, or set-level accuracies would be correlated: the events are first
unweighted by hit-or-miss (each kept with probability weight / max weight), then dealt into
full sets.
"""

from __future__ import annotations

import numpy as np

from pairhunt.errors import PairhuntError


def draw_sets(weight: np.ndarray, set_size: int, n_sets: int, rng: np.random.Generator) -> np.ndarray:
    """``[n_sets, set_size]`` event indices drawn by weight, with replacement."""
    weight = np.asarray(weight, dtype=np.float64)
    if len(weight) == 0 or weight.sum() <= 0:
        raise PairhuntError("no events with positive weight to draw sets from")
    return rng.choice(len(weight), size=(n_sets, set_size), p=weight / weight.sum())


def disjoint_sets(weight: np.ndarray, set_size: int, rng: np.random.Generator) -> np.ndarray:
    """``[sets, set_size]`` event indices, no event in two sets, distributed as the weighted events."""
    weight = np.asarray(weight, dtype=np.float64)
    kept = np.flatnonzero(rng.random(len(weight)) * weight.max() < weight) if len(weight) else np.array([], dtype=int)
    kept = rng.permutation(kept)
    n_sets = len(kept) // set_size
    return kept[: n_sets * set_size].reshape(n_sets, set_size)
