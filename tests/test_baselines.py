"""Baselines on truth-perfect toy events, permutation tables, and candidate building."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from pairhunt.assign.base import JetAssignment
from pairhunt.assign.baselines import Chi2, MassAsymmetry
from pairhunt.candidates import build_candidates
from pairhunt.assign.combinatorics import count_assignments
from pairhunt.cutflow import Cutflow
from pairhunt.inputs import select_jets
from pairhunt.topology import load_topology
from toys import three_body_pairs, to_jets, ttbar


def select(jets: ak.Array, topology):
    events = ak.zip({"Jet": ak.from_regular(jets)}, depth_limit=1)
    cutflow = Cutflow(np.ones(len(events)))
    inputs, selected = select_jets(events, topology.jets, cutflow, [])
    return inputs, selected


def truth_of(inputs, selected, parent, slot):
    """Truth parent / slot of the selected jets (padded like the inputs)."""
    index = np.maximum(inputs.index, 0)
    true_parent = np.where(inputs.mask, np.take_along_axis(parent[selected], index, axis=1), -1)
    true_slot = np.where(inputs.mask, np.take_along_axis(slot[selected], index, axis=1), -1)
    return true_parent, true_slot


def fraction_correct(assignment: JetAssignment, true_parent, slot_class, true_class) -> float:
    """Among events with all six quarks selected: every jet has the right parent (either
    labelling) and product class."""
    swapped = np.where(assignment.parent >= 0, 1 - assignment.parent, -1)
    same_class = slot_class == true_class
    direct = ((assignment.parent == true_parent) & same_class).all(axis=1)
    crossed = ((swapped == true_parent) & same_class).all(axis=1)
    complete = (true_parent >= 0).sum(axis=1) == 6
    assert complete.sum() > 100
    return float((direct | crossed)[complete].mean())


@pytest.mark.parametrize("extra", [0, 2])
def test_chi2_recovers_truth_perfect_ttbar(extra):
    rng = np.random.default_rng(1)
    topology = load_topology("ttbar_allhad")
    jets, parent, slot = to_jets(ttbar(400, rng), rng, extra=extra)
    inputs, selected = select(jets, topology)
    assert selected.sum() > 100
    true_parent, true_slot = truth_of(inputs, selected, parent, slot)
    assignment = Chi2().assign(inputs, topology)
    b_slot = 2  # q1, q2 are interchangeable, b is not
    predicted_class = np.where(assignment.product == b_slot, 1, np.where(assignment.product >= 0, 0, -1))
    true_class = np.where(true_slot == b_slot, 1, np.where(true_slot >= 0, 0, -1))
    assert fraction_correct(assignment, true_parent, predicted_class, true_class) == 1.0


def test_mass_asymmetry_recovers_truth_perfect_pairs():
    rng = np.random.default_rng(2)
    topology = load_topology("pair_3body")
    jets, parent, slot = to_jets(three_body_pairs(300, rng), rng, extra=1)
    inputs, selected = select(jets, topology)
    true_parent, _ = truth_of(inputs, selected, parent, slot)
    assignment = MassAsymmetry().assign(inputs, topology)
    same = np.where(assignment.parent >= 0, 0, -1)
    assert fraction_correct(assignment, true_parent, same, np.where(true_parent >= 0, 0, -1)) == 1.0
    candidates = build_candidates(inputs, assignment, 2, 3)
    complete = (true_parent >= 0).sum(axis=1) == 6
    np.testing.assert_allclose(candidates.mass[complete], 1000.0, rtol=1e-9)


def test_assignments_use_each_jet_once_and_fill_every_slot():
    rng = np.random.default_rng(3)
    topology = load_topology("ttbar_allhad")
    jets, _, _ = to_jets(ttbar(200, rng), rng, extra=3)
    inputs, _ = select(jets, topology)
    assignment = Chi2(btag_aware=False).assign(inputs, topology)
    for p in (0, 1):
        for k in range(3):
            assert np.all(((assignment.parent == p) & (assignment.product == k)).sum(axis=1) == 1)
    assert np.all(assignment.parent[~inputs.mask] == -1)


def test_permutation_counts_grow_factorially():
    ttbar_topology, pairs = load_topology("ttbar_allhad"), load_topology("pair_3body")
    assert [count_assignments(ttbar_topology, n) for n in (6, 7, 8)] == [90, 630, 2520]
    assert [count_assignments(pairs, n) for n in (6, 8)] == [10, 280]


def test_events_without_a_valid_assignment_stay_unassigned():
    rng = np.random.default_rng(4)
    topology = load_topology("ttbar_allhad")
    jets, _, _ = to_jets(ttbar(50, rng), rng)
    inputs, _ = select(jets, topology)
    inputs.counts[:5] = 4  # pretend the first events have only four jets
    inputs.mask[:5, 4:] = False
    assignment = Chi2().assign(inputs, topology)
    assert np.all(assignment.parent[:5] == -1)
    assert np.all(assignment.parent[5:].max(axis=1) == 1)


def test_candidates_are_float64_exact_for_heavy_systems():
    # two back-to-back 1.5 TeV jets: float32 E^2 - p^2 would lose the mass entirely
    jets = ak.Array([[{"pt": 1500.0, "eta": 0.3, "phi": 0.0, "mass": 10.0}] * 6])
    topology = load_topology("pair_3body")
    inputs, _ = select(jets, topology)
    assignment = JetAssignment.from_slots(np.array([[[0, 1, 2], [3, 4, 5]]]), inputs.width)
    mass = build_candidates(inputs, assignment, 2, 3).mass
    np.testing.assert_allclose(mass, 30.0, rtol=1e-9)  # collinear: masses add
