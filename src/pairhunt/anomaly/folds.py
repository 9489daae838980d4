"""k-fold splits: every event is scored by models that never trained on it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pairhunt.errors import PairhuntError


def assign_folds(n_events: int, k: int, seed: int) -> np.ndarray:
    """Fold index (0..k-1) per event, balanced and shuffled by ``seed``."""
    if k < 2:
        raise PairhuntError(f"k-fold needs k >= 2, got {k}")
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n_events) % k)


def fold_splits(folds: np.ndarray, k: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(fold, train, test)`` boolean masks per fold: a model trains on ``train`` and scores ``test``."""
    for fold in range(k):
        test = folds == fold
        yield fold, ~test, test
