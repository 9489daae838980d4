"""The compiled greedy decoder returns exactly what the former vectorised numpy decoder returned."""

from __future__ import annotations

import numpy as np
import pytest

from pairhunt.decoding import decode_greedy, tuple_table


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
