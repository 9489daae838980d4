"""Turn a batch of Pythia events into NanoAOD-like columns, and write them as a ROOT TTree.

Branch names follow NanoAOD (``nJet``, ``Jet_pt``, ``GenPart_genPartIdxMother``, ``MET_pt``,
``genWeight``, ``run``, ``luminosityBlock``, ``event``) so that coffea's ``NanoAODSchema``
opens the files with working ``events.Jet`` and ``events.GenPart.parent``. Truth labels:

- ``Jet_truthParent``: index of the parent whose decay quark is matched to the jet, or -1;
- ``Jet_truthProduct``: the quark's decay-product slot in the topology, or -1;
- ``Electron_truthParent``, ``Muon_truthParent``, ... the same for a charged lepton of a
  leptonic decay (samples with one: ``Electron`` and ``Muon`` are written only for those).
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from pairhunt.generate.detector import DetectorConfig, kinematics, reconstruct
from pairhunt.generate.samples import Sample
from pairhunt.generate.truth import LABELS, LEPTON_MATCH_DR, FlatRecord, TreeNode, jet_labels, match_exclusive

# collections that carry truth labels (truthParent, truthProduct)
LABELLED_COLLECTIONS = ("Jet", "Electron", "Muon")

# NanoAOD GenPart statusFlags bits
IS_HARD_PROCESS = 1 << 7
FROM_HARD_PROCESS = 1 << 8
IS_FIRST_COPY = 1 << 12
IS_LAST_COPY = 1 << 13


def _pad(array: ak.Array, width: int) -> np.ndarray:
    """Jagged float array -> ``[events, width]`` with NaN padding."""
    padded = ak.fill_none(ak.pad_none(array, width, axis=1, clip=True), np.nan)
    return ak.to_numpy(padded).astype(np.float64).reshape(len(array), width)


def _parent_trees(record: FlatRecord, sample: Sample, n_events: int) -> tuple[list[TreeNode], np.ndarray]:
    """Decay trees of both parents, concatenated (parent 0's nodes first), and each node's parent."""
    parents = record.hard_parents(sample.decay.pdg, n_events)
    nodes: list[TreeNode] = []
    parent_of_node = []
    for p, decay in enumerate(sample.decays):
        tree = record.decay_tree(parents[:, p], decay)
        offset = len(nodes)
        nodes.extend(TreeNode(n.index, n.mother + offset if n.mother >= 0 else -1, n.slot, n.lepton) for n in tree)
        parent_of_node += [p] * len(tree)
    return nodes, np.array(parent_of_node)


def _match_leptons(record: FlatRecord, nodes: list[TreeNode], node_index: np.ndarray, node_parent: np.ndarray, reco: dict) -> tuple[dict, int]:
    """Electron and Muon records with their truth labels (charged leptons of the decay trees
    matched within ``LEPTON_MATCH_DR``, by flavour, exclusively), and how many were matched."""
    collections, n_matched = {}, 0
    lepton_nodes = [k for k, n in enumerate(nodes) if n.lepton]
    truth = node_index[:, lepton_nodes]
    flavour = np.abs(record.pdg[np.maximum(truth, 0)])
    for name, key, pdg in (("Electron", "electrons", 11), ("Muon", "muons", 13)):
        leptons = reco[key]
        n_leptons = ak.to_numpy(ak.num(leptons))
        width = int(n_leptons.max(initial=0))
        eta, phi = record.eta_phi(np.where((truth >= 0) & (flavour == pdg), truth, -1))
        matched = match_exclusive(eta, phi, _pad(leptons.eta, width), _pad(leptons.phi, width), LEPTON_MATCH_DR)
        n_matched += int((matched >= 0).sum())
        slots = np.array([nodes[k].slot for k in lepton_nodes])
        for field, labels in zip(LABELS, jet_labels(matched, node_parent[lepton_nodes], slots, n_leptons)):
            leptons = ak.with_field(leptons, labels, field)
        collections[name] = leptons
    return collections, n_matched


def _gen_particles(record: FlatRecord, index: np.ndarray, mothers: np.ndarray, flags: np.ndarray) -> ak.Array:
    """GenPart record array from global particle indices ``[events, nodes]``."""
    i = index.ravel()
    pt, eta, phi, mass = kinematics(record.px[i], record.py[i], record.pz[i], record.e[i])
    shape = index.shape
    columns = {
        "pt": pt.astype(np.float32),
        "eta": eta.astype(np.float32),
        "phi": phi.astype(np.float32),
        "mass": mass.astype(np.float32),
        "pdgId": record.pdg[i].astype(np.int32),
        "status": np.abs(record.status[i]).astype(np.int32),
        "statusFlags": np.broadcast_to(flags, shape).ravel().astype(np.int32),
        "genPartIdxMother": np.broadcast_to(mothers, shape).ravel().astype(np.int32),
    }
    counts = np.full(shape[0], shape[1])
    return ak.unflatten(ak.zip({k: v for k, v in columns.items()}), counts)


def build_events(
    batch: ak.Array,
    sample: Sample,
    rng: np.random.Generator,
    detector: DetectorConfig,
    first_event: int,
    luminosity_block: int,
) -> tuple[ak.Array, dict[str, int]]:
    """NanoAOD-like events of one batch and counters for the summary.

    Events whose truth decay tree is incomplete in Pythia's record (not expected with forced
    decays) are dropped and counted in ``truth_incomplete``.
    """
    n_events = len(batch)
    record = FlatRecord.from_batch(batch.prt)
    reco = reconstruct(batch.prt, rng, detector, leptons=sample.leptons)
    jets = reco["jets"]
    n_jets = ak.to_numpy(ak.num(jets))
    n_jets_max = int(n_jets.max(initial=0))
    matched_jet = np.full((n_events, 0), -1, dtype=np.int64)  # no quarks without a decay
    quark_parent = quark_slot = np.zeros(0, dtype=np.int64)
    stats = {"events": n_events, "truth_incomplete": 0, "quarks": 0, "quarks_matched": 0, "leptons": 0, "leptons_matched": 0}
    leptons: dict[str, ak.Array] = {}

    if sample.decay is not None:
        nodes, node_parent = _parent_trees(record, sample, n_events)
        node_index = np.stack([n.index for n in nodes], axis=1)
        complete = (node_index >= 0).all(axis=1)
        quark_nodes = [k for k, n in enumerate(nodes) if n.slot is not None and not n.lepton]
        eta, phi = record.eta_phi(np.where(complete[:, None], node_index[:, quark_nodes], -1))
        matched_jet = match_exclusive(eta, phi, _pad(jets.eta, n_jets_max), _pad(jets.phi, n_jets_max))
        quark_parent = node_parent[quark_nodes]
        quark_slot = np.array([nodes[k].slot for k in quark_nodes])
        if sample.leptons:
            leptons, stats["leptons_matched"] = _match_leptons(record, nodes, np.where(complete[:, None], node_index, -1), node_parent, reco)
            stats["leptons"] = int(complete.sum()) * sum(n.lepton for n in nodes)
        mothers = np.array([n.mother for n in nodes])
        flags = np.array(
            [
                FROM_HARD_PROCESS
                | (IS_HARD_PROCESS | IS_LAST_COPY if n.mother < 0 else 0)
                | (IS_FIRST_COPY if n.slot is not None else IS_LAST_COPY)
                for n in nodes
            ]
        )
        stats["truth_incomplete"] = int((~complete).sum())
        stats["quarks"] = int(complete.sum()) * len(quark_nodes)
        stats["quarks_matched"] = int((matched_jet >= 0).sum())
        gen_index = np.where(complete[:, None], node_index, 0)
    else:
        outgoing = np.flatnonzero(np.abs(record.status) == 23)
        event = np.searchsorted(record.offsets, outgoing, side="right") - 1
        complete = np.bincount(event, minlength=n_events) == 2
        gen_index = np.zeros((n_events, 2), dtype=np.int64)
        gen_index[complete] = outgoing[complete[event]].reshape(-1, 2)
        mothers = np.array([-1, -1])
        flags = np.full(2, IS_HARD_PROCESS | FROM_HARD_PROCESS | IS_FIRST_COPY)
        stats["truth_incomplete"] = int((~complete).sum())

    for field, labels in zip(LABELS, jet_labels(matched_jet, quark_parent, quark_slot, n_jets)):
        jets = ak.with_field(jets, labels, field)
    weights = batch.info.weights
    gen_weight = ak.to_numpy(ak.fill_none(ak.firsts(weights), 1.0)).astype(np.float32)
    events = ak.zip(
        {
            "run": np.ones(n_events, dtype=np.uint32),
            "luminosityBlock": np.full(n_events, luminosity_block, dtype=np.uint32),
            "event": np.arange(first_event, first_event + n_events, dtype=np.uint64),
            "genWeight": gen_weight,
            "Jet": jets,
            **leptons,
            "GenPart": _gen_particles(record, gen_index, mothers, flags),
            "MET": ak.zip({"pt": reco["met_pt"], "phi": reco["met_phi"]}),
        },
        depth_limit=1,
    )
    return events[complete], stats


class NanoAODWriter:
    """Append event batches to the ``Events`` TTree of a new ROOT file.

    ``mktree`` + ``extend`` write a TTree (plain assignment would write an RNTuple, which
    coffea reads without Jet behaviours); records give ``nJet``-style counters.
    """

    def __init__(self, path: str | Path):
        self._file = uproot.recreate(path)
        self._tree = None

    def write(self, events: ak.Array) -> None:
        columns = {field: events[field] for field in events.fields}
        if self._tree is None:
            self._tree = self._file.mktree("Events", {k: v.type.content for k, v in columns.items()})
        self._tree.extend(columns)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> NanoAODWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
