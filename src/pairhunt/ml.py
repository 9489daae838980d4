"""Any exported pairhunt model in any coffea analysis, in the style of ``coffea.ml_tools``.

coffea ships wrappers for torch, Triton, xgboost and TensorFlow but none for ONNX; analyses that
run SPANet models write their own per-worker ``InferenceSession`` plugin. :class:`OnnxWrapper`
is that plugin for pairhunt's models, without the rest of pairhunt (no processor, no topology
file): the model's contract, stored in the ONNX file, says which jet branches it reads, how it
selects and orders the jets, the transform of every feature and the names of its inputs and
outputs. The session is created lazily in each worker (the wrapper pickles without it), on the
provider chosen like ``pairhunt run --device``, and the events go through it in batches.

    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory
    from pairhunt.ml import OnnxWrapper

    events = NanoEventsFactory.from_root({"nano.root": "Events"}, schemaclass=NanoAODSchema, mode="eager").events()
    model = OnnxWrapper("ttbar_allhad")  # a shipped name, an .onnx path
    outputs = model(events.Jet)  # {"assignment_t1": [events, 10, 10, 10], ..., "detection_t1": [events]}
    # a model with event-level inputs (MET, ...) takes their collection too: model(events.Jet, events.MET)
    # the jets the outputs index: the model's selection, leading first
    kept = model.kept_jets(events.Jet)
    # a model reading jets and leptons merged (ttbar_semilep) takes the events: model(events)

The wrapper applies the model's jet selection (pT, |η|, the leading ``keep`` by pT); event-level
cuts (jet multiplicity, HT) are the analysis's. It is built on coffea's ``numpy_call_wrapper``
and prepares its inputs with awkward operations only. On dask-awkward collections
(``mode="dask"``, the ``dask`` extra) it returns dask-awkward outputs, computed partition by
partition, reading only the branches the model needs.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from pathlib import Path

import awkward as ak
import numpy as np
from coffea.ml_tools.helper import nonserializable_attribute, numpy_call_wrapper

from pairhunt.assign.onnx import BATCH_SIZES, create_session, read_contract, resolve_model_path
from pairhunt.contract import GLOBALS_INPUT, JETS_INPUT, MASK_INPUT, ModelContract, global_feature_definitions
from pairhunt.errors import PairhuntError
from pairhunt.inputs import KINEMATICS, apply_transform, event_level_feature, first_branch, merged_objects, source_selected
from pairhunt.topology import Feature


class OnnxWrapper(numpy_call_wrapper, nonserializable_attribute):
    """An exported pairhunt model (shipped name, ``.onnx`` path) called on a NanoAOD jet collection.

    ``device`` is ``auto``, ``cpu`` or ``cuda``; ``batch_size`` defaults by provider (1,024 on
    CPU, 8,192 on CUDA). Calling it returns ``{output name: array}`` for every output of the
    model (numpy-backed awkward arrays, one entry per event).
    """

    def __init__(self, model: str | Path, device: str = "auto", threads: int = 1, batch_size: int | None = None):
        nonserializable_attribute.__init__(self, ["session"])
        numpy_call_wrapper.__init__(self)
        self.path = resolve_model_path(model)
        if self.path.is_dir():
            raise PairhuntError(f"{self.path} is a k-fold model set: OnnxWrapper takes one ONNX file (a fold's)")
        self.contract: ModelContract = read_contract(self.path)
        if batch_size is not None and batch_size < 1:
            raise PairhuntError(f"batch size must be at least 1, got {batch_size}")
        self.device, self.threads, self.batch_size = device, threads, batch_size
        self.jets = self.contract.model_topology.jets
        definitions = global_feature_definitions(self.contract.model_topology)
        self.event_level = [definitions[name] for name in self.contract.global_features]
        self.event_level_collection = next((i.collection for i in self.contract.model_topology.inputs if i.kind == "global"), None)

    def _create_session(self):
        return create_session(self.path, self.threads, self.device)

    def kept_jets(self, jets: ak.Array) -> ak.Array:
        """The jets the model sees, in its order: its selection, then the leading ``keep`` by pT.

        A model reading jets and leptons merged (``ttbar_semilep``) takes the events instead and
        gives their merged objects (:func:`pairhunt.inputs.merged_objects`) after each source's cuts.
        """
        selection = self.jets.selection
        objects = merged_objects(jets, self.jets, "the events") if self.jets.sources else jets
        passing = (objects.pt > selection.pt_min) & (abs(objects.eta) < selection.eta_max)
        if self.jets.sources:
            passing = passing & functools.reduce(operator.or_, source_selected(objects, self.jets))
        selected = objects[passing]
        return selected[ak.argsort(selected.pt, axis=1, ascending=False)][:, : selection.keep]

    def _feature(self, jets: ak.Array, name: str) -> ak.Array:
        """One model feature per kept jet, from the first branch the collection has (merged
        objects carry every feature's value)."""
        feature = next(f for f in self.jets.features if f.name == name)
        values = jets[name] if self.jets.sources else first_branch(jets, feature)
        if values is not None:
            return apply_transform(values, feature.transform)
        raise PairhuntError(f"the jets have none of the branches {list(feature.branches)} that feature {name!r} reads")

    def _event_level(self, record: ak.Array | None) -> ak.Array:
        """``[events, G]`` event-level features (MET, ...) from their collection, in the contract's order."""
        if record is None:
            raise PairhuntError(
                f"{self.path.name} also reads the event-level features {self.contract.global_features}: "
                "pass their collection as well, e.g. model(events.Jet, events.MET)"
            )
        columns = [event_level_feature(record, feature, "the event-level collection")[:, np.newaxis] for feature in self.event_level]
        return ak.values_astype(ak.concatenate(columns, axis=1), np.float32)

    def prepare_awkward(self, jets: ak.Array, event_level: ak.Array | None = None) -> tuple[tuple, dict]:
        """Padded ``[events, keep, features]`` inputs, the ``[events, keep]`` real-jet mask and, for
        models that read them, the ``[events, G]`` event-level features (a merged model takes the
        events, and its event-level collection from them unless given)."""
        if self.jets.sources and event_level is None and self.event_level_collection in jets.fields:
            event_level = jets[self.event_level_collection]
        kept = self.kept_jets(jets)
        width = self.jets.selection.keep

        def padded(values: ak.Array, fill) -> ak.Array:
            return ak.to_regular(ak.fill_none(ak.pad_none(values, width, axis=1, clip=True), fill), axis=1)

        columns = [padded(self._feature(kept, name), 0.0)[:, :, np.newaxis] for name in self.contract.features]
        mask = padded(ak.ones_like(kept.pt, dtype=bool), False)
        features = ak.where(mask[:, :, np.newaxis], ak.concatenate(columns, axis=2), 0.0)
        inputs = (ak.values_astype(features, np.float32), mask)
        return (*inputs, self._event_level(event_level)) if self.event_level else inputs, {}

    def validate_numpy_input(self, features: np.ndarray, mask: np.ndarray, event_level: np.ndarray | None = None) -> None:
        expected = (self.jets.selection.keep, len(self.contract.features))
        if features.ndim != 3 or features.shape[1:] != expected or mask.shape != features.shape[:2]:
            raise PairhuntError(f"{self.path.name} takes jets [events, {expected[0]}, {expected[1]}] and a mask; got {features.shape}, {mask.shape}")
        if self.event_level and (event_level is None or event_level.shape != (len(features), len(self.event_level))):
            raise PairhuntError(f"{self.path.name} also takes event-level features [events, {len(self.event_level)}]")

    def numpy_call(self, features: np.ndarray, mask: np.ndarray, event_level: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every output of the model, the events fed in batches."""
        names = list(self.contract.outputs)
        if len(features) == 0:  # onnxruntime dies (SIGFPE) on an empty batch: shapes from a dummy event
            features, mask = np.zeros((1, *features.shape[1:]), np.float32), np.ones((1, *mask.shape[1:]), bool)
            event_level = np.zeros((1, len(self.event_level)), np.float32) if self.event_level else None
            return {name: values[:0] for name, values in self.numpy_call(features, mask, event_level).items()}
        batch = self.batch_size or BATCH_SIZES[self.session.get_providers()[0]]
        parts: dict[str, list] = {name: [] for name in names}
        for first in range(0, len(features), batch):
            feeds = {JETS_INPUT: features[first : first + batch], MASK_INPUT: mask[first : first + batch]}
            if self.event_level:
                feeds[GLOBALS_INPUT] = event_level[first : first + batch]
            for name, value in zip(names, self.session.run(names, feeds)):
                parts[name].append(value)
        return {name: np.concatenate(values) for name, values in parts.items()}

    def _read_fields(self, collection: ak.Array, features: Iterable[Feature], kinematics: tuple[str, ...] = ()) -> ak.Array:
        """``collection`` with only the fields the model reads (a lazy one then reads no other branch)."""
        fields = [*kinematics, *(b.partition(">")[0] for f in features for b in f.branches)]
        return collection[[f for f in dict.fromkeys(fields) if f in collection.fields]]

    def _call_dask(self, jets, event_level=None) -> dict:
        """Lazy collections (``mode="dask"``): the eager call per partition, on the branches the
        model reads; ``{output name: dask-awkward array}``. coffea's generic packing would
        broadcast ``[events]`` outputs against ``[events, 10, 10, 10]`` ones, so they are packed
        side by side (``depth_limit=1``)."""
        import dask_awkward as dak

        if self.jets.sources:  # the events: the source collections and the event-level one
            wanted = {c: self._read_fields(jets[c], self.jets.features, KINEMATICS) for c in self.jets.source_collections}
            if self.event_level and event_level is None and self.event_level_collection in jets.fields:
                wanted[self.event_level_collection] = self._read_fields(jets[self.event_level_collection], self.event_level)
            inputs = [dak.zip(wanted, depth_limit=1)]
        else:
            inputs = [self._read_fields(jets, self.jets.features, ("pt", "eta"))]
        if event_level is not None:
            inputs.append(self._read_fields(event_level, self.event_level))
        call = _PartitionCall(self)
        packed = dak.map_partitions(call, *inputs, meta=call(*(i._meta for i in inputs)), label="pairhunt-onnx")
        return {name: packed[name] for name in self.contract.outputs}


class _PartitionCall:
    """The wrapper's eager call on one partition, its outputs packed into one record array; on
    typetracers (dask-awkward's metadata and column scouting) a length-zero call, whose output
    is made a typetracer again."""

    def __init__(self, wrapper: OnnxWrapper):
        self.wrapper = wrapper

    def __call__(self, *arrays: ak.Array) -> ak.Array:
        lazy = any(ak.backend(a) == "typetracer" for a in arrays)
        if lazy:
            arrays = tuple(ak.typetracer.length_zero_if_typetracer(a) for a in arrays)
        packed = ak.zip(self.wrapper._call_awkward(*arrays), depth_limit=1)
        return ak.Array(packed.layout.to_typetracer(forget_length=True)) if lazy else packed
