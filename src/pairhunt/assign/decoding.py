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
def _insert(kept, kept_scores, last, t, value) -> None:
    """Put tuple ``t`` into ``kept[:last + 1]`` (sorted by score, earlier tuples first on ties),
    dropping what was at ``last``."""
    position = last
    while position > 0 and value > kept_scores[position - 1]:
        kept[position] = kept[position - 1]
        kept_scores[position] = kept_scores[position - 1]
        position -= 1
    kept[position] = t
    kept_scores[position] = value


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
        _insert(kept, kept_scores, n_kept - 1, t, value)
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


@lru_cache(maxsize=64)
def canonical_tuples(n_jets: int, k: int, symmetric_groups: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """``[n_jets**k]`` True for one tuple per class of equivalent tuples (jets of each group of
    interchangeable slots in increasing order): the others are the same assignment."""
    table = tuple_table(n_jets, k)
    keep = np.ones(len(table), dtype=bool)
    for group in symmetric_groups:
        for a, b in zip(group, group[1:]):
            keep &= table[:, a] < table[:, b]
    return keep


@numba.njit(inline="always")
def _top_tuples(row, bits, canonical, free, kept, kept_scores, n_kept):
    """Fill ``kept`` with the ``n_kept`` best valid canonical tuples of free jets (score, then
    index); returns how many exist (at most ``n_kept``) and the best score left out."""
    count, left_out = 0, -np.inf
    for t in range(row.shape[0]):
        value = np.float64(row[t])
        if not canonical[t] or bits[t] < 0 or bits[t] & ~free or not value > -np.inf:
            continue
        if count == n_kept and not value > kept_scores[n_kept - 1]:
            left_out = max(left_out, value)
            continue
        if count == n_kept:
            left_out = max(left_out, kept_scores[n_kept - 1])
        else:
            count += 1
        _insert(kept, kept_scores, count - 1, t, value)
    return count, left_out


@numba.njit(inline="always")
def _best_pairs(first, first_scores, n_first, second, second_scores, n_second, bits_a, bits_b, swap_equal, k, out, out_scores):
    """The ``k`` best disjoint pairs (first[i], second[j]) by summed score into ``out``; returns the count.

    With ``swap_equal`` (interchangeable parents with the same tuple table) a pair and its swap
    are one assignment: only the better one is kept.
    """
    found = 0
    for i in range(n_first):
        if found == k and not first_scores[i] + second_scores[0] > out_scores[k - 1]:
            break
        for j in range(n_second):
            total = first_scores[i] + second_scores[j]
            if found == k and not total > out_scores[k - 1]:
                break
            a, b = first[i], second[j]
            if bits_a[a] & bits_b[b]:
                continue
            if swap_equal:
                duplicate = -1
                for r in range(found):
                    if out[r, 0] == b and out[r, 1] == a:
                        duplicate = r
                if duplicate >= 0:
                    if not total > out_scores[duplicate]:
                        continue
                    for r in range(duplicate, found - 1):  # drop the worse orientation
                        out[r] = out[r + 1]
                        out_scores[r] = out_scores[r + 1]
                    found -= 1
            position = found if found < k else k - 1
            if found < k:
                found += 1
            while position > 0 and total > out_scores[position - 1]:
                out[position] = out[position - 1]
                out_scores[position] = out_scores[position - 1]
                position -= 1
            out[position, 0], out[position, 1] = a, b
            out_scores[position] = total
    return found


@numba.njit(cache=True, nogil=True)
def _decode_top_k(scores_a, scores_b, bits_a, bits_b, canonical_a, canonical_b, real, swap_equal, k, kept):
    n_events = real.shape[0]
    pairs = np.full((n_events, k, 2), -1, dtype=np.int64)
    pair_scores = np.full((n_events, k), -np.inf)
    first, second = np.empty(scores_a.shape[1], dtype=np.int64), np.empty(scores_b.shape[1], dtype=np.int64)
    first_scores, second_scores = np.empty(scores_a.shape[1]), np.empty(scores_b.shape[1])
    out, out_scores = np.empty((k, 2), dtype=np.int64), np.empty(k)
    for event in range(n_events):
        n_kept = kept
        while True:
            n_first, left_a = _top_tuples(scores_a[event], bits_a, canonical_a, real[event], first, first_scores, n_kept)
            n_second, left_b = _top_tuples(scores_b[event], bits_b, canonical_b, real[event], second, second_scores, n_kept)
            found = 0
            if n_first > 0 and n_second > 0:
                found = _best_pairs(first, first_scores, n_first, second, second_scores, n_second, bits_a, bits_b, swap_equal, k, out, out_scores)
            # a pair with a left-out tuple scores at most left_a + best_b (or best_a + left_b)
            bound = -np.inf
            if n_second > 0:
                bound = max(bound, left_a + second_scores[0])
            if n_first > 0:
                bound = max(bound, first_scores[0] + left_b)
            if (found == k and out_scores[k - 1] > bound) or bound == -np.inf or n_kept >= scores_a.shape[1]:
                break
            n_kept = min(4 * n_kept, max(scores_a.shape[1], scores_b.shape[1]))
        for r in range(found):
            pairs[event, r, 0], pairs[event, r, 1] = out[r, 0], out[r, 1]
            pair_scores[event, r] = out_scores[r]
    return pairs, pair_scores


def decode_top_k(
    scores: list[np.ndarray],
    mask: np.ndarray,
    k: int,
    symmetric_products: list[tuple[tuple[int, ...], ...]],
    parents_interchangeable: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best distinct joint assignments of two parents, ranked by summed score.

    Returns ``[events, k, 2, max k_p]`` jet indices (-1 when empty, and for ranks beyond the
    number of valid assignments) and ``[events, k]`` summed scores (log-probabilities for the
    models' outputs; -inf when empty). Assignments that differ only by interchangeable products
    (``symmetric_products[p]``: groups of slots) or, with ``parents_interchangeable``, by
    swapping the parents, are one assignment. The first entry maximises the joint score; the
    greedy decoder can differ from it where its confident first choice costs the other parent.
    """
    if len(scores) != 2:
        raise ValueError(f"top-k decoding handles two parents, got {len(scores)}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n_events, n_jets = mask.shape
    ks = [s.ndim - 1 for s in scores]
    dtype = np.result_type(*scores)
    flat = [np.ascontiguousarray(s.reshape(n_events, -1), dtype=dtype) for s in scores]
    bits = [tuple_bits(n_jets, kp) for kp in ks]
    canonical = [canonical_tuples(n_jets, kp, tuple(groups)) for kp, groups in zip(ks, symmetric_products)]
    real = (np.left_shift(np.int64(1), np.arange(n_jets, dtype=np.int64))[None, :] * mask).sum(axis=1).astype(np.int64)
    pairs, pair_scores = _decode_top_k(*flat, *bits, *canonical, real, parents_interchangeable, k, max(4 * k, 32))
    tables = [tuple_table(n_jets, kp) for kp in ks]
    slots = np.full((n_events, k, 2, max(ks)), -1, dtype=np.int64)
    for p, table in enumerate(tables):
        found = pairs[..., p] >= 0
        slots[found, p, : ks[p]] = table[pairs[..., p][found]]
    return slots, pair_scores
