"""Assignment methods by name, as the command line and configs give them."""

from __future__ import annotations

from pairhunt.assignment import AssignmentMethod
from pairhunt.baselines import Chi2, MassAsymmetry
from pairhunt.errors import PairhuntError

BASELINES = {
    "chi2": lambda: Chi2(),
    "chi2_btag": lambda: Chi2(name="chi2_btag", btag_aware=True),
    "mass_asymmetry": lambda: MassAsymmetry(),
}

DEFAULT_METHODS = {"ttbar_allhad": ("chi2",), "pair_3body": ("mass_asymmetry",)}


def make_method(spec: str) -> AssignmentMethod:
    """A method from its name: ``chi2``, ``chi2_btag``, ``mass_asymmetry``."""
    if spec in BASELINES:
        return BASELINES[spec]()
    raise PairhuntError(f"unknown assignment method {spec!r}; choose from {sorted(BASELINES)}")
