"""Sample definitions: Pythia8 settings and the truth decay tree of each generated process.

A sample knows three things: how to configure Pythia, which hard-process particles are the
*parents* we later reconstruct, and how each parent decays to quarks. The decay tree fixes the
decay-product slot numbers written to ``Jet_truthProduct``; they follow the slot order of the
topology configs (``ttbar_allhad``: q1, q2, b; ``pair_3body``: q1, q2, q3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pairhunt.errors import PairhuntError
from pairhunt.generate.slha import neutralino_decay_table, rpv_gluino_slha, rpv_stop_slha

TOP_MASS = 172.5
SQRT_S = 13000.0

COMMON_SETTINGS = (
    f"Beams:eCM = {SQRT_S}",
    "Print:quiet = on",
    "Random:setSeed = on",
    "SLHA:verbose = 0",
)


@dataclass(frozen=True)
class Lepton:
    """A charged-lepton decay product (e or mu) in product slot ``slot``; matched to Electron/Muon."""

    slot: int


@dataclass(frozen=True)
class Invisible:
    """A neutrino among the decay products: no slot, it is part of the MET."""


@dataclass(frozen=True)
class Decay:
    """A particle (|PDG id|) and its decay products: nested ``Decay``, an int (quark) product
    slot, a :class:`Lepton` or an :class:`Invisible`."""

    pdg: int
    products: tuple[Decay | int | Lepton | Invisible, ...]

    def slots(self) -> list[int]:
        """Product slots of all final quarks and leptons below this node, in tree order."""
        out: list[int] = []
        for product in self.products:
            if isinstance(product, Decay):
                out.extend(product.slots())
            elif isinstance(product, Lepton):
                out.append(product.slot)
            elif not isinstance(product, Invisible):
                out.append(product)
        return out

    @property
    def has_leptons(self) -> bool:
        return any(isinstance(p, Lepton) or (isinstance(p, Decay) and p.has_leptons) for p in self.products)


@dataclass(frozen=True)
class Sample:
    """Everything needed to generate one sample and label its truth."""

    name: str
    settings: tuple[str, ...]
    decay: Decay | None  # None: no parents (QCD multijet)
    slha: str | None = None
    weighted: bool = False
    parameters: dict[str, float] = field(default_factory=dict)
    second_decay: Decay | None = None  # the second parent's decay where it differs (semi-leptonic ttbar)

    @property
    def decays(self) -> tuple[Decay, Decay]:
        """The decay of each of the two parents (particle first, antiparticle second)."""
        return (self.decay, self.second_decay or self.decay)

    @property
    def products_per_parent(self) -> tuple[int, int]:
        """Decay products (quarks and charged leptons) of each parent."""
        return (0, 0) if self.decay is None else tuple(len(d.slots()) for d in self.decays)

    @property
    def leptons(self) -> bool:
        """Whether a parent decays to a charged lepton: the detector then reconstructs isolated leptons."""
        return self.decay is not None and any(d.has_leptons for d in self.decays)


SAMPLE_NAMES = ("ttbar", "ttbar-semileptonic", "gluino", "gluino-cascade", "stop", "qcd")

TTBAR_PRODUCTION = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", f"6:m0 = {TOP_MASS}", "6:onMode = off", "6:onIfMatch = 5 24")
# t -> b W -> b q q': slots q1, q2 from the W, b from the top
HADRONIC_TOP = Decay(6, (Decay(24, (0, 1)), 2))


def make_sample(
    name: str,
    *,
    mass: float = 1500.0,
    mchi: float = 500.0,
    pthat_min: float = 250.0,
    bias_pow: float = 4.0,
) -> Sample:
    """Build a :class:`Sample`; raises ``PairhuntError`` for unknown names or unphysical masses."""
    if name not in SAMPLE_NAMES:
        raise PairhuntError(f"unknown sample {name!r}; choose one of {', '.join(SAMPLE_NAMES)}")
    if name == "ttbar":
        return Sample(
            name="ttbar",
            settings=(*TTBAR_PRODUCTION, "24:onMode = off", "24:onIfAny = 1 2 3 4 5"),
            decay=HADRONIC_TOP,
            parameters={"top_mass": TOP_MASS},
        )
    if name == "ttbar-semileptonic":
        return Sample(
            name="ttbar-semileptonic",
            # W+ -> q q', W- -> l nu (l = e, mu): the top decays hadronically, the antitop leptonically
            settings=(*TTBAR_PRODUCTION, "24:onMode = off", "24:onPosIfAny = 1 2 3 4 5", "24:onNegIfAny = 11 13"),
            decay=HADRONIC_TOP,
            # antitop -> b W- -> b l nu: slots b, l (topology ttbar_semilep)
            second_decay=Decay(6, (Decay(24, (Lepton(1), Invisible())), 0)),
            parameters={"top_mass": TOP_MASS},
        )
    if name == "qcd":
        if pthat_min <= 0:
            raise PairhuntError(f"--pthat-min must be positive, got {pthat_min}")
        if bias_pow < 0:
            raise PairhuntError(f"--bias-pow must not be negative, got {bias_pow}")
        return Sample(
            name="qcd",
            settings=(
                "HardQCD:all = on",
                f"PhaseSpace:pTHatMin = {pthat_min}",
                # pTHat-biased phase space: events sampled with an extra (pTHat / pTHatMin)^pow,
                # compensated by event weights; a lower pow gives flatter weights
                "PhaseSpace:bias2Selection = on",
                f"PhaseSpace:bias2SelectionPow = {bias_pow}",
                f"PhaseSpace:bias2SelectionRef = {pthat_min}",
            ),
            decay=None,
            weighted=True,
            parameters={"pthat_min": pthat_min, "bias_pow": bias_pow},
        )
    if mass <= 0:
        raise PairhuntError(f"--mass must be positive, got {mass}")
    if name == "stop":
        return Sample(
            name="stop",
            settings=("SUSY:gg2squarkantisquark = on", "SUSY:qqbar2squarkantisquark = on", "SUSY:idA = 1000006", "SUSY:idB = 1000006"),
            # a two-body decay, slots q1, q2: paired dijets, a different decay from the gluinos' three quarks
            decay=Decay(1000006, (0, 1)),
            slha=rpv_stop_slha(mass),
            parameters={"mass": mass},
        )
    gluino_settings = ("SUSY:gg2gluinogluino = on", "SUSY:qqbar2gluinogluino = on")
    if name == "gluino":
        return Sample(
            name="gluino",
            settings=gluino_settings,
            decay=Decay(1000021, (0, 1, 2)),
            slha=rpv_gluino_slha(mass),
            parameters={"mass": mass},
        )
    if not 0 < mchi < mass:
        raise PairhuntError(f"need 0 < --mchi < --mass, got mchi={mchi}, mass={mass}")
    return Sample(
        name="gluino-cascade",
        settings=gluino_settings,
        # slots: q1, q2 from the gluino; q3, q4, q5 from the neutralino
        decay=Decay(1000021, (0, 1, Decay(1000022, (2, 3, 4)))),
        slha=rpv_gluino_slha(mass, neutralino=neutralino_decay_table(mchi)),
        parameters={"mass": mass, "mchi": mchi},
    )
