"""Parent candidates from any jet assignment, summed in float64 with ``vector``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import vector

from pairhunt.assign.base import JetAssignment
from pairhunt.inputs import JetInputs


@dataclass
class Candidates:
    """Four-momenta of the parent candidates, ``[events, parents]``; NaN where a parent is empty."""

    p4: vector.MomentumNumpy4D
    complete: np.ndarray  # [events, parents] the parent has a jet in every product slot

    def keeping(self, kept: np.ndarray) -> Candidates:
        """The same candidates with those not ``kept`` (``[events, parents]``) left incomplete."""
        return Candidates(p4=self.p4, complete=self.complete & kept)

    @property
    def mass(self) -> np.ndarray:
        return np.where(self.complete, self.p4.mass, np.nan)

    @property
    def pt(self) -> np.ndarray:
        return np.where(self.complete, self.p4.pt, np.nan)

    @property
    def mass_average(self) -> np.ndarray:
        """Mean parent mass per event (NaN unless every parent is complete)."""
        return self.mass.mean(axis=1)


def build_candidates(
    jets: JetInputs, assignment: JetAssignment, n_parents: int, n_products: int | Sequence[int] | None = None
) -> Candidates:
    """Sum the jets of each parent.

    A parent is complete when ``n_products`` jets (a number per parent, or one for all) are
    assigned to it (any number >= 1 when ``n_products`` is None, for methods whose parents have
    no fixed multiplicity).
    """
    px, py, pz, energy = jets.four_momenta()
    member = assignment.parent[:, None, :] == np.arange(n_parents)[None, :, None]  # [E, P, N]
    member &= jets.mask[:, None, :]
    p4 = vector.array(
        {
            "px": (member * px[:, None, :]).sum(axis=2),
            "py": (member * py[:, None, :]).sum(axis=2),
            "pz": (member * pz[:, None, :]).sum(axis=2),
            "E": (member * energy[:, None, :]).sum(axis=2),
        }
    )
    n_members = member.sum(axis=2)
    complete = n_members >= 1 if n_products is None else n_members == np.asarray(n_products)
    return Candidates(p4=p4, complete=complete)


def pair_mass_fractions(jets: JetInputs, assignment: JetAssignment, candidates: Candidates) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest m_ij² / m² over the pairs of jets inside each candidate, ``[events, parents]``
    (NaN for incomplete candidates or those of one jet): the Dalitz variables of a three-body
    decay, spread evenly for a heavy particle's decay and hierarchical for QCD radiation."""
    first, second = np.triu_indices(jets.width, k=1)
    px, py, pz, energy = (a[:, first] + a[:, second] for a in jets.four_momenta())  # [events, pairs]
    pair_mass2 = energy**2 - px**2 - py**2 - pz**2
    parent = assignment.parent[:, first]
    same = (parent == assignment.parent[:, second]) & jets.mask[:, first] & jets.mask[:, second]
    mass2 = candidates.mass**2
    bounds = []
    for p in range(mass2.shape[1]):
        inside = same & (parent == p)
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = pair_mass2 / mass2[:, p, None]
        low, high = np.where(inside, fraction, np.inf).min(axis=1), np.where(inside, fraction, -np.inf).max(axis=1)
        valid = inside.any(axis=1) & candidates.complete[:, p]
        bounds.append((np.where(valid, low, np.nan), np.where(valid, high, np.nan)))
    return np.stack([b[0] for b in bounds], axis=1), np.stack([b[1] for b in bounds], axis=1)
