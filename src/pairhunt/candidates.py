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
