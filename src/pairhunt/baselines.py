"""The classic assignments the models must beat, vectorised over events.

- :class:`Chi2`: ttbar with known masses, minimise
  (m_bqq - m_t)^2/s_t^2 + (m_qq - m_W)^2/s_W^2 summed over both tops;
- :class:`MassAsymmetry`: two identical parents, minimise |m1 - m2| / (m1 + m2).

Both scan every joint assignment of the leading N jets (tables from :mod:`pairhunt.combinatorics`):
per-parent quantities are computed once per tuple, then combined over disjoint pairs, in event
batches that bound the memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pairhunt.assignment import JetAssignment
from pairhunt.combinatorics import pair_tables
from pairhunt.errors import PairhuntError
from pairhunt.inputs import JetInputs
from pairhunt.topology import Topology

_MAX_BATCH_ELEMENTS = 4_000_000  # events x pairs per batch: ~100 MB of float64 temporaries

JointCost = Callable[[slice, np.ndarray, np.ndarray], np.ndarray]


class PairScan:
    """Brute-force scan over disjoint tuple pairs of the leading ``max_jets`` jets."""

    def __init__(self, jets: JetInputs, topology: Topology, max_jets: int | None):
        self.jets = jets
        self.n_jets = min(max_jets or jets.width, jets.width)
        self.tuples, self.pairs = pair_tables(topology, self.n_jets)
        self.n_products = self.tuples.shape[1]
        momenta = jets.four_momenta()
        self._p4 = [x[:, : self.n_jets] for x in momenta]
        # a tuple is usable in an event when all its jets exist there
        self.tuple_valid = self.tuples.max(axis=1)[None, :] < np.minimum(jets.counts, self.n_jets)[:, None]

    def tuple_mass(self, slots: list[int] | None = None) -> np.ndarray:
        """``[events, tuples]`` invariant mass of the jets in ``slots`` (all slots by default)."""
        chosen = self.tuples if slots is None else self.tuples[:, slots]
        px, py, pz, e = (x[:, chosen].sum(axis=2) for x in self._p4)
        return np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))

    def tuple_values(self, per_jet: np.ndarray, slot: int) -> np.ndarray:
        """``[events, tuples]`` value of a per-jet array at the jet in ``slot``."""
        return per_jet[:, : self.n_jets][:, self.tuples[:, slot]]

    def minimise(self, joint_cost: JointCost) -> JetAssignment:
        """Pick, per event, the valid pair of smallest ``joint_cost(rows, a, b)``."""
        n_events = self.jets.n_events
        a, b = self.pairs[:, 0], self.pairs[:, 1]
        best = np.full(n_events, -1, dtype=np.int64)
        batch = max(1, _MAX_BATCH_ELEMENTS // max(len(self.pairs), 1))
        for start in range(0, n_events, batch):
            rows = slice(start, min(start + batch, n_events))
            cost = joint_cost(rows, a, b)
            valid = self.tuple_valid[rows][:, a] & self.tuple_valid[rows][:, b] & np.isfinite(cost)
            cost = np.where(valid, cost, np.inf)
            choice = cost.argmin(axis=1) if len(self.pairs) else np.zeros(cost.shape[0], dtype=np.int64)
            best[rows] = np.where(valid.any(axis=1), choice, -1)
        slots = np.full((n_events, 2, self.n_products), -1, dtype=np.int64)
        found = best >= 0
        slots[found, 0] = self.tuples[a[best[found]]]
        slots[found, 1] = self.tuples[b[best[found]]]
        return JetAssignment.from_slots(slots, self.jets.width)


@dataclass
class Chi2:
    """chi^2 with known top and W masses for all-hadronic ttbar (optionally b-tag aware).

    With ``btag_aware``, b slots hold b-tagged jets whenever the leading jets have enough tags:
    at most ``max(0, 2 - n_tags)`` b slots may take an untagged jet.
    The default resolutions are the widths of truth-matched candidates in pairhunt's ttbar sample.
    """

    name: str = "chi2"
    top_mass: float = 172.5
    w_mass: float = 80.4
    top_sigma: float = 20.0
    w_sigma: float = 12.0
    btag_aware: bool = False
    max_jets: int | None = None
    w_products: tuple[str, str] = ("q1", "q2")
    b_product: str = "b"

    def required_features(self, topology: Topology) -> tuple[str, ...]:
        return ("btag",) if self.btag_aware else ()

    def assign(self, jets: JetInputs, topology: Topology) -> JetAssignment:
        products = topology.products[topology.parents[0]]
        missing = {*self.w_products, self.b_product} - set(products)
        if missing or len(products) != 3:
            raise PairhuntError(f"chi2 needs parents decaying to (q1, q2, b); topology {topology.name!r} has {products}")
        scan = PairScan(jets, topology, self.max_jets)
        top = scan.tuple_mass()
        w = scan.tuple_mass([products.index(p) for p in self.w_products])
        cost = ((top - self.top_mass) / self.top_sigma) ** 2 + ((w - self.w_mass) / self.w_sigma) ** 2
        if self.btag_aware:
            tagged = jets.features["btag"] > 0.5
            untagged_b = (~scan.tuple_values(tagged, products.index(self.b_product))).astype(np.int64)
            n_tags = (tagged[:, : scan.n_jets] & jets.mask[:, : scan.n_jets]).sum(axis=1)
            allowed = np.maximum(0, 2 - n_tags)[:, None]

        def joint(rows: slice, a: np.ndarray, b: np.ndarray) -> np.ndarray:
            total = cost[rows][:, a] + cost[rows][:, b]
            if self.btag_aware:
                untagged = untagged_b[rows][:, a] + untagged_b[rows][:, b]
                total = np.where(untagged <= allowed[rows], total, np.inf)
            return total

        return scan.minimise(joint)


@dataclass
class MassAsymmetry:
    """Minimal relative mass difference of two identical parents over all disjoint k-tuples."""

    name: str = "mass_asymmetry"
    max_jets: int | None = None

    def required_features(self, topology: Topology) -> tuple[str, ...]:
        return ()

    def assign(self, jets: JetInputs, topology: Topology) -> JetAssignment:
        scan = PairScan(jets, topology, self.max_jets)
        mass = scan.tuple_mass()

        def joint(rows: slice, a: np.ndarray, b: np.ndarray) -> np.ndarray:
            ma, mb = mass[rows][:, a], mass[rows][:, b]
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.abs(ma - mb) / (ma + mb)

        return scan.minimise(joint)


