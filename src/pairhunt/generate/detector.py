"""A simple detector: anti-kT R=0.4 jets from visible particles, energy smearing, b-tagging, MET,
and, for samples with leptonic decays, isolated electrons and muons (kept out of the jets).

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
    lepton_pt_min: float = 10.0
    electron_eta_max: float = 2.5
    muon_eta_max: float = 2.4
    electron_resolution: float = 0.02  # sigma/pT
    muon_resolution: float = 0.01
    isolation_cone: float = 0.3
    isolation_max: float = 0.15  # scalar pT sum of the other visible particles in the cone / lepton pT


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


def isolated_leptons(particles: ak.Array, pdg: ak.Array, config: DetectorConfig) -> ak.Array:
    """Which visible particles are isolated electrons or muons in the acceptance (jagged bool).

    Isolation: the scalar pT sum of the other visible particles within ``isolation_cone`` is
    below ``isolation_max`` times the lepton's pT.
    """
    counts = ak.to_numpy(ak.num(particles))
    pt, eta, phi, _ = (ak.unflatten(x, counts) for x in kinematics(*(ak.to_numpy(ak.flatten(particles[c])) for c in ("px", "py", "pz", "e"))))
    flavour = abs(pdg)
    eta_max = ak.where(flavour == 11, config.electron_eta_max, config.muon_eta_max)
    candidate = ((flavour == 11) | (flavour == 13)) & (pt > config.lepton_pt_min) & (abs(eta) < eta_max)
    everything = ak.zip({"pt": pt, "eta": eta, "phi": phi, "index": ak.local_index(pt)})
    pairs = ak.cartesian({"lepton": everything[candidate], "other": everything}, nested=True)
    lepton, other = pairs.lepton, pairs.other
    d_phi = (lepton.phi - other.phi + np.pi) % (2 * np.pi) - np.pi
    near = (np.hypot(lepton.eta - other.eta, d_phi) < config.isolation_cone) & (lepton.index != other.index)
    cone = ak.sum(ak.where(near, other.pt, 0.0), axis=2)
    chosen = everything[candidate][cone < config.isolation_max * everything[candidate].pt].index
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen_global = ak.to_numpy(ak.flatten(chosen + first))
    return ak.unflatten(np.isin(np.arange(counts.sum()), chosen_global), counts)


def smeared_leptons(particles: ak.Array, pdg: ak.Array, flavour: int, rng: np.random.Generator, config: DetectorConfig) -> ak.Array:
    """NanoAOD-like Electron (``flavour`` 11) or Muon (13) records, pT-ordered, momenta smeared."""
    chosen = abs(pdg) == flavour
    p, ids = particles[chosen], pdg[chosen]
    counts = ak.to_numpy(ak.num(p))
    resolution = config.electron_resolution if flavour == 11 else config.muon_resolution
    factor = np.clip(1.0 + resolution * rng.standard_normal(int(counts.sum())), 0.0, None)
    px, py, pz, e = (ak.to_numpy(ak.flatten(p[c])) * factor for c in ("px", "py", "pz", "e"))
    pt, eta, phi, mass = kinematics(px, py, pz, e)
    flat_ids = ak.to_numpy(ak.flatten(ids)).astype(np.int32)
    leptons = ak.unflatten(
        ak.zip(
            {
                "pt": pt.astype(np.float32),
                "eta": eta.astype(np.float32),
                "phi": phi.astype(np.float32),
                "mass": mass.astype(np.float32),
                "charge": (-np.sign(flat_ids)).astype(np.int32),  # PDG: e-, mu- are positive ids
                "pdgId": flat_ids,
            }
        ),
        counts,
    )
    return leptons[ak.argsort(leptons.pt, axis=1, ascending=False)]


def reconstruct(prt: ak.Array, rng: np.random.Generator, config: DetectorConfig, leptons: bool = False) -> dict:
    """Jets (selected, pT-ordered) and MET of a batch of Pythia events; with ``leptons``, also the
    isolated electrons and muons, which then do not enter the jets.

    Returns ``{"jets": record array with pt, eta, phi, mass, btag, hadronFlavour,
    "met_pt": ..., "met_phi": ...}``, with ``leptons`` also ``"electrons"`` and ``"muons"``
    (pt, eta, phi, mass, charge, pdgId).
    """
    import fastjet  # optional dependency (extra "generate")

    counts_all = ak.num(prt)
    invisible = ak.unflatten(np.isin(ak.to_numpy(ak.flatten(abs(prt.id))), INVISIBLE), counts_all)
    transverse = np.hypot(prt.p.px, prt.p.py)
    with np.errstate(divide="ignore", invalid="ignore"):
        in_acceptance = abs(np.arcsinh(prt.p.pz / transverse)) < PARTICLE_ETA_MAX
    visible = (prt.status > 0) & ~invisible & in_acceptance
    particles = prt.p[visible]
    reco_leptons = {}
    lepton_px = lepton_py = 0.0  # the measured leptons' transverse momentum, for the MET
    if leptons:
        pdg = prt.id[visible]
        isolated = isolated_leptons(particles, pdg, config)
        for name, flavour in (("electrons", 11), ("muons", 13)):
            reco_leptons[name] = smeared_leptons(particles[isolated], pdg[isolated], flavour, rng, config)
            lepton_px = lepton_px + ak.sum(reco_leptons[name].pt * np.cos(reco_leptons[name].phi), axis=1)
            lepton_py = lepton_py + ak.sum(reco_leptons[name].pt * np.sin(reco_leptons[name].phi), axis=1)
        particles = particles[~isolated]
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

    # MET: minus the visible transverse momentum, with the jets (and leptons) at their smeared momenta
    sum_px = ak.sum(particles.px, axis=1) + ak.sum(ak.unflatten(spx - px, counts), axis=1) + lepton_px
    sum_py = ak.sum(particles.py, axis=1) + ak.sum(ak.unflatten(spy - py, counts), axis=1) + lepton_py
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
        **reco_leptons,
    }
