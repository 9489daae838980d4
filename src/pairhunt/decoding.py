"""Decode a valid joint assignment from per-parent tuple scores, vectorised over events.

Greedy by confidence, as SPANet does: the parent whose best tuple has the highest score takes
it; its jets are removed for the other parents; repeat. A parent with no tuple of free, real
and distinct jets left gets -1 in every slot: a jet is never used twice.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def tuple_table(n_jets: int, k: int) -> np.ndarray:
    """``[n_jets**k, k]``: the jet indices of each entry of a flattened ``[N]*k`` score tensor."""
    return np.stack(np.unravel_index(np.arange(n_jets**k), (n_jets,) * k), axis=1)


def _valid_tuples(table: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``[events, tuples]``: all jets real and pairwise distinct."""
    real = mask[:, table].all(axis=2)
    distinct = np.ones(len(table), dtype=bool)
    for a in range(table.shape[1]):
        for b in range(a + 1, table.shape[1]):
            distinct &= table[:, a] != table[:, b]
    return real & distinct[None, :]


def decode_greedy(scores: list[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """``[events, parents, max k]`` jet index per product slot (-1 when empty).

    ``scores[p]`` has shape ``[events] + [N] * k_p`` (any k; log-probabilities or logits),
    ``mask`` is ``[events, N]`` (True for real jets).
    """
    n_events, n_jets = mask.shape
    n_parents = len(scores)
    ks = [s.ndim - 1 for s in scores]
    tables = [tuple_table(n_jets, k) for k in ks]
    flat = [np.where(_valid_tuples(t, mask), s.reshape(n_events, -1), -np.inf) for s, t in zip(scores, tables)]
    slots = np.full((n_events, n_parents, max(ks)), -1, dtype=np.int64)
    used = np.zeros((n_events, n_jets), dtype=bool)
    open_parent = np.ones((n_events, n_parents), dtype=bool)
    rows = np.arange(n_events)
    for _ in range(n_parents):
        best_score = np.full((n_events, n_parents), -np.inf)
        best_index = np.zeros((n_events, n_parents), dtype=np.int64)
        for p, (score, table) in enumerate(zip(flat, tables)):
            free = np.where(used[:, table].any(axis=2), -np.inf, score)
            best_index[:, p] = free.argmax(axis=1)
            best_score[:, p] = np.where(open_parent[:, p], free[rows, best_index[:, p]], -np.inf)
        chosen = best_score.argmax(axis=1)
        found = np.isfinite(best_score[rows, chosen])
        if not found.any():
            break
        for p, table in enumerate(tables):
            take = found & (chosen == p)
            jets = table[best_index[take, p]]
            slots[take, p, : ks[p]] = jets
            used[np.repeat(np.flatnonzero(take), ks[p]), jets.ravel()] = True
            open_parent[take, p] = False
    return slots
