"""Per-event results of a chunk, written as one parquet file for users to join back to NanoAOD.

Keys: ``run``, ``luminosityBlock``, ``event`` (and the dataset in the path). Per event its
generator ``weight`` (1 without ``genWeight``), ``n_jets`` (selected jets before keeping the
leading ones), ``ht`` (scalar pT sum of the kept jets) and their ``sphericity`` and
``aplanarity``, so an analysis of the table alone (the anomaly methods) weights and describes
events as the histograms do. For each method ``M``: ``M_mass``, ``M_pt``, ``M_eta``, ``M_phi``,
``M_dalitz_min``, ``M_dalitz_max`` (per parent candidate; the last two: smallest and largest
m_ij² / m² over its jet pairs), ``M_mavg``, optionally ``M_score``, for SPA-NET models with
detection outputs ``M_detection_<parent>`` (the probability, whatever the detection cut), for
models with event-level heads ``M_regression_<target>`` (the value) and ``M_classification_<target>``
(the class probabilities), and
per jet of the input file's collection, in its original order (for a merged input: per object of its
collections, one collection after the other), ``M_jet_parent`` and ``M_jet_product`` (-1 for jets
the selection dropped or the method left unassigned); with top-k decoding, per rank r the summed
log-probability ``M_top<r>_score`` and ``M_top<r>_jet_parent``, ``M_top<r>_jet_product``. Events the selection rejected are kept,
with ``selected = False`` and NaN masses, so the table has one row per event read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import awkward as ak
import numpy as np

from pairhunt.assign.base import JetAssignment
from pairhunt.atomic import atomic_path
from pairhunt.candidates import Candidates, pair_mass_fractions
from pairhunt.contract import detection_output
from pairhunt.inputs import JetInputs, event_shape
from pairhunt.padding import scatter_to_jagged

KEYS = ("run", "luminosityBlock", "event")


class EventTable:
    """Collects the columns of one chunk; ``write`` puts them in a parquet file."""

    def __init__(self, events, selected: np.ndarray, jets: JetInputs, jet_counts: np.ndarray, weights: np.ndarray):
        """``jet_counts``: objects per event of the input's collection (all merged collections');
        ``weights``: the generator weight of every event read."""
        self.selected = selected
        self.jets = jets
        self.n_events = len(selected)
        self.jet_counts = jet_counts
        self.columns: dict[str, object] = {k: ak.to_numpy(events[k]) for k in KEYS if k in events.fields}
        self.columns["selected"] = selected
        self.columns["weight"] = np.asarray(weights, dtype=np.float64)
        self.columns["n_jets"] = self._expand(np.asarray(jets.multiplicity, dtype=np.int32), 0)
        self.columns["ht"] = self._expand(np.where(jets.mask, jets.pt, 0.0).sum(axis=1), np.nan)
        sphericity, aplanarity = event_shape(jets)
        self.columns["sphericity"] = self._expand(sphericity, np.nan)
        self.columns["aplanarity"] = self._expand(aplanarity, np.nan)
        self._index = self._expand(jets.index, -1)

    def _expand(self, values: np.ndarray, fill) -> np.ndarray:
        """Selected-event rows -> all-event rows, ``fill`` for rejected events."""
        full = np.full((self.n_events, *values.shape[1:]), fill, dtype=values.dtype)
        full[self.selected] = values
        return full

    def add_method(self, name: str, assignment: JetAssignment, candidates: Candidates, parents: Sequence[str]) -> None:
        self.columns[f"{name}_mass"] = self._expand(candidates.mass, np.nan)
        for field in ("pt", "eta", "phi"):
            values = np.where(candidates.complete, getattr(candidates.p4, field), np.nan)
            self.columns[f"{name}_{field}"] = self._expand(values, np.nan)
        smallest, largest = pair_mass_fractions(self.jets, assignment, candidates)
        self.columns[f"{name}_dalitz_min"] = self._expand(smallest, np.nan)
        self.columns[f"{name}_dalitz_max"] = self._expand(largest, np.nan)
        self.columns[f"{name}_mavg"] = self._expand(candidates.mass_average, np.nan)
        if assignment.score is not None:
            self.columns[f"{name}_score"] = self._expand(assignment.score.astype(np.float64), np.nan)
        if assignment.detection is not None:
            for p, parent in enumerate(parents):
                self.columns[f"{name}_{detection_output(parent)}"] = self._expand(assignment.detection[:, p], np.nan)
        for head, values in assignment.heads.items():
            self.columns[f"{name}_{head}"] = self._expand(values, np.nan)
        self._add_jets(name, assignment)
        for rank, alternative in enumerate(assignment.ranked, start=1):
            self.columns[f"{name}_top{rank}_score"] = self._expand(alternative.score.astype(np.float64), np.nan)
            self._add_jets(f"{name}_top{rank}", alternative)

    def _add_jets(self, prefix: str, assignment: JetAssignment) -> None:
        for label, values in (("parent", assignment.parent), ("product", assignment.product)):
            full = self._expand(values, -1)
            self.columns[f"{prefix}_jet_{label}"] = scatter_to_jagged(full, self._index, self.jet_counts)

    def write(self, output_dir: str | Path, dataset: str, metadata: dict) -> Path:
        filename = str(metadata.get("filename", "events"))
        tag = hashlib.sha1(filename.encode()).hexdigest()[:8]
        stem = Path(filename).name.removesuffix(".root")
        start, stop = metadata.get("entrystart", 0), metadata.get("entrystop", self.n_events)
        path = Path(output_dir) / "events" / dataset / f"{stem}-{tag}-{start}-{stop}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            ak.to_parquet(ak.zip(dict(self.columns), depth_limit=1), tmp)
        return path
