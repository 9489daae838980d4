"""k-fold splits: every event is scored by models that never trained on it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pairhunt.errors import PairhuntError


def assign_folds(n_events: int, k: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Fold index (0..k-1) per event, balanced and shuffled by ``seed``.

    ``groups`` (one id per row) keeps rows of one event together: pseudo-data drawn with
    replacement holds some events twice, and a copy in a training fold would let its model score
    the other copy. Rows that are all distinct events get the folds they would get without.
    """
    if k < 2:
        raise PairhuntError(f"k-fold needs k >= 2, got {k}")
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.permutation(np.arange(n_events) % k)
    distinct, row_group = np.unique(groups, return_inverse=True)
    return rng.permutation(np.arange(len(distinct)) % k)[row_group]


def fold_splits(folds: np.ndarray, k: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(fold, train, test)`` boolean masks per fold: a model trains on ``train`` and scores ``test``."""
    for fold in range(k):
        test = folds == fold
        yield fold, ~test, test
