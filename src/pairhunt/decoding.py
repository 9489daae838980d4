"""Decode a valid joint assignment from per-parent tuple scores, compiled with numba.

Greedy by confidence, as SPANet does: the parent whose best tuple has the highest score takes
it; its jets are removed for the other parents; repeat. A parent with no tuple of free, real
and distinct jets left gets -1 in every slot: a jet is never used twice. Ties go to the lowest
tuple index, then the lowest parent index.

Each event is decoded on its own: one pass over each parent's scores keeps that parent's few
best valid tuples, and a parent whose kept tuples all lost their jets to another parent is
rescanned in full (rare). No ``[events, N**k]`` temporaries are built.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np

# valid tuples kept per parent from the first pass
_KEPT = 4


@lru_cache(maxsize=64)
def tuple_table(n_jets: int, k: int) -> np.ndarray:
    """``[n_jets**k, k]``: the jet indices of each entry of a flattened ``[N]*k`` score tensor."""
    return np.stack(np.unravel_index(np.arange(n_jets**k), (n_jets,) * k), axis=1)


@lru_cache(maxsize=64)
def tuple_bits(n_jets: int, k: int) -> np.ndarray:
    """``[n_jets**k]`` bit set of each tuple's jets; -1 when a jet repeats (never valid)."""
    table = tuple_table(n_jets, k)
    bits = np.left_shift(np.int64(1), table).sum(axis=1)
    distinct = np.array([len(set(row)) == k for row in table.tolist()], dtype=bool)
    return np.where(distinct, bits, -1).astype(np.int64)


@numba.njit(inline="always")
def _best_free(scores, event, bits, free, kept, kept_scores, n_kept) -> int:
    """Index of the best tuple of free jets (first on ties), -1 if none; fills ``kept``.

    ``kept[:n_kept]`` receives the best valid tuples in order (score, then index), so that a
    later call after some jets were taken can often be answered from them.
    """
    for i in range(n_kept):
        kept[i] = -1
        kept_scores[i] = -np.inf
    row = scores[event]
    threshold = -np.inf
    for t in range(row.shape[0]):
        value = row[t]
        if not value > threshold:
            continue
        if bits[t] < 0 or bits[t] & ~free:
            continue
        position = n_kept - 1
        while position > 0 and value > kept_scores[position - 1]:
            kept[position] = kept[position - 1]
            kept_scores[position] = kept_scores[position - 1]
            position -= 1
        kept[position] = t
        kept_scores[position] = value
        threshold = kept_scores[n_kept - 1]
    return kept[0]


@numba.njit(cache=True, nogil=True)
def _decode(scores, bits, tables, real, max_k):
    n_events = real.shape[0]
    n_parents = len(scores)
    slots = np.full((n_events, n_parents, max_k), -1, dtype=np.int64)
    kept = np.empty((n_parents, _KEPT), dtype=np.int64)
    kept_scores = np.empty((n_parents, _KEPT))
    best = np.empty(n_parents, dtype=np.int64)
    open_parent = np.empty(n_parents, dtype=np.bool_)
    for event in range(n_events):
        free = real[event]
        for p in range(n_parents):
            best[p] = _best_free(scores[p], event, bits[p], free, kept[p], kept_scores[p], _KEPT)
            open_parent[p] = True
        for _ in range(n_parents):
            chosen, chosen_score = -1, -np.inf
            for p in range(n_parents):
                if open_parent[p] and best[p] >= 0 and scores[p][event, best[p]] > chosen_score:
                    chosen, chosen_score = p, scores[p][event, best[p]]
            if chosen < 0:
                break
            t = best[chosen]
            for slot in range(tables[chosen].shape[1]):
                slots[event, chosen, slot] = tables[chosen][t, slot]
            free &= ~bits[chosen][t]
            open_parent[chosen] = False
            # the other parents' best tuples may have lost a jet: take the next kept one
            for p in range(n_parents):
                if not open_parent[p] or best[p] < 0 or not bits[p][best[p]] & bits[chosen][t]:
                    continue
                best[p] = -1
                exhausted = True
                for i in range(_KEPT):
                    candidate = kept[p, i]
                    if candidate < 0:
                        exhausted = False  # fewer valid tuples than kept: none is left
                        break
                    if not bits[p][candidate] & ~free:
                        best[p] = candidate
                        exhausted = False
                        break
                if exhausted:
                    best[p] = _best_free(scores[p], event, bits[p], free, kept[p], kept_scores[p], _KEPT)
    return slots


def decode_greedy(scores: list[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """``[events, parents, max k]`` jet index per product slot (-1 when empty).

    ``scores[p]`` has shape ``[events] + [N] * k_p`` (any k; finite log-probabilities or
    logits), ``mask`` is ``[events, N]`` (True for real jets; at most 62 jets).
    """
    n_events, n_jets = mask.shape
    ks = [s.ndim - 1 for s in scores]
    dtype = np.result_type(*scores)  # one dtype for all parents; float32 model outputs stay float32
    flat = tuple(np.ascontiguousarray(s.reshape(n_events, -1), dtype=dtype) for s in scores)
    bits = tuple(tuple_bits(n_jets, k) for k in ks)
    tables = tuple(tuple_table(n_jets, k) for k in ks)
    real = np.left_shift(np.int64(1), np.arange(n_jets, dtype=np.int64))[None, :] * mask
    return _decode(flat, bits, tables, real.sum(axis=1).astype(np.int64), max(ks))
