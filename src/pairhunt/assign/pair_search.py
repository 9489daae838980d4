"""Pruned searches for the best pair of disjoint parent tuples, compiled with numba.

The baselines minimise a cost over every disjoint pair of parent tuples: 18,900 pairs at 10
jets for ttbar, 62,370 at 12. Scanning them all costs ~100x more than needed. Here each event
is handled on its own, with no temporaries beyond one row of tuple costs:

- :func:`chi2_pairs`: costs are non-negative and add up, so only the cheapest tuples are
  sorted and searched, cheapest first, and the search stops once no remaining pair can win;
  the rest of the tuples is searched only when the cheap ones cannot prove the optimum;
- :func:`asymmetry_pairs`: for a tuple of mass m_a, |m_a - m_b| / (m_a + m_b) grows with
  m_b >= m_a, so tuples sorted by mass are scanned upwards only until the asymmetry is beaten.

Ties go to the first pair of the brute-force table (smallest lower tuple index, then higher),
so the results equal a full scan's exactly (``tests/test_pair_search.py``).
"""

from __future__ import annotations

import numba
import numpy as np

# tuples kept sorted for the chi^2 search before falling back to all of them
_CHEAPEST = 24
# error_model="numpy": x / 0 gives inf or nan as in numpy (the full scan's semantics) instead of
# raising, and saves a branch per division

# marks a tuple whose cost was not needed yet (costs are never negative)
_PENDING = -1.0
# a computed asymmetry may break its mathematical monotonicity by a rounding step: stop a scan
# only clearly beyond the best value, never at it
_MONOTONIC_SLACK = 1e-9


@numba.njit(inline="always", error_model="numpy")
def _mass(px, py, pz, energy, event, jets, n_slots) -> float:
    """Invariant mass of the first ``n_slots`` jets in ``jets`` (float64, summed in slot order)."""
    sx, sy, sz, se = px[event, jets[0]], py[event, jets[0]], pz[event, jets[0]], energy[event, jets[0]]
    for slot in range(1, n_slots):
        jet = jets[slot]
        sx += px[event, jet]
        sy += py[event, jet]
        sz += pz[event, jet]
        se += energy[event, jet]
    return np.sqrt(max(se * se - sx * sx - sy * sy - sz * sz, 0.0))


@numba.njit(inline="always", error_model="numpy")
def _w_term(px, py, pz, energy, event, jets, w_slots, w_jets, masses) -> float:
    """The W boson's chi^2 term of one tuple (``w_jets`` is scratch space)."""
    for k in range(len(w_slots)):
        w_jets[k] = jets[w_slots[k]]
    w = _mass(px, py, pz, energy, event, w_jets, len(w_slots))
    return ((w - masses[2]) / masses[3]) ** 2


@numba.njit(inline="always", error_model="numpy")
def _wins(value, lo, hi, best, best_lo, best_hi) -> bool:
    """Smaller value, or the same value earlier in the brute-force table."""
    if value < best:
        return True
    return value == best and (lo < best_lo or (lo == best_lo and hi < best_hi))


@numba.njit(inline="always", error_model="numpy")
def _search_sorted_sums(order, n_order, cost, bits, penalty, allowed, best, best_lo, best_hi):
    """Best pair among ``order[:n_order]`` (sorted by cost), improving on (best, lo, hi)."""
    for i in range(n_order):
        a = order[i]
        if cost[a] + cost[a] > best:  # every later partner costs at least cost[a]
            break
        for j in range(i + 1, n_order):
            b = order[j]
            total = cost[a] + cost[b]
            if total > best:
                break
            if bits[a] & bits[b] or penalty[a] + penalty[b] > allowed:
                continue
            lo, hi = min(a, b), max(a, b)
            if _wins(total, lo, hi, best, best_lo, best_hi):
                best, best_lo, best_hi = total, lo, hi
    return best, best_lo, best_hi


