"""From NanoAOD events to the padded jet inputs every assignment method reads.

Selection follows the topology's assignable input: finite kinematics, pT and |eta| cuts, the
jet-count window, an optional scalar-sum HT cut, and the leading ``keep`` jets by pT. Every
rejected event lands in the cutflow; the original position of each kept jet is remembered so
per-jet results can be written back in the order of the input file's collection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from pairhunt.contract import EVENT_BRANCH
from pairhunt.cutflow import Cutflow
from pairhunt.errors import PairhuntError
from pairhunt.generate.truth import LABELS
from pairhunt.padding import JaggedGather, padded_mask
from pairhunt.topology import Feature, Input, Topology

KINEMATICS = ("pt", "eta", "phi", "mass")
# merged inputs: the position of an object's collection among the input's source collections
SOURCE = "source"


@dataclass
class JetInputs:
    """Selected jets of the selected events, padded to ``width`` (the topology's ``keep``).

    Kinematics are float64 (float32 NanoAOD values lose tens of GeV to cancellation in
    E^2 - p^2 of heavy candidates); ``features`` holds the transformed model features.
    """

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    mask: np.ndarray  # [events, width] True for real jets
    index: np.ndarray  # [events, width] position in the file's collection, -1 for padding
    counts: np.ndarray  # selected jets kept per event (<= width)
    multiplicity: np.ndarray  # selected jets per event before keeping the leading ``width``
    features: dict[str, np.ndarray] = field(default_factory=dict)
    event: np.ndarray | None = None  # NanoAOD event numbers (k-fold models route by them), None if absent
    globals: dict[str, np.ndarray] = field(default_factory=dict)  # event-level model features (MET, ...)

    @property
    def n_events(self) -> int:
        return len(self.counts)

    @property
    def width(self) -> int:
        return self.mask.shape[1]

    def four_momenta(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """px, py, pz, E in float64, zero for padding."""
        px = self.pt * np.cos(self.phi)
        py = self.pt * np.sin(self.phi)
        pz = self.pt * np.sinh(self.eta)
        energy = np.sqrt(px * px + py * py + pz * pz + self.mass * self.mass)
        return tuple(np.where(self.mask, x, 0.0) for x in (px, py, pz, energy))

    def feature_matrix(self, names: Iterable[str]) -> np.ndarray:
        """``[events, width, features]`` float32 in the order of ``names``."""
        return np.stack([self.features[n] for n in names], axis=-1).astype(np.float32)

    def global_matrix(self, names: Iterable[str]) -> np.ndarray:
        """``[events, features]`` float32 event-level features in the order of ``names``."""
        return np.stack([self.globals[n] for n in names], axis=-1).astype(np.float32)


def first_branch(collection: ak.Array, feature: Feature) -> ak.Array | None:
    """The feature's first branch the collection has (a ``name>cut`` branch: its working-point
    flag), as float64 before the transform; None when it has none."""
    for branch in feature.branches:
        name, _, threshold = branch.partition(">")
        if name in collection.fields:
            values = collection[name]
            return ak.values_astype(values > float(threshold) if threshold else values, np.float64)
    return None


def resolve_branch(collection: ak.Array, feature: Feature, input_: Input, filename: str) -> ak.Array:
    """The feature's first available branch (or working-point flag), before its transform."""
    values = first_branch(collection, feature)
    if values is not None:
        return values
    tried = ", ".join(f"{input_.collection}_{b.partition('>')[0]}" for b in feature.branches)
    raise PairhuntError(f"{filename}: feature {feature.name!r} needs one of the branches {tried}; none is in the file")


def event_level_feature(record: ak.Array | None, feature: Feature, source: str, prefix: str = "") -> ak.Array:
    """One event-level feature (one value per event) from its flat collection, transformed; a
    collection without its branches is one clear line (``prefix``: the collection's branch prefix)."""
    values = first_branch(record, feature) if record is not None else None
    if values is None:
        tried = ", ".join(f"{prefix}{b.partition('>')[0]}" for b in feature.branches)
        raise PairhuntError(f"{source} (feature {feature.name!r}) needs one of the branches {tried}; none is in the file")
    return apply_transform(values, feature.transform)


def event_level_features(events: ak.Array, inputs: Iterable[Input], selected: np.ndarray, filename: str) -> dict[str, np.ndarray]:
    """The transformed features of the topology's ``global`` inputs (MET, ...) for the selected
    events, by feature name; a model's ``globals`` input takes them in the order its contract lists."""
    features = {}
    for input_ in (i for i in inputs if i.kind == "global"):
        record = events[input_.collection] if input_.collection in events.fields else None
        source = f"{filename}: event-level input {input_.name!r}"
        for feature in input_.features:
            values = event_level_feature(record, feature, source, f"{input_.collection}_")
            features[feature.name] = ak.to_numpy(values)[selected]
    return features


