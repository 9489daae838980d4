"""Training data as padded numpy arrays, from pairhunt's NanoAOD-like files or SPANet's HDF5.

NanoAOD files go through the processor's own feature builder (``pairhunt.inputs.select_jets``)
so training and inference compute features identically; their truth is ``pairhunt generate``'s
stored labels or, for real MC, labels built from ``GenPart`` (``pairhunt.gen_truth``). Targets
are jet positions per parent and product slot (``[events, parents, max products]``, -1 when the
quark was not matched to a kept jet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from pairhunt.contract import EVENT_BRANCH
from pairhunt.cutflow import Cutflow
from pairhunt.errors import PairhuntError, unreadable
from pairhunt.gen_truth import label_branches, read_labels, truth_branches, truth_requirement
from pairhunt.generate.truth import LABELS
from pairhunt.inputs import JetInputs, apply_transform, collection_of, event_level_features, select_jets
from pairhunt.padding import to_padded
from pairhunt.topology import Topology

WEIGHT = "genWeight"
EVENT_LEVEL = (WEIGHT, EVENT_BRANCH)  # branches read besides the jet collection


@dataclass
class TrainingData:
    """Padded inputs and targets of a set of events (numpy, torch-free)."""

    features: np.ndarray  # [E, N, F] transformed, not normalised
    mask: np.ndarray  # [E, N]
    targets: np.ndarray  # [E, P, K]
    multiplicity: np.ndarray  # [E] objects passing the selection (before keeping N)
    global_features: np.ndarray | None = None  # [E, G]
    weights: np.ndarray | None = None  # [E] event weights (genWeight) when the files have them
    regressions: dict[str, np.ndarray] = field(default_factory=dict)
    classifications: dict[str, np.ndarray] = field(default_factory=dict)
    kinematics: JetInputs | None = None  # for the baselines on the same events
    event: np.ndarray | None = None  # [E] NanoAOD event numbers (k-fold training) when the files have them

    def __len__(self) -> int:
        return len(self.mask)

    def subset(self, rows: np.ndarray) -> TrainingData:
        """The events ``rows`` (a boolean mask or indices)."""
        take = (lambda x: None if x is None else x[rows])
        kinematics = None
        if self.kinematics is not None:
            k = self.kinematics
            kinematics = JetInputs(
                k.pt[rows], k.eta[rows], k.phi[rows], k.mass[rows], k.mask[rows], k.index[rows], k.counts[rows],
                k.multiplicity[rows], {n: v[rows] for n, v in k.features.items()}, take(k.event),
            )
        return TrainingData(
            features=self.features[rows],
            mask=self.mask[rows],
            targets=self.targets[rows],
            multiplicity=self.multiplicity[rows],
            global_features=take(self.global_features),
            weights=take(self.weights),
            regressions={k: v[rows] for k, v in self.regressions.items()},
            classifications={k: v[rows] for k, v in self.classifications.items()},
            kinematics=kinematics,
            event=take(self.event),
        )

    def split(self, fraction: float, seed: int) -> tuple[TrainingData, TrainingData]:
        """Random (seeded) split: the first part holds ``fraction`` of the events."""
        order = np.random.default_rng(seed).permutation(len(self))
        cut = int(round(fraction * len(self)))
        return self.subset(np.sort(order[:cut])), self.subset(np.sort(order[cut:]))


def _targets(jets: JetInputs, parent: ak.Array, product: ak.Array, topology: Topology) -> np.ndarray:
    """Kept-jet position of every (parent, product slot), -1 if its quark is not on a kept jet."""
    width = jets.width
    true_parent = to_padded(parent, width, fill=-1, dtype=np.int64)
    true_product = to_padded(product, width, fill=-1, dtype=np.int64)
    targets = np.full((jets.n_events, topology.n_parents, topology.max_products), -1, dtype=np.int64)
    event, position = np.nonzero((true_parent >= 0) & (true_product >= 0) & jets.mask)
    valid = (true_parent[event, position] < topology.n_parents) & (true_product[event, position] < topology.max_products)
    event, position = event[valid], position[valid]
    targets[event, true_parent[event, position], true_product[event, position]] = position
    return targets


def from_nanoaod(
    paths: list[str | Path],
    topology: Topology,
    max_events: int | None = None,
    min_jets: int | None = None,
    require_truth: bool = True,
) -> TrainingData:
    """Events of NanoAOD-like files, selected as the processor selects them.

    ``min_jets`` lowers the jet-count requirement for training only: events with fewer jets
    than the topology needs still teach the model their complete parents (partial events).
    Supervised training needs truth labels (``pairhunt generate``'s, or built from the GenPart
    record of NanoAOD MC); unsupervised training (``require_truth=False``, ABC) reads any file,
    real collision data included.
    """
    if min_jets is not None:
        topology = topology.with_selection(min_count=min_jets)
    jet_input = topology.jets
    arrays = [_read_events(path, topology, max_events, require_truth) for path in paths]
    raw = ak.concatenate(arrays)
    records = {c: _collection(raw, c) for c in _collections(topology)}
    events = ak.zip({c: record for c, record in records.items() if record is not None}, depth_limit=1)
    source = ", ".join(map(str, paths))
    jets = collection_of(events, jet_input, source)
    cutflow = Cutflow(np.ones(len(events)))
    names = [f.name for f in jet_input.features]
    inputs, selected = select_jets(events, jet_input, cutflow, names, source)
    global_values = event_level_features(events, topology.inputs, selected, source)
    global_features = np.stack(list(global_values.values()), axis=-1).astype(np.float32) if global_values else None
    if set(LABELS) <= set(jets.fields):
        order = _kept_order(jets, inputs, selected)
        targets = _targets(inputs, order[LABELS[0]], order[LABELS[1]], topology)
    else:
        targets = np.full((inputs.n_events, topology.n_parents, topology.max_products), -1, dtype=np.int64)
    weights = ak.to_numpy(raw[WEIGHT][selected]).astype(np.float64) if WEIGHT in raw.fields else None
    event = ak.to_numpy(raw[EVENT_BRANCH][selected]) if EVENT_BRANCH in raw.fields else None
    return TrainingData(
        features=inputs.feature_matrix(names),
        mask=inputs.mask,
        targets=targets,
        multiplicity=inputs.multiplicity,
        global_features=global_features,
        weights=weights,
        kinematics=inputs,
        event=event,
    )


def _collections(topology: Topology) -> list[str]:
    """NanoAOD collections training reads: the jets (leptons) and the global inputs' (MET, ...)."""
    return [*topology.jets.source_collections] + [i.collection for i in topology.inputs if i.kind == "global"]