@numba.njit(cache=True, nogil=True, error_model="numpy")
def chi2_pairs(
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    energy: np.ndarray,
    counts: np.ndarray,
    tuples: np.ndarray,
    w_slots: np.ndarray,
    masses: np.ndarray,
    b_slot: int,
    untagged: np.ndarray,
    allowed: np.ndarray,
) -> np.ndarray:
    """``[events, 2]`` tuple indices (lower first) of the smallest summed chi^2; -1 if none.

    ``masses`` holds (m_top, s_top, m_W, s_W); a pair is allowed when its b slots hold at most
    ``allowed[event]`` jets with ``untagged[event, jet]`` set.
    """
    n_events, n_tuples = px.shape[0], tuples.shape[0]
    bits = np.zeros(n_tuples, dtype=np.int64)
    reach = np.zeros(n_tuples, dtype=np.int64)  # jets an event needs for the tuple to exist
    for t in range(n_tuples):
        for slot in range(tuples.shape[1]):
            bits[t] |= np.int64(1) << tuples[t, slot]
            reach[t] = max(reach[t], tuples[t, slot] + 1)
    w_jets = np.empty(len(w_slots), dtype=np.int64)
    cost = np.empty(n_tuples)
    penalty = np.empty(n_tuples, dtype=np.int64)
    cheap = np.empty(_CHEAPEST, dtype=np.int64)
    best_pair = np.full((n_events, 2), -1, dtype=np.int64)
    for event in range(n_events):
        n_cheap, n_usable, excluded = 0, 0, np.inf
        for t in range(n_tuples):
            cost[t] = np.inf
            if reach[t] > counts[event]:
                continue
            n_usable += 1
            penalty[t] = untagged[event, tuples[t, b_slot]]
            top = _mass(px, py, pz, energy, event, tuples[t], tuples.shape[1])
            top_term = ((top - masses[0]) / masses[1]) ** 2
            if n_cheap == _CHEAPEST and top_term >= cost[cheap[n_cheap - 1]]:
                # left out whatever its W term: the top term bounds its cost from below
                excluded = min(excluded, top_term)
                cost[t] = _PENDING
                continue
            cost[t] = top_term + _w_term(px, py, pz, energy, event, tuples[t], w_slots, w_jets, masses)
            # keep the cheapest tuples sorted by insertion; remember a bound on those left out
            if n_cheap == _CHEAPEST and cost[t] >= cost[cheap[n_cheap - 1]]:
                excluded = min(excluded, cost[t])
                continue
            if n_cheap == _CHEAPEST:
                n_cheap -= 1
                excluded = min(excluded, cost[cheap[n_cheap]])
            position = n_cheap
            while position > 0 and cost[cheap[position - 1]] > cost[t]:
                cheap[position] = cheap[position - 1]
                position -= 1
            cheap[position] = t
            n_cheap += 1
        best, best_lo, best_hi = _search_sorted_sums(
            cheap, n_cheap, cost, bits, penalty, allowed[event], np.inf, n_tuples, n_tuples
        )
        # a pair with a left-out tuple costs at least cheapest + excluded: search all unless beaten
        if n_usable > n_cheap and n_cheap > 0 and not best < cost[cheap[0]] + excluded:
            for t in range(n_tuples):
                if cost[t] == _PENDING:
                    top = _mass(px, py, pz, energy, event, tuples[t], tuples.shape[1])
                    top_term = ((top - masses[0]) / masses[1]) ** 2
                    cost[t] = top_term + _w_term(px, py, pz, energy, event, tuples[t], w_slots, w_jets, masses)
            everything = np.argsort(cost, kind="mergesort")[:n_usable]
            best, best_lo, best_hi = _search_sorted_sums(
                everything, n_usable, cost, bits, penalty, allowed[event], np.inf, n_tuples, n_tuples
            )
        if best_lo < n_tuples:
            best_pair[event, 0], best_pair[event, 1] = best_lo, best_hi
    return best_pair


@numba.njit(cache=True, nogil=True, error_model="numpy")
def asymmetry_pairs(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray, energy: np.ndarray, counts: np.ndarray, tuples: np.ndarray
) -> np.ndarray:
    """``[events, 2]`` tuple indices (lower first) minimising ``|m_a - m_b| / (m_a + m_b)``; -1 if none."""
    n_events, n_tuples = px.shape[0], tuples.shape[0]
    bits = np.zeros(n_tuples, dtype=np.int64)
    reach = np.zeros(n_tuples, dtype=np.int64)
    for t in range(n_tuples):
        for slot in range(tuples.shape[1]):
            bits[t] |= np.int64(1) << tuples[t, slot]
            reach[t] = max(reach[t], tuples[t, slot] + 1)
    mass = np.empty(n_tuples)
    usable = np.empty(n_tuples, dtype=np.int64)
    best_pair = np.full((n_events, 2), -1, dtype=np.int64)
    for event in range(n_events):
        n_usable = 0
        for t in range(n_tuples):
            mass[t] = np.inf
            if reach[t] <= counts[event]:
                mass[t] = _mass(px, py, pz, energy, event, tuples[t], tuples.shape[1])
                usable[n_usable] = t
                n_usable += 1
        order = usable[:n_usable][np.argsort(mass[usable[:n_usable]])]
        best, best_lo, best_hi = np.inf, n_tuples, n_tuples
        for i in range(n_usable):
            a = order[i]
            for j in range(i + 1, n_usable):
                b = order[j]
                value = np.abs(mass[a] - mass[b]) / (mass[a] + mass[b])
                if not np.isfinite(value):  # both massless: undefined, skipped like the full scan
                    continue
                if value > best * (1.0 + _MONOTONIC_SLACK):
                    break
                if bits[a] & bits[b]:
                    continue
                lo, hi = min(a, b), max(a, b)
                if _wins(value, lo, hi, best, best_lo, best_hi):
                    best, best_lo, best_hi = value, lo, hi
        if best_lo < n_tuples:
            best_pair[event, 0], best_pair[event, 1] = best_lo, best_hi
    return best_pair


def warm_up() -> None:
    """Load the kernels (compiling them on first use) for the types the baselines pass them.

    Numba's first call in a process costs about a second even from its cache.
    """
    zeros = np.zeros((1, 6))
    counts = np.full(1, 6, dtype=np.int64)
    tuples = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.int64)
    untagged = np.zeros((1, 6), dtype=np.int64)
    chi2_pairs(zeros, zeros, zeros, zeros, counts, tuples, np.array([0, 1]), np.ones(4), 2, untagged, np.zeros(1, dtype=np.int64))
    asymmetry_pairs(zeros, zeros, zeros, zeros, counts, tuples)
