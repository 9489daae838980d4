"""A simple detector: anti-kT R=0.4 jets from visible particles, energy smearing, b-tagging, MET.

Everything runs on a whole batch of events at once (FastJet's awkward interface clusters all
events of the batch in one C++ call).
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

JET_R = 0.4
CLUSTER_PT_MIN = 10.0  # GeV, before smearing, so that smearing can lift jets over the cut
GHOST_SCALE = 1e-18
INVISIBLE = (12, 14, 16, 1000022, 1000039)  # neutrinos and stable LSP-like particles
PARTICLE_ETA_MAX = 5.0


@dataclass(frozen=True)
class DetectorConfig:
    """Resolution, acceptance and tagging; defaults are a generic LHC detector."""

    stochastic: float = 1.0  # sigma/E = stochastic/sqrt(E) (+) constant
    constant: float = 0.05
    jet_pt_min: float = 25.0
    jet_eta_max: float = 2.5
    btag_efficiency: float = 0.70
    mistag_rate: float = 0.01


def is_b_hadron(pdg: ak.Array) -> ak.Array:
    """True for hadrons with a b (anti)quark among their constituents (PDG numbering scheme)."""
    a = abs(pdg)
    hadron = (a > 100) & (a < 10000) & ((a // 10) % 10 != 0)
    return hadron & (((a // 100) % 10 == 5) | ((a // 1000) % 10 == 5))


def _momenta(p: ak.Array, scale: float = 1.0) -> ak.Array:
    return ak.zip(
        {"px": p.px * scale, "py": p.py * scale, "pz": p.pz * scale, "E": p.e * scale},
        with_name=None,
    )


def kinematics(px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray):
    """pt, eta, phi, mass of four-momenta (eta 0 for particles along the beam)."""
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pt), where=pt > 0))
    phi = np.arctan2(py, px)
    mass = np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))
    return pt, eta, phi, mass


def reconstruct(prt: ak.Array, rng: np.random.Generator, config: DetectorConfig) -> dict:
    """Jets (selected, pT-ordered) and MET of a batch of Pythia events.

    Returns ``{"jets": record array with pt, eta, phi, mass, btag, hadronFlavour,
    "met_pt": ..., "met_phi": ...}``.
    """
    import fastjet  # optional dependency (extra "generate")

    counts_all = ak.num(prt)
    invisible = ak.unflatten(np.isin(ak.to_numpy(ak.flatten(abs(prt.id))), INVISIBLE), counts_all)
    transverse = np.hypot(prt.p.px, prt.p.py)
    with np.errstate(divide="ignore", invalid="ignore"):
        in_acceptance = abs(np.arcsinh(prt.p.pz / transverse)) < PARTICLE_ETA_MAX
    visible = (prt.status > 0) & ~invisible & in_acceptance
    particles = prt.p[visible]
    b_hadrons = prt.p[is_b_hadron(prt.id)]
    n_visible = ak.num(particles)

    inputs = ak.concatenate([_momenta(particles), _momenta(b_hadrons, GHOST_SCALE)], axis=1)
    sequence = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R))
    jets = sequence.inclusive_jets(min_pt=CLUSTER_PT_MIN)
    constituents = sequence.constituent_index(min_pt=CLUSTER_PT_MIN)
    has_b = ak.any(constituents >= n_visible, axis=2)

    counts = ak.to_numpy(ak.num(jets))
    px, py, pz, e = (ak.to_numpy(ak.flatten(jets[c])) for c in ("px", "py", "pz", "E"))
    sigma = np.hypot(config.stochastic / np.sqrt(np.maximum(e, 1e-3)), config.constant)
    factor = np.clip(1.0 + sigma * rng.standard_normal(len(e)), 0.0, None)
    spx, spy, spz, se = px * factor, py * factor, pz * factor, e * factor

    # MET: minus the visible transverse momentum, with the jets at their smeared momenta
    sum_px = ak.sum(particles.px, axis=1) + ak.sum(ak.unflatten(spx - px, counts), axis=1)
    sum_py = ak.sum(particles.py, axis=1) + ak.sum(ak.unflatten(spy - py, counts), axis=1)
    met_pt = np.hypot(ak.to_numpy(sum_px), ak.to_numpy(sum_py))
    met_phi = np.arctan2(-ak.to_numpy(sum_py), -ak.to_numpy(sum_px))

    pt, eta, phi, mass = kinematics(spx, spy, spz, se)
    flavour_b = ak.to_numpy(ak.flatten(has_b))
    tag_probability = np.where(flavour_b, config.btag_efficiency, config.mistag_rate)
    btag = rng.random(len(e)) < tag_probability
    jet = ak.unflatten(
        ak.zip(
            {
                "pt": pt.astype(np.float32),
                "eta": eta.astype(np.float32),
                "phi": phi.astype(np.float32),
                "mass": mass.astype(np.float32),
                "btag": btag,
                "hadronFlavour": np.where(flavour_b, 5, 0).astype(np.int32),
            }
        ),
        counts,
    )
    jet = jet[(jet.pt > config.jet_pt_min) & (abs(jet.eta) < config.jet_eta_max)]
    jet = jet[ak.argsort(jet.pt, axis=1, ascending=False)]
    return {
        "jets": jet,
        "met_pt": met_pt.astype(np.float32),
        "met_phi": met_phi.astype(np.float32),
    }
