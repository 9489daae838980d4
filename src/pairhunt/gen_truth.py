"""Jet truth labels of real NanoAOD MC, built from ``GenPart`` by the topology's ``truth`` block.

CMS NanoAOD carries no ``Jet_truthParent``/``Jet_truthProduct``; it carries the pruned generator
record. Each decay-product quark is found from below: a particle with one of the product's
|PDG ids| that is not a copy of its mother, whose mother is the last resonance of its ``via``
chain, whose chain leads to a parent (resonances and parents through every recoil copy, whichever
copy emitted them). The quarks are matched to the file's jets with the generator's exclusive ΔR
matching, so the labels mean what ``pairhunt generate`` writes. An event that is not the
topology's decay (a semi-leptonic ttbar for ``ttbar_allhad``) has every label -1.

Particles are flat numpy arrays with batch-wide indices: no loop over events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import awkward as ak
import numpy as np

from pairhunt.errors import PairhuntError
from pairhunt.generate.truth import LABELS, jet_labels, match_exclusive
from pairhunt.padding import to_padded
from pairhunt.topology import Topology

GENPART = "GenPart"
GENPART_FIELDS = ("pdgId", "genPartIdxMother", "eta", "phi")  # what the labels need from GenPart
JET_FIELDS = ("eta", "phi")  # what they need from the jets


def label_branches(topology: Topology) -> tuple[str, ...]:
    """The stored labels of ``pairhunt generate``: ``Jet_truthParent``, ``Jet_truthProduct`` (and
    those of every other collection a merged input reads)."""
    return tuple(f"{c}_{f}" for c in topology.jets.source_collections for f in LABELS)


def per_object(arrays: ak.Array, topology: Topology, field: str) -> ak.Array:
    """``field`` of every object of the assignable input: a merged input's collections one after
    the other, as the processor orders them."""
    parts = [arrays[f"{c}_{field}"] for c in topology.jets.source_collections]
    return ak.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def genpart_branches(topology: Topology) -> tuple[str, ...]:
    """Branches the labels are computed from: GenPart's and the jets' direction (jets only: a
    merged input's leptons are not matched from GenPart)."""
    jets = topology.jets.collection
    return tuple(f"{GENPART}_{f}" for f in GENPART_FIELDS) + tuple(f"{jets}_{f}" for f in JET_FIELDS)


def truth_branches(present: Iterable[str], topology: Topology) -> tuple[str, ...] | None:
    """Branches to read for a file's jet labels: the stored ones, else GenPart's when the topology
    has a truth block; None when the file has neither."""
    present = set(present)
    from_genpart = topology.truth is not None and not topology.jets.sources
    for branches in (label_branches(topology), genpart_branches(topology) if from_genpart else None):
        if branches and present.issuperset(branches):
            return branches
    return None


def truth_requirement(topology: Topology) -> str:
    """What a file needs for truth labels, both ways (for error messages)."""
    block = "" if topology.truth else f", with a truth block in topology {topology.name!r}"
    return (
        f"{', '.join(label_branches(topology))} (pairhunt generate) "
        f"or {', '.join(genpart_branches(topology))} (NanoAOD MC{block})"
    )


def read_labels(arrays: ak.Array, topology: Topology) -> tuple[ak.Array, ak.Array]:
    """Per-jet truth parent and product slot of arrays read with :func:`truth_branches`."""
    if set(label_branches(topology)) <= set(arrays.fields):
        parent, product = (per_object(arrays, topology, label) for label in LABELS)
        return parent, product
    jets = topology.jets.collection
    genpart = ak.zip({f: arrays[f"{GENPART}_{f}"] for f in GENPART_FIELDS})
    return gen_labels(genpart, ak.zip({f: arrays[f"{jets}_{f}"] for f in JET_FIELDS}), topology)


@dataclass(frozen=True)
class GenRecord:
    """GenPart of a batch, flattened: mothers as batch-wide indices, each particle's event."""

    pdg: np.ndarray
    mother: np.ndarray  # -1: none (or outside the event)
    eta: np.ndarray
    phi: np.ndarray
    event: np.ndarray
    n_events: int

    @classmethod
    def from_arrays(cls, genpart: ak.Array) -> GenRecord:
        """From a jagged record with the fields of :data:`GENPART_FIELDS`."""
        counts = ak.to_numpy(ak.num(genpart.pdgId)).astype(np.int64)
        event = np.repeat(np.arange(len(counts)), counts)
        offset = np.repeat(np.cumsum(counts) - counts, counts)
        local = ak.to_numpy(ak.flatten(genpart.genPartIdxMother)).astype(np.int64)
        inside = (local >= 0) & (local < np.repeat(counts, counts))

        def flat(name: str) -> np.ndarray:
            return ak.to_numpy(ak.flatten(genpart[name]))

        return cls(
            pdg=flat("pdgId").astype(np.int64),
            mother=np.where(inside, local + offset, -1),
            eta=flat("eta").astype(np.float64),
            phi=flat("phi").astype(np.float64),
            event=event,
            n_events=len(counts),
        )

    def first_copies(self) -> np.ndarray:
        """First copy of every particle: up the mothers while the PDG id stays the same."""
        index = np.arange(len(self.pdg))
        while True:
            mother = self.mother[index]
            copy = (mother >= 0) & (self.pdg[np.maximum(mother, 0)] == self.pdg[index])
            if not copy.any():
                return index
            index = np.where(copy, mother, index)

    def parent_slots(self, first: np.ndarray, parent_ids: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Parent index (topology order, -1: none) of every particle that is a parent's first copy,
        and per event whether it holds exactly the declared parents.

        Parents with the same PDG id take the particles in record order.
        """
        slot = np.full(len(self.pdg), -1, dtype=np.int64)
        complete = np.ones(self.n_events, dtype=bool)
        for pdg in dict.fromkeys(parent_ids):
            declared = [i for i, p in enumerate(parent_ids) if p == pdg]
            index = np.flatnonzero((first == np.arange(len(self.pdg))) & (self.pdg == pdg))
            event = self.event[index]
            rank = np.arange(len(index)) - np.searchsorted(event, event, side="left")
            complete &= np.bincount(event, minlength=self.n_events) == len(declared)
            keep = rank < len(declared)
            slot[index[keep]] = np.array(declared)[rank[keep]]
        return slot, complete

    def product_parents(self, first: np.ndarray, parent_slot: np.ndarray, pdg_ids: tuple[int, ...], via: tuple[int, ...]) -> np.ndarray:
        """Parent index of every particle that is this product (-1 for the others)."""
        candidate = np.flatnonzero(np.isin(np.abs(self.pdg), pdg_ids) & (first == np.arange(len(self.pdg))))
        ok = np.ones(len(candidate), dtype=bool)
        at = candidate
        for resonance in reversed(via):
            mother = self.mother[at]
            ok &= (mother >= 0) & (np.abs(self.pdg[np.maximum(mother, 0)]) == resonance)
            at = first[np.maximum(mother, 0)]
        mother = self.mother[at]
        parent = np.where(ok & (mother >= 0), parent_slot[first[np.maximum(mother, 0)]], -1)
        out = np.full(len(self.pdg), -1, dtype=np.int64)
        out[candidate] = parent
        return out


def quark_table(record: GenRecord, topology: Topology) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat GenPart index ``[events, quarks]`` of every product (-1 when absent, or the whole
    event when it is not the topology's decay), with each quark column's parent and slot.

    Products with the same specification (W's q1, q2) take the particles in record order.
    """
    truth = topology.truth
    first = record.first_copies()
    parent_slot, complete = record.parent_slots(first, truth.parents)
    owner = {name: record.product_parents(first, parent_slot, spec.pdg_ids, spec.via) for name, spec in truth.products.items()}
    taken = np.zeros(len(record.pdg), dtype=bool)
    columns, quark_parent, quark_slot = [], [], []
    for p, parent in enumerate(topology.parents):
        for s, name in enumerate(topology.products[parent]):
            index = np.flatnonzero((owner[name] == p) & ~taken)
            events, first_of_event = np.unique(record.event[index], return_index=True)
            column = np.full(record.n_events, -1, dtype=np.int64)
            column[events] = index[first_of_event]
            taken[column[column >= 0]] = True
            columns.append(column)
            quark_parent.append(p)
            quark_slot.append(s)
    quarks = np.stack(columns, axis=1)
    complete &= (quarks >= 0).all(axis=1)
    return np.where(complete[:, None], quarks, -1), np.array(quark_parent), np.array(quark_slot)


def gen_labels(genpart: ak.Array, jets: ak.Array, topology: Topology) -> tuple[ak.Array, ak.Array]:
    """Per-jet truth parent and product slot (as ``Jet_truthParent``/``Jet_truthProduct``).

    ``genpart`` has the fields of :data:`GENPART_FIELDS`, ``jets`` ``eta`` and ``phi`` (every
    jet of the file, in file order).
    """
    if topology.truth is None:
        raise PairhuntError(f"topology {topology.name!r} has no truth block: it cannot label jets from GenPart")
    record = GenRecord.from_arrays(genpart)
    quarks, quark_parent, quark_slot = quark_table(record, topology)
    safe = np.maximum(quarks, 0)
    quark_eta = np.where(quarks >= 0, record.eta[safe], np.nan)
    quark_phi = np.where(quarks >= 0, record.phi[safe], np.nan)
    n_jets = ak.to_numpy(ak.num(jets.eta)).astype(np.int64)
    width = int(n_jets.max(initial=0))
    jet_eta = to_padded(jets.eta, width, fill=np.nan)
    jet_phi = to_padded(jets.phi, width, fill=np.nan)
    matched = match_exclusive(quark_eta, quark_phi, jet_eta, jet_phi)
    return jet_labels(matched, quark_parent, quark_slot, n_jets)
