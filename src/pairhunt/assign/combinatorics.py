"""Permutation tables of the baselines, built once per (jet count, topology) and cached.

For two parents the joint assignments factorise: a table of *tuples* (the jets of one parent in
product-slot order, one representative per product symmetry) and a table of *pairs* of disjoint
tuples (unordered when the parents are interchangeable). With 6 jets, all-hadronic ttbar has
60 tuples and 90 pairs; with 10 jets 360 and 18,900: the O(N^6) growth the models avoid.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import permutations

import numpy as np

from pairhunt.errors import PairhuntError
from pairhunt.topology import Topology


def _canonical(slots: tuple[int, ...], symmetric_groups: list[tuple[int, ...]]) -> bool:
    """True when jets in every symmetric slot group are in increasing order."""
    return all(all(slots[a] < slots[b] for a, b in zip(group, group[1:])) for group in symmetric_groups)


@lru_cache(maxsize=64)
def parent_tuples(n_jets: int, n_products: int, symmetric_groups: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """``[T, n_products]`` jet indices: distinct jets per slot, one per symmetry class."""
    groups = [tuple(sorted(g)) for g in symmetric_groups]
    rows = [p for p in permutations(range(n_jets), n_products) if _canonical(p, groups)]
    return np.array(rows, dtype=np.int64).reshape(-1, n_products)


@lru_cache(maxsize=64)
def disjoint_pairs(tuples_key: tuple[int, int, tuple[tuple[int, ...], ...]], unordered: bool) -> np.ndarray:
    """``[n_pairs, 2]`` indices into :func:`parent_tuples` of two tuples sharing no jet."""
    tuples = parent_tuples(*tuples_key)
    bits = (np.left_shift(1, tuples)).sum(axis=1) if len(tuples) else np.zeros(0, dtype=np.int64)
    a, b = np.nonzero((bits[:, None] & bits[None, :]) == 0)
    keep = a < b if unordered else a != b
    return np.stack([a[keep], b[keep]], axis=1)


def pair_tables(topology: Topology, n_jets: int) -> tuple[np.ndarray, np.ndarray]:
    """Tuples and disjoint pairs for a two-parent topology with identical product lists."""
    if topology.n_parents != 2 or len(set(topology.products.values())) != 1:
        raise PairhuntError(
            f"the baselines need two parents with the same decay products; topology {topology.name!r} has "
            f"{dict(topology.products)}"
        )
    first = topology.parents[0]
    key = (n_jets, len(topology.products[first]), tuple(topology.symmetric_products(first)))
    unordered = any(set(g) == set(topology.parents) for g in topology.parent_symmetries)
    return parent_tuples(*key), disjoint_pairs(key, unordered)


def count_assignments(topology: Topology, n_jets: int) -> int:
    """Number of distinct joint assignments of ``n_jets`` jets (the size of a brute-force scan)."""
    return len(pair_tables(topology, n_jets)[1])