def _collection(raw: ak.Array, collection: str) -> ak.Array | None:
    """The ``<collection>_*`` branches as one record per event (per object when jagged); None if absent."""
    prefix = f"{collection}_"
    fields = {name.removeprefix(prefix): raw[name] for name in raw.fields if name.startswith(prefix)}
    return ak.zip(fields) if fields else None


def _read_events(path: str | Path, topology: Topology, max_events: int | None, require_truth: bool) -> ak.Array:
    """The jet collection's and event-level branches of a file, with the jet truth labels when it
    stores them or has the GenPart record to build them from."""
    try:
        handle = uproot.open(path)
        tree = handle["Events"]
    except Exception as error:  # noqa: BLE001 - any failure to open is reported with the file, in one line
        raise unreadable(path, error) from error
    with handle:
        labels = truth_branches(tree.keys(), topology)
        if labels is None and require_truth:
            raise PairhuntError(f"{path}: no truth labels; supervised training needs {truth_requirement(topology)}")
        prefixes = tuple(f"{c}_" for c in _collections(topology))
        names = [k for k in tree.keys() if k.startswith(prefixes) and k not in label_branches(topology)]
        names += [k for k in EVENT_LEVEL if k in tree.keys()]
        arrays = tree.arrays(sorted(set(names) | set(labels or ())), entry_stop=max_events)
    if labels is not None and labels != label_branches(topology):  # built from GenPart
        for branch, values in zip(label_branches(topology), read_labels(arrays, topology)):
            arrays = ak.with_field(arrays, values, branch)
    return arrays[names + list(label_branches(topology) if labels else ())]


def _kept_order(jets: ak.Array, inputs: JetInputs, selected: np.ndarray) -> ak.Array:
    """The file's jets of the selected events, in the order of the kept (padded) jets."""
    kept = ak.unflatten(inputs.index[inputs.mask], inputs.counts)
    return jets[selected][kept]


def from_spanet_h5(path: str | Path, topology: Topology) -> TrainingData:
    """SPANet's HDF5 layout: ``INPUTS/<input>/<feature>``, ``TARGETS/<parent>/<product>``."""
    import h5py

    try:
        opened = h5py.File(path, "r")
    except Exception as error:  # noqa: BLE001 - any failure to open is reported with the file, in one line
        raise unreadable(path, error) from error
    with opened as handle:
        try:
            source = handle["INPUTS"][topology.jets.name]
            mask = np.asarray(source["MASK"], dtype=bool)
            features = np.stack(
                [apply_transform(np.asarray(source[f.branches[0]], dtype=np.float64), f.transform) for f in topology.jets.features],
                axis=-1,
            )
            targets = np.full((len(mask), topology.n_parents, topology.max_products), -1, dtype=np.int64)
            for p, parent in enumerate(topology.parents):
                for k, product in enumerate(topology.products[parent]):
                    targets[:, p, k] = np.asarray(handle["TARGETS"][parent][product])
            global_inputs = [i for i in topology.inputs if i.kind == "global"]
            global_features = None
            if global_inputs:
                global_features = np.concatenate(
                    [
                        np.stack([apply_transform(np.asarray(handle["INPUTS"][g.name][f.branches[0]], dtype=np.float64), f.transform) for f in g.features], axis=-1)
                        for g in global_inputs
                    ],
                    axis=-1,
                ).astype(np.float32)
            regressions = {n: np.asarray(handle["REGRESSIONS"]["EVENT"][n], dtype=np.float32) for n in topology.regressions}
            classifications = {n: np.asarray(handle["CLASSIFICATIONS"]["EVENT"][n], dtype=np.int64) for n in topology.classifications}
            kinematics = _h5_kinematics(source, mask)
        except KeyError as error:
            raise PairhuntError(f"{path}: missing dataset {error} for topology {topology.name!r}") from error
    return TrainingData(
        features=np.where(mask[..., None], features, 0.0).astype(np.float32),
        mask=mask,
        targets=targets,
        multiplicity=mask.sum(axis=1),
        global_features=global_features,
        regressions=regressions,
        classifications=classifications,
        kinematics=kinematics,
    )


def _h5_kinematics(source, mask: np.ndarray) -> JetInputs | None:
    """Jet kinematics of an HDF5 input when it has pt, eta, phi, mass (for the baselines)."""
    if not {"pt", "eta", "phi", "mass"} <= set(source.keys()):
        return None
    values = {k: np.where(mask, np.asarray(source[k], dtype=np.float64), 0.0) for k in ("pt", "eta", "phi", "mass")}
    counts = mask.sum(axis=1)
    index = np.where(mask, np.arange(mask.shape[1])[None, :], -1)
    features = {"btag": np.asarray(source["btag"], dtype=np.float64)} if "btag" in source else {}
    return JetInputs(**values, mask=mask, index=index, counts=counts, multiplicity=counts, features=features)
