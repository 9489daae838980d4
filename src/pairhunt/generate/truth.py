"""Truth record navigation and parton-to-jet matching, vectorised over events.

Pythia's event record is read as flat numpy arrays (one entry per particle of the batch), so
following mother/daughter links is fancy indexing with global indices: no loop over events.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from pairhunt.generate.samples import Decay, Invisible, Lepton

MATCH_DR = 0.4
LEPTON_MATCH_DR = 0.1  # a charged lepton and its reconstructed electron or muon
CHARGED_LEPTONS = (11, 13)
NEUTRINOS = (12, 14, 16)
LABELS = ("truthParent", "truthProduct")  # per-jet truth fields (branches Jet_truthParent, Jet_truthProduct)
_MAX_COPIES = 200  # recoil copies of one particle in Pythia's record are far fewer


@dataclass(frozen=True)
class TreeNode:
    """One particle of a decay tree: global indices per event, its mother's node position."""

    index: np.ndarray
    mother: int  # position of the mother node in the tree list, -1 for the root
    slot: int | None  # decay-product slot for final quarks and charged leptons, None for the others
    lepton: bool = False  # a charged lepton (matched to Electron/Muon, not to jets)


@dataclass(frozen=True)
class FlatRecord:
    """Particle columns of a batch of events, flattened; indices are global (batch-wide)."""

    pdg: np.ndarray
    status: np.ndarray
    mother1: np.ndarray
    daughter1: np.ndarray
    daughter2: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    offsets: np.ndarray  # first global index of every event

    @classmethod
    def from_batch(cls, prt: ak.Array) -> FlatRecord:
        counts = ak.to_numpy(ak.num(prt))
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        event_offset = np.repeat(offsets, counts)

        def flat(x: ak.Array) -> np.ndarray:
            return ak.to_numpy(ak.flatten(x)).astype(np.int64)

        def link(x: ak.Array) -> np.ndarray:
            local = flat(x)
            return np.where(local > 0, local + event_offset, -1)

        return cls(
            pdg=flat(prt.id),
            status=flat(prt.status),
            mother1=link(prt.mother1),
            daughter1=link(prt.daughter1),
            daughter2=link(prt.daughter2),
            px=ak.to_numpy(ak.flatten(prt.p.px)),
            py=ak.to_numpy(ak.flatten(prt.p.py)),
            pz=ak.to_numpy(ak.flatten(prt.p.pz)),
            e=ak.to_numpy(ak.flatten(prt.p.e)),
            offsets=offsets,
        )

    def last_copy(self, index: np.ndarray) -> np.ndarray:
        """Follow the particle through recoil copies and its own radiation to its last copy.

        A step moves to the daughter (``daughter1`` or ``daughter2``) with the same id: a
        recoil copy or, in a branching like t -> t g, the radiating particle.
        """
        index = index.copy()
        for _ in range(_MAX_COPIES):
            valid = index >= 0
            safe = np.maximum(index, 0)
            step = np.full_like(index, -1)
            for daughter in (self.daughter2, self.daughter1):
                d = np.where(valid, daughter[safe], -1)
                same = (d >= 0) & (self.pdg[np.maximum(d, 0)] == self.pdg[safe])
                step = np.where(same, d, step)
            if (step < 0).all():
                return index
            index = np.where(step >= 0, step, index)
        raise RuntimeError("particle copy chain longer than expected")

    def hard_parents(self, pdg: int, n_events: int) -> np.ndarray:
        """Global indices ``[events, 2]`` of the two hard-process particles with ``|id| == pdg``.

        Particles come first, antiparticles second (top before antitop); identical Majorana
        particles (gluinos) keep record order. ``-1`` where the event has fewer than two.
        """
        candidate = (np.abs(self.status) == 22) & (np.abs(self.pdg) == pdg)
        index = np.flatnonzero(candidate)
        event = np.searchsorted(self.offsets, index, side="right") - 1
        order = np.lexsort((index, self.pdg[index] < 0, event))
        index, event = index[order], event[order]
        rank = np.arange(len(index)) - np.searchsorted(event, event, side="left")
        out = np.full((n_events, 2), -1, dtype=np.int64)
        keep = rank < 2
        out[event[keep], rank[keep]] = index[keep]
        return out

    def decay_tree(self, particle: np.ndarray, decay: Decay) -> list[TreeNode]:
        """The nodes of ``decay`` below ``particle`` (global indices ``[n]``), parent first.

        Intermediate particles are their last copy (the one that decays); decay products
        are the first copy after the decay (the daughter itself). Composite products,
        charged leptons and neutrinos are identified by |id|, quark slots take the remaining
        daughters in record order. Missing nodes get index ``-1``.
        """
        last = self.last_copy(particle)
        nodes = [TreeNode(last, -1, None)]
        valid = last >= 0
        d1 = np.where(valid, self.daughter1[np.maximum(last, 0)], -1)
        d2 = np.where(valid, self.daughter2[np.maximum(last, 0)], -1)
        n_children = len(decay.products)
        valid &= (d1 >= 0) & (d2 - d1 + 1 == n_children)
        children = np.where(valid[:, None], d1[:, None] + np.arange(n_children), -1)
        child_pdg = np.abs(self.pdg[np.maximum(children, 0)])
        free = valid[:, None] & np.ones(n_children, dtype=bool)
        rows = np.arange(len(children))
        # products found by id first, so quark slots only see the remaining daughters
        ordered = sorted(decay.products, key=lambda p: isinstance(p, int))
        for product in ordered:
            if isinstance(product, Decay):
                candidate = free & (child_pdg == product.pdg)
            elif isinstance(product, (Lepton, Invisible)):
                candidate = free & np.isin(child_pdg, CHARGED_LEPTONS if isinstance(product, Lepton) else NEUTRINOS)
            else:
                candidate = free
            found = candidate.any(axis=1)
            column = candidate.argmax(axis=1)
            pick = np.where(found, children[rows, column], -1)
            free[rows, column] &= ~found
            if isinstance(product, Decay):
                subtree = self.decay_tree(pick, product)
                offset = len(nodes)
                nodes.extend(
                    TreeNode(n.index, 0 if n.mother < 0 else n.mother + offset, n.slot, n.lepton) for n in subtree
                )
            elif isinstance(product, Lepton):
                nodes.append(TreeNode(pick, 0, product.slot, lepton=True))
            else:
                nodes.append(TreeNode(pick, 0, None if isinstance(product, Invisible) else product))
        return nodes

    def eta_phi(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pseudorapidity and azimuth of particles (NaN where ``index < 0``)."""
        i = np.maximum(index, 0)
        pt = np.hypot(self.px[i], self.py[i])
        eta = np.arcsinh(np.divide(self.pz[i], pt, out=np.full_like(pt, np.inf), where=pt > 0))
        phi = np.arctan2(self.py[i], self.px[i])
        missing = index < 0
        return np.where(missing, np.nan, eta), np.where(missing, np.nan, phi)


def delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Azimuthal difference wrapped to [-pi, pi)."""
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def match_exclusive(
    quark_eta: np.ndarray,
    quark_phi: np.ndarray,
    jet_eta: np.ndarray,
    jet_phi: np.ndarray,
    max_dr: float = MATCH_DR,
) -> np.ndarray:
    """Greedy exclusive matching by smallest ΔR: each quark to at most one jet and vice versa.

    Inputs are padded ``[events, Q]`` and ``[events, J]`` (NaN = absent). Returns the matched
    jet index per quark, ``[events, Q]``, ``-1`` when no free jet lies within ``max_dr``.
    """
    n_events, n_quarks = quark_eta.shape
    n_jets = jet_eta.shape[1]
    matched = np.full((n_events, n_quarks), -1, dtype=np.int64)
    if n_jets == 0 or n_quarks == 0:
        return matched
    dr = np.hypot(
        quark_eta[:, :, None] - jet_eta[:, None, :],
        delta_phi(quark_phi[:, :, None], jet_phi[:, None, :]),
    )
    dr = np.where(np.isfinite(dr), dr, np.inf)
    rows = np.arange(n_events)
    for _ in range(min(n_quarks, n_jets)):
        best = dr.reshape(n_events, -1).argmin(axis=1)
        q, j = np.divmod(best, n_jets)
        ok = dr[rows, q, j] < max_dr
        matched[rows[ok], q[ok]] = j[ok]
        dr[rows[ok], q[ok], :] = np.inf
        dr[rows[ok], :, j[ok]] = np.inf
        if not ok.any():
            break
    return matched


def jet_labels(
    matched_jet: np.ndarray, quark_parent: np.ndarray, quark_slot: np.ndarray, n_jets: np.ndarray
) -> tuple[ak.Array, ak.Array]:
    """Per-jet truth parent and product slot (-1: no quark) from :func:`match_exclusive`'s output.

    ``matched_jet`` is ``[events, Q]``; ``quark_parent``/``quark_slot`` (``[Q]``) say whose
    product each quark column is; ``n_jets`` are the jet counts of the jagged result.
    """
    width = int(n_jets.max(initial=0))
    jet_parent = np.full((len(n_jets), width), -1, dtype=np.int32)
    jet_product = np.full((len(n_jets), width), -1, dtype=np.int32)
    rows, cols = np.nonzero(matched_jet >= 0)
    jet_parent[rows, matched_jet[rows, cols]] = quark_parent[cols]
    jet_product[rows, matched_jet[rows, cols]] = quark_slot[cols]
    valid = np.arange(width)[None, :] < n_jets[:, None]
    return ak.unflatten(jet_parent[valid], n_jets), ak.unflatten(jet_product[valid], n_jets)