def branches_read(topology: Topology, event_level: Iterable[str] = ()) -> dict[str, list[str] | None]:
    """The NanoAOD branches built into inputs with ``topology``: ``{collection: fields}`` for each
    input (kinematics of sequential ones, every branch a feature may fall back to), plus the
    ``event_level`` branches (``None``: not a collection)."""
    branches: dict[str, list[str] | None] = {name: None for name in event_level}
    for input_ in topology.inputs:
        fields = list(KINEMATICS) if input_.kind == "sequential" else []
        fields += [branch.partition(">")[0] for feature in input_.features for branch in feature.branches]
        for name in input_.source_collections:
            branches[name] = list(dict.fromkeys((branches.get(name) or []) + fields))
    return branches


def apply_transform(values: np.ndarray, transform: str) -> np.ndarray:
    """The topology feature transform (log1p of non-negative values, cos, sin, none)."""
    if transform == "log1p":
        return np.log1p(np.maximum(values, 0.0))
    if transform == "cos":
        return np.cos(values)
    if transform == "sin":
        return np.sin(values)
    return values


def collection_fields(events: ak.Array, collection: str) -> list[str]:
    """Fields of a jagged collection read from the form, before building its behaviour.

    Building ``events.Jet`` without a mass branch fails inside vector with an obscure
    message; the form tells what the file has without touching the data.
    """
    form = events.layout.form
    while not hasattr(form, "fields") or not form.fields:
        form = form.content
    if collection not in form.fields:
        return []
    content = form.content(collection)
    while not hasattr(content, "fields"):
        content = content.content
    return list(content.fields)


def collection_of(events: ak.Array, input_: Input, filename: str) -> ak.Array:
    """The input's collection (a merged input's objects), or a clear error naming the missing
    branches and the file."""
    if input_.sources:
        return merged_objects(events, input_, filename)
    return named_collection(events, input_.collection, filename)


def named_collection(events: ak.Array, name: str, filename: str) -> ak.Array:
    """``events[name]``, or one line naming the kinematic branches the file lacks."""
    fields = collection_fields(events, name)
    missing = [f"{name}_{k}" for k in KINEMATICS if k not in fields]
    if missing:
        raise PairhuntError(f"{filename}: missing branch(es) {', '.join(missing)}")
    return events[name]


def merged_objects(events: ak.Array, input_: Input, filename: str) -> ak.Array:
    """Every object of a merged input's source collections, collection after collection, each
    in file order: kinematics, each feature's value before its transform (under the feature's
    name), ``source`` (the collection's position in ``input_.source_collections``) and, when
    every collection stores them, the truth labels."""
    parts = []
    for position, name in enumerate(input_.source_collections):
        collection = named_collection(events, name, filename)
        fields = {k: ak.values_astype(collection[k], np.float64) for k in KINEMATICS}
        for feature in input_.features:
            fields[feature.name] = _source_feature(collection, name, feature, filename)
        fields[SOURCE] = ak.values_astype(ak.zeros_like(collection.pt), np.int64) + position
        fields.update({label: collection[label] for label in LABELS if label in collection.fields})
        parts.append(ak.zip(fields))
    common = [f for f in parts[0].fields if all(f in part.fields for part in parts)]
    return ak.concatenate([part[common] for part in parts], axis=1)


def _source_feature(collection: ak.Array, name: str, feature: Feature, filename: str) -> ak.Array:
    """A feature's value for the objects of one source collection of a merged input."""
    if feature.source:
        return ak.zeros_like(collection.pt, dtype=np.float64) + float(name in feature.source)
    values = first_branch(collection, feature)
    if values is not None:
        return values
    if feature.default is None:
        tried = ", ".join(f"{name}_{b.partition('>')[0]}" for b in feature.branches)
        raise PairhuntError(f"{filename}: feature {feature.name!r} needs one of the branches {tried}; none is in the file")
    return ak.zeros_like(collection.pt, dtype=np.float64) + feature.default


def object_counts(events: ak.Array, input_: Input) -> np.ndarray:
    """Objects per event of the input's collection(s), before any cut (what per-object outputs index)."""
    return sum(ak.to_numpy(ak.num(events[name], axis=1)) for name in input_.source_collections).astype(np.int64)


def source_selected(objects: ak.Array, input_: Input) -> list[ak.Array]:
    """Per source of a merged input, which of ``objects`` (:func:`merged_objects`) pass its cuts."""
    positions = {c: k for k, c in enumerate(input_.source_collections)}
    chosen = []
    for source in input_.sources:
        sel = source.selection
        in_source = sum((objects[SOURCE] == positions[c] for c in source.collections), ak.zeros_like(objects.pt, dtype=np.int64))
        chosen.append((in_source > 0) & (objects.pt > sel.pt_min) & (abs(objects.eta) < sel.eta_max))
    return chosen


