"""The classic assignments the models must beat.

- :class:`Chi2`: ttbar with known masses, minimise
  (m_bqq - m_t)^2/s_t^2 + (m_qq - m_W)^2/s_W^2 summed over both tops;
- :class:`MassAsymmetry`: two identical parents, minimise |m1 - m2| / (m1 + m2).

Both look at every joint assignment of the leading N jets (tables from
:mod:`pairhunt.assign.combinatorics`): per-parent quantities are computed once per tuple, then the
best disjoint pair is found by the pruned, compiled searches of :mod:`pairhunt.assign.pair_search`,
which return exactly what a full scan of every pair would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pairhunt.assign import pair_search
from pairhunt.assign.base import JetAssignment
from pairhunt.assign.combinatorics import pair_tables
from pairhunt.assign.pair_search import asymmetry_pairs, chi2_pairs
from pairhunt.errors import PairhuntError
from pairhunt.inputs import JetInputs
from pairhunt.topology import Topology


class PairScan:
    """Parent tuples of the leading ``max_jets`` jets, and the assignment from a best pair."""

    def __init__(self, jets: JetInputs, topology: Topology, max_jets: int | None):
        self.jets = jets
        self.n_jets = min(max_jets or jets.width, jets.width)
        self.tuples = pair_tables(topology, self.n_jets)[0]
        self.momenta = tuple(np.ascontiguousarray(x[:, : self.n_jets]) for x in jets.four_momenta())
        self.counts = np.minimum(jets.counts, self.n_jets).astype(np.int64)

    def assignment(self, best_pair: np.ndarray) -> JetAssignment:
        """The assignment from ``[events, 2]`` tuple indices (-1: no valid pair)."""
        slots = np.full((self.jets.n_events, 2, self.tuples.shape[1]), -1, dtype=np.int64)
        found = best_pair[:, 0] >= 0
        slots[found, 0] = self.tuples[best_pair[found, 0]]
        slots[found, 1] = self.tuples[best_pair[found, 1]]
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

    def warm_up(self) -> None:
        pair_search.warm_up()

    def assign(self, jets: JetInputs, topology: Topology) -> JetAssignment:
        products = topology.products[topology.parents[0]]
        missing = {*self.w_products, self.b_product} - set(products)
        if missing or len(products) != 3:
            raise PairhuntError(f"chi2 needs parents decaying to (q1, q2, b); topology {topology.name!r} has {products}")
        scan = PairScan(jets, topology, self.max_jets)
        width = scan.n_jets
        if self.btag_aware:
            tagged = jets.features["btag"][:, :width] > 0.5
            n_tags = (tagged & jets.mask[:, :width]).sum(axis=1)
            untagged = (~tagged).astype(np.int64)
            allowed = np.maximum(0, 2 - n_tags).astype(np.int64)
        else:
            untagged = np.zeros((jets.n_events, width), dtype=np.int64)
            allowed = np.zeros(jets.n_events, dtype=np.int64)
        w_slots = np.array([products.index(p) for p in self.w_products], dtype=np.int64)
        masses = np.array([self.top_mass, self.top_sigma, self.w_mass, self.w_sigma])
        best = chi2_pairs(
            *scan.momenta, scan.counts, scan.tuples, w_slots, masses, products.index(self.b_product), untagged, allowed
        )
        return scan.assignment(best)


@dataclass
class MassAsymmetry:
    """Minimal relative mass difference of two identical parents over all disjoint k-tuples."""

    name: str = "mass_asymmetry"
    max_jets: int | None = None

    def required_features(self, topology: Topology) -> tuple[str, ...]:
        return ()

    def warm_up(self) -> None:
        pair_search.warm_up()

    def assign(self, jets: JetInputs, topology: Topology) -> JetAssignment:
        scan = PairScan(jets, topology, self.max_jets)
        return scan.assignment(asymmetry_pairs(*scan.momenta, scan.counts, scan.tuples))
