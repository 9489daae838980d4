"""Slot tables compared up to a topology's symmetries: the assignment metric of evaluation and training.

A slot table ``[events, parents, products]`` holds the jet index of every product slot (-1
when empty). Two tables mean the same assignment when they agree after sorting the jets within
each product symmetry group (:func:`canonical`) under one of the parent relabellings the
topology allows (:func:`parent_permutations`). ``pairhunt evaluate`` scores runs with these
functions, the SPA-NET trainer its validation events and its loss picks the best permutation:
one definition of "correct" for all three.
"""

from __future__ import annotations

import itertools

import numpy as np

from pairhunt.topology import Topology


def canonical(slots: np.ndarray, topology: Topology) -> np.ndarray:
    """Jets sorted within each product symmetry group, so equal-up-to-symmetry means equal."""
    out = slots.copy()
    for i, name in enumerate(topology.parents):
        for group in topology.symmetric_products(name):
            out[:, i, list(group)] = np.sort(out[:, i, list(group)], axis=1)
    return out


def parent_permutations(topology: Topology) -> np.ndarray:
    """Every parent relabelling the topology allows, as rows of parent indices (identity first)."""
    index = {name: i for i, name in enumerate(topology.parents)}
    groups = [[index[name] for name in group] for group in topology.parent_symmetries]
    rows = []
    for choice in itertools.product(*(itertools.permutations(g) for g in groups)):
        row = np.arange(topology.n_parents)
        for group, image in zip(groups, choice):
            row[group] = image
        rows.append(row)
    return np.unique(np.array(rows).reshape(-1, topology.n_parents), axis=0)


def reconstructable(truth: np.ndarray, topology: Topology) -> np.ndarray:
    """``[events, parents]``: every product slot of the parent is matched to a jet."""
    n_products = np.array([len(topology.products[name]) for name in topology.parents])
    real = np.arange(topology.max_products)[None, :] < n_products[:, None]
    return ((truth >= 0) | ~real).all(axis=2)


def best_correct(predicted: np.ndarray, truth: np.ndarray, recon: np.ndarray, topology: Topology) -> np.ndarray:
    """Correct reconstructable parents per event under its best allowed parent permutation.

    ``predicted`` and ``truth`` are canonical slot tables.
    """
    best = np.zeros(len(truth), dtype=np.int64)
    for perm in parent_permutations(topology):
        same = (predicted[:, perm] == truth).all(axis=2) & recon
        best = np.maximum(best, same.sum(axis=1))
    return best