def _source_cuts(objects: ak.Array, input_: Input, cutflow: Cutflow, event_mask: np.ndarray) -> tuple[ak.Array, np.ndarray]:
    """A merged input's objects passing their source's cuts, and the events inside every
    source's count window (one cutflow step per window)."""
    passing = ak.zeros_like(objects.pt, dtype=bool)
    for source, chosen in zip(input_.sources, source_selected(objects, input_)):
        sel = source.selection
        passing = passing | chosen
        count = ak.to_numpy(ak.sum(chosen, axis=1))
        if sel.min_count > 0:
            event_mask = event_mask & (count >= sel.min_count)
            cutflow.add(f">= {sel.min_count} {source.name}", event_mask)
        if sel.max_count is not None:
            event_mask = event_mask & (count <= sel.max_count)
            cutflow.add(f"<= {sel.max_count} {source.name}", event_mask)
    return passing, event_mask


def select_jets(
    events: ak.Array,
    input_: Input,
    cutflow: Cutflow,
    feature_names: Iterable[str] = (),
    filename: str | None = None,
) -> tuple[JetInputs, np.ndarray]:
    """Select events and jets; returns the jet inputs and the event mask over ``events``.

    ``feature_names`` lists the topology features to build (resolved branches, transformed);
    ``filename`` names the file in errors (default: the events' coffea metadata).
    """
    if filename is None:
        filename = events.metadata.get("filename", "<events>") if hasattr(events, "metadata") else "<events>"
    jets = collection_of(events, input_, filename)
    wanted = {f.name: f for f in input_.features}
    unknown = set(feature_names) - set(wanted)
    if unknown:
        raise PairhuntError(f"features {sorted(unknown)} are not in the topology input {input_.name!r}")
    if input_.sources:  # merged objects carry every feature's value
        raw_features = {n: jets[n] for n in feature_names}
    else:
        raw_features = {n: resolve_branch(jets, wanted[n], input_, filename) for n in feature_names}

    finite = np.ones(len(events), dtype=bool)
    for k in KINEMATICS:
        finite &= ak.to_numpy(ak.all(np.isfinite(jets[k]), axis=1))
    cutflow.add("finite jet kinematics", finite)

    sel = input_.selection
    local = ak.local_index(jets.pt, axis=1)
    passing = (jets.pt > sel.pt_min) & (abs(jets.eta) < sel.eta_max)
    event_mask = finite
    if input_.sources:
        source_passing, event_mask = _source_cuts(jets, input_, cutflow, event_mask)
        passing = passing & source_passing
    noun = "objects" if input_.sources else "jets"
    counts = ak.to_numpy(ak.sum(passing, axis=1))
    event_mask = event_mask & (counts >= sel.min_count)
    cutflow.add(f">= {sel.min_count} {noun}", event_mask)
    if sel.max_count is not None:
        event_mask = event_mask & (counts <= sel.max_count)
        cutflow.add(f"<= {sel.max_count} {noun}", event_mask)
    if sel.ht_min > 0:
        ht = ak.to_numpy(ak.sum(jets.pt[passing], axis=1))
        event_mask = event_mask & (ht > sel.ht_min)
        cutflow.add(f"HT > {sel.ht_min:g} GeV", event_mask)

    chosen = ak.argsort(jets.pt[passing][event_mask], axis=1, ascending=False)[:, : sel.keep]
    order = local[passing][event_mask][chosen]
    width = sel.keep
    gather = JaggedGather.from_order(ak.to_numpy(ak.num(jets.pt, axis=1)), np.flatnonzero(event_mask), order, width)
    n_kept = ak.to_numpy(ak.num(order)).astype(np.int64)
    mask = padded_mask(n_kept, width)
    inputs = JetInputs(
        **{k: gather(jets[k]) for k in KINEMATICS},
        mask=mask,
        index=gather.local_index(),
        counts=n_kept,
        multiplicity=counts[event_mask],
        event=ak.to_numpy(events[EVENT_BRANCH])[event_mask] if EVENT_BRANCH in events.fields else None,
    )
    for name, values in raw_features.items():
        inputs.features[name] = np.where(mask, apply_transform(gather(values), wanted[name].transform), 0.0)
    return inputs, event_mask


def event_shape(jets: JetInputs) -> tuple[np.ndarray, np.ndarray]:
    """Sphericity and aplanarity of the kept jets (eigenvalues λ1 ≥ λ2 ≥ λ3 of the momentum
    tensor Σ pᵅpᵝ / Σ |p|²: S = 3/2 (λ2 + λ3), A = 3/2 λ3). Decays of a heavy pair at rest fill
    the event; QCD, even with many jets, stays close to a back-to-back dijet. NaN without jets."""
    px, py, pz, _ = jets.four_momenta()
    momenta = np.stack([px, py, pz], axis=-1)  # [E, N, 3], zero for padding
    tensor = np.einsum("eni,enj->eij", momenta, momenta)
    with np.errstate(invalid="ignore", divide="ignore"):
        tensor /= np.trace(tensor, axis1=1, axis2=2)[:, None, None]
    eigen = np.linalg.eigvalsh(np.nan_to_num(tensor))  # ascending
    empty = ~jets.mask.any(axis=1)
    sphericity = np.where(empty, np.nan, 1.5 * (eigen[:, 0] + eigen[:, 1]))
    aplanarity = np.where(empty, np.nan, 1.5 * eigen[:, 0])
    return sphericity, aplanarity
