"""The pruned, compiled baseline searches return exactly what a scan of every pair returns."""

from __future__ import annotations

import numpy as np
import pytest

from pairhunt.assign.baselines import Chi2, MassAsymmetry
from pairhunt.assign.combinatorics import pair_tables
from pairhunt.inputs import JetInputs
from pairhunt.topology import load_topology


def random_jets(n_events: int, width: int, rng, ties: bool = False) -> JetInputs:
    """Jets with random kinematics and counts from 5 to ``width``; ``ties`` repeats jets so
    that many assignments have exactly the same cost."""
    shape = (n_events, width)
    pt = rng.uniform(25, 400, shape)
    eta = rng.uniform(-2.5, 2.5, shape)
    phi = rng.uniform(-np.pi, np.pi, shape)
    mass = rng.uniform(0, 30, shape)
    if ties:
        for x in (pt, eta, phi, mass):
            x[:, 1::2] = x[:, 0::2][:, : width // 2]
        mass[: n_events // 4] = 0.0
    counts = rng.integers(5, width + 1, n_events)
    mask = np.arange(width)[None, :] < counts[:, None]
    index = np.where(mask, np.arange(width)[None, :], -1)
    btag = (rng.uniform(size=shape) < 0.3).astype(np.float32)
    return JetInputs(pt, eta, phi, mass, mask, index, counts, counts.copy(), features={"btag": btag})


class FullScan:
    """The former algorithm: per-tuple quantities in numpy, then every pair of the table."""

    def __init__(self, jets: JetInputs, topology):
        self.jets, self.topology = jets, topology
        self.tuples, self.pairs = pair_tables(topology, jets.width)
        self.valid = self.tuples.max(axis=1)[None, :] < jets.counts[:, None]

    def mass(self, slots: list[int] | None = None) -> np.ndarray:
        chosen = self.tuples if slots is None else self.tuples[:, slots]
        px, py, pz, e = (x[:, chosen].sum(axis=2) for x in self.jets.four_momenta())
        return np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))

    def at_slot(self, per_jet: np.ndarray, slot: int) -> np.ndarray:
        return per_jet[:, self.tuples[:, slot]]


def full_scan(scan: FullScan, joint_cost) -> np.ndarray:
    """Slots of the first pair of smallest cost in the brute-force table."""
    tuples, a, b = scan.tuples, scan.pairs[:, 0], scan.pairs[:, 1]
    cost = joint_cost(a, b)
    valid = scan.valid[:, a] & scan.valid[:, b] & np.isfinite(cost)
    cost = np.where(valid, cost, np.inf)
    best = np.where(valid.any(axis=1), cost.argmin(axis=1), -1)
    slots = np.full((len(cost), 2, tuples.shape[1]), -1)
    found = best >= 0
    slots[found, 0], slots[found, 1] = tuples[a[best[found]]], tuples[b[best[found]]]
    return slots


def slots_of(assignment, n_products: int) -> np.ndarray:
    """``[events, 2, products]`` jet index per slot from a JetAssignment."""
    slots = np.full((len(assignment.parent), 2, n_products), -1)
    rows, jets = np.nonzero(assignment.parent >= 0)
    slots[rows, assignment.parent[rows, jets], assignment.product[rows, jets]] = jets
    return slots


@pytest.mark.parametrize("width", [6, 8, 10, 12])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("btag_aware", [False, True])
def test_chi2_equals_the_full_scan(width, ties, btag_aware):
    rng = np.random.default_rng(width + 10 * ties + 100 * btag_aware)
    topology = load_topology("ttbar_allhad")
    jets = random_jets(400, width, rng, ties)
    method = Chi2(btag_aware=btag_aware)
    scan = FullScan(jets, topology)
    top, w = scan.mass(), scan.mass([0, 1])
    cost = ((top - method.top_mass) / method.top_sigma) ** 2 + ((w - method.w_mass) / method.w_sigma) ** 2
    tagged = jets.features["btag"] > 0.5
    untagged_b = ~scan.at_slot(tagged, 2)
    allowed = np.maximum(0, 2 - (tagged & jets.mask).sum(axis=1))[:, None]

    def joint(a, b):
        total = cost[:, a] + cost[:, b]
        if btag_aware:
            total = np.where(untagged_b[:, a].astype(int) + untagged_b[:, b] <= allowed, total, np.inf)
        return total

    expected = full_scan(scan, joint)
    assert (expected[:, 0, 0] >= 0).sum() > 100
    np.testing.assert_array_equal(slots_of(method.assign(jets, topology), 3), expected)


@pytest.mark.parametrize("width", [6, 8, 10])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("topology_name", ["pair_3body", "ttbar_allhad"])
def test_mass_asymmetry_equals_the_full_scan(width, ties, topology_name):
    rng = np.random.default_rng(7 + width + 10 * ties)
    topology = load_topology(topology_name)
    jets = random_jets(400, width, rng, ties)
    scan = FullScan(jets, topology)
    mass = scan.mass()

    def joint(a, b):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.abs(mass[:, a] - mass[:, b]) / (mass[:, a] + mass[:, b])

    expected = full_scan(scan, joint)
    assert (expected[:, 0, 0] >= 0).sum() > 100
    np.testing.assert_array_equal(slots_of(MassAsymmetry().assign(jets, topology), 3), expected)
