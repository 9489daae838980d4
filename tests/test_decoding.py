"""The compiled greedy decoder returns exactly what the former vectorised numpy decoder returned."""

from __future__ import annotations

import numpy as np
import pytest

from pairhunt.assign.decoding import canonical_tuples, decode_greedy, decode_top_k, tuple_table


def numpy_greedy(scores: list[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """The former decoder: all parents' free valid tuples as [events, N**k] arrays, argmax per round."""
    n_events, n_jets = mask.shape
    ks = [s.ndim - 1 for s in scores]
    tables = [tuple_table(n_jets, k) for k in ks]
    flat = []
    for s, table in zip(scores, tables):
        distinct = np.array([len(set(row)) == len(row) for row in table.tolist()])
        valid = mask[:, table].all(axis=2) & distinct[None, :]
        flat.append(np.where(valid, s.reshape(n_events, -1), -np.inf))
    slots = np.full((n_events, len(scores), max(ks)), -1, dtype=np.int64)
    used = np.zeros((n_events, n_jets), dtype=bool)
    open_parent = np.ones((n_events, len(scores)), dtype=bool)
    rows = np.arange(n_events)
    for _ in range(len(scores)):
        best_score = np.full((n_events, len(scores)), -np.inf)
        best_index = np.zeros((n_events, len(scores)), dtype=np.int64)
        for p, (score, table) in enumerate(zip(flat, tables)):
            free = np.where(used[:, table].any(axis=2), -np.inf, score)
            best_index[:, p] = free.argmax(axis=1)
            best_score[:, p] = np.where(open_parent[:, p], free[rows, best_index[:, p]], -np.inf)
        chosen = best_score.argmax(axis=1)
        found = np.isfinite(best_score[rows, chosen])
        for p, table in enumerate(tables):
            take = found & (chosen == p)
            jets = table[best_index[take, p]]
            slots[take, p, : ks[p]] = jets
            used[np.repeat(np.flatnonzero(take), ks[p]), jets.ravel()] = True
            open_parent[take, p] = False
    return slots


def random_scores(rng, n_events: int, n_jets: int, ks: list[int], ties: bool, dtype) -> list[np.ndarray]:
    """Normal scores; with ``ties`` rounded to a few values so that many tuples tie."""
    out = []
    for k in ks:
        s = rng.normal(size=(n_events,) + (n_jets,) * k)
        out.append((np.round(s) if ties else s).astype(dtype))
    return out


@pytest.mark.parametrize("ks", [[3, 3], [3, 2], [2, 2, 2], [1, 3]])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("prefix_mask", [True, False])
def test_decoder_equals_the_numpy_decoder(ks, ties, prefix_mask):
    rng = np.random.default_rng(len(ks) + 10 * sum(ks) + 100 * ties + 1000 * prefix_mask)
    n_events, n_jets = 600, 8
    if prefix_mask:
        mask = np.arange(n_jets)[None, :] < rng.integers(0, n_jets + 1, n_events)[:, None]
    else:
        mask = rng.uniform(size=(n_events, n_jets)) < 0.7
    for dtype in (np.float32, np.float64):
        scores = random_scores(rng, n_events, n_jets, ks, ties, dtype)
        np.testing.assert_array_equal(decode_greedy(scores, mask), numpy_greedy(scores, mask))


def test_masked_model_scores_decode_like_the_numpy_decoder():
    # the models' outputs: log-softmax with -1e9 on invalid tuples; the best tuples of both
    # parents often share jets, so the decoder's fallback to a full rescan is exercised
    rng = np.random.default_rng(3)
    n_events, n_jets = 400, 10
    mask = np.arange(n_jets)[None, :] < rng.integers(6, n_jets + 1, n_events)[:, None]
    shared = rng.normal(size=(n_events, n_jets, n_jets, n_jets)) * 3
    scores = [(shared + rng.normal(size=shared.shape) * 0.1).astype(np.float32) for _ in range(2)]
    table = tuple_table(n_jets, 3)
    invalid = ~mask[:, table].all(axis=2) | (table[:, 0] == table[:, 1]) | (table[:, 1] == table[:, 2]) | (table[:, 0] == table[:, 2])
    for s in scores:
        s.reshape(n_events, -1)[invalid] = -1e9
    np.testing.assert_array_equal(decode_greedy(scores, mask), numpy_greedy(scores, mask))


def brute_force_top_k(scores, mask, k, groups, swap_equal):
    """Every valid distinct joint assignment of two parents, sorted by summed score."""
    n_events, n_jets = mask.shape
    tables = [tuple_table(n_jets, s.ndim - 1) for s in scores]
    canonical = [canonical_tuples(n_jets, s.ndim - 1, g) for s, g in zip(scores, groups)]
    out = []
    for event in range(n_events):
        options = {}
        flat = [s[event].reshape(-1) for s in scores]
        for a in np.flatnonzero(canonical[0]):
            ja = tables[0][a]
            if len(set(ja)) < len(ja) or not mask[event, ja].all():
                continue
            for b in np.flatnonzero(canonical[1]):
                jb = tables[1][b]
                if len(set(jb)) < len(jb) or not mask[event, jb].all() or set(ja) & set(jb):
                    continue
                total = float(flat[0][a]) + float(flat[1][b])
                key = (min(a, b), max(a, b)) if swap_equal else (a, b)
                options[key] = max(options.get(key, -np.inf), total)
        out.append(sorted(options.values(), reverse=True)[:k])
    return out


@pytest.mark.parametrize("swap_equal", [False, True])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_top_k_equals_a_brute_force_ranking(swap_equal, k):
    rng = np.random.default_rng(k + 10 * swap_equal)
    n_events, n_jets = 60, 7
    mask = np.arange(n_jets)[None, :] < rng.integers(3, n_jets + 1, n_events)[:, None]
    scores = [rng.normal(size=(n_events, n_jets, n_jets, n_jets)) for _ in range(2)]
    groups = [((0, 1),), ((0, 1),)]
    slots, totals = decode_top_k(scores, mask, k, groups, swap_equal)
    expected = brute_force_top_k(scores, mask, k, groups, swap_equal)
    for event in range(n_events):
        found = np.isfinite(totals[event])
        np.testing.assert_allclose(totals[event][found], expected[event], rtol=1e-12)
        assert (slots[event][~found] == -1).all()
        for rank in np.flatnonzero(found):  # valid: real, distinct jets; the score is the slots'
            jets = slots[event, rank].ravel()
            assert len(set(jets)) == 6 and mask[event, jets].all()
            a, b = (np.ravel_multi_index(tuple(slots[event, rank, p]), (n_jets,) * 3) for p in (0, 1))
            assert np.isclose(scores[0][event].ravel()[a] + scores[1][event].ravel()[b], totals[event, rank])
        assert np.all(np.diff(totals[event][found]) <= 0)


def test_top_1_scores_at_least_the_greedy_assignment():
    rng = np.random.default_rng(5)
    n_events, n_jets = 300, 8
    mask = np.ones((n_events, n_jets), dtype=bool)
    scores = [rng.normal(size=(n_events, n_jets, n_jets, n_jets)) * 2 for _ in range(2)]
    for s in scores:  # symmetric in the first two slots, as the models' outputs
        s += np.swapaxes(s, 1, 2)
    _, totals = decode_top_k(scores, mask, 1, [((0, 1),), ((0, 1),)], False)
    greedy = decode_greedy(scores, mask)
    greedy_total = sum(
        scores[p].reshape(n_events, -1)[np.arange(n_events), np.ravel_multi_index(tuple(greedy[:, p].T), (n_jets,) * 3)]
        for p in (0, 1)
    )
    assert np.all(totals[:, 0] >= greedy_total - 1e-12)
    assert np.mean(totals[:, 0] > greedy_total + 1e-9) > 0.05  # random scores: greedy is often not the joint best
