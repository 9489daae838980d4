"""The contract an exported model carries in its ONNX metadata, its checks, and the names of the
graph's inputs and outputs.

Training writes the topology (with the feature list, branches and transforms), the
normalisation, the jet count it was trained with, the model kind and, for k-fold models, the fold
rule into the ONNX file under the metadata key ``pairhunt``. The processor builds its inputs from
this contract and refuses a model whose contract does not match the processor's topology: a
mismatch never passes silently. Training, export and the processor all take the input and output
names from here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from pairhunt._version import __version__
from pairhunt.errors import PairhuntError
from pairhunt.topology import Feature, Topology, topology_from_dict

METADATA_KEY = "pairhunt"
MODEL_KINDS = ("spanet", "abc")
# float16: weights and arithmetic in half precision, inputs and outputs still float32
PRECISIONS = ("float32", "float16")

# graph inputs: padded jet features [B, N, F], real-jet mask [B, N], event-level features [B, G]
JETS_INPUT = "jets"
MASK_INPUT = "mask"
GLOBALS_INPUT = "globals"
# SPA-NET detection logits [B, parents], what the loss reads; the probabilities are per parent
DETECTION_LOGITS = "detection"
# ABC outputs: per-jet category probabilities [B, N, 3] (A, B, ISR), the anomaly score [B] and its
# background percentile at the event's average mass [B] (models with a mass calibration)
CATEGORY_PROBABILITIES = "category_probabilities"
ANOMALY_SCORE = "anomaly_score"
ANOMALY_SCORE_DECORRELATED = "anomaly_score_decorrelated"
# the NanoAOD branch k-fold models are routed by
EVENT_BRANCH = "event"


def assignment_output(parent: str) -> str:
    """Tuple log-probabilities of a parent, ``[B] + [N] * k``."""
    return f"assignment_{parent}"


def detection_output(parent: str) -> str:
    """Probability ``[B]`` that all products of a parent are among the kept jets."""
    return f"detection_{parent}"


def regression_output(name: str) -> str:
    return f"regression_{name}"


def classification_output(name: str) -> str:
    return f"classification_{name}"


def global_feature_definitions(topology: Topology) -> dict[str, Feature]:
    """The features of the topology's ``global`` inputs (MET, ...), by name."""
    return {f.name: f for i in topology.inputs if i.kind == "global" for f in i.features}


@dataclass(frozen=True)
class FoldRule:
    """Fold ``fold`` of a k-fold training by event number (Analysis Grand Challenge, TopCPToolkit).

    The model is trained and validated on the events with ``event % folds != fold`` and scores
    the events with ``event % folds == fold``, so no event is scored by a model that saw it.
    """

    folds: int
    fold: int

    def __post_init__(self):
        if self.folds < 2 or not 0 <= self.fold < self.folds:
            raise PairhuntError(f"invalid fold {self.fold} of {self.folds}: need at least 2 folds and 0 <= fold < folds")

    def scores(self, event: np.ndarray) -> np.ndarray:
        """Events (by NanoAOD ``event`` number) this fold's model scores."""
        return np.asarray(event) % self.folds == self.fold

    def trains_on(self, event: np.ndarray) -> np.ndarray:
        return ~self.scores(event)


@dataclass(frozen=True)
class ModelContract:
    """What a model expects and returns; JSON in the ONNX metadata."""

    kind: str
    topology: dict
    features: list[str]
    normalisation: dict[str, list[float]]
    max_jets: int
    inputs: list[str]
    outputs: list[str]
    global_features: list[str] = field(default_factory=list)
    pairhunt_version: str = __version__
    fold_rule: FoldRule | None = None  # None: one model for every event
    # mean and standard deviation of each regression target in training (histogram ranges)
    regression_stats: dict[str, list[float]] = field(default_factory=dict)
    precision: str = "float32"
    # an ensemble's models (pairhunt.ensemble: source file, normalisation, version); empty for one model
    members: list[dict] = field(default_factory=list)

    def regression_range(self, target: str, width: float = 5.0) -> tuple[float, float]:
        """The span of ``target``'s regressed values a histogram shows: mean +- ``width`` standard
        deviations of the training targets (mean +- width for models exported without them)."""
        mean, std = self.regression_stats.get(target, (0.0, 1.0))
        return mean - width * std, mean + width * std

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise PairhuntError(f"unknown model kind {self.kind!r}; expected one of {MODEL_KINDS}")
        if self.precision not in PRECISIONS:
            raise PairhuntError(f"unknown model precision {self.precision!r}; expected one of {PRECISIONS}")
        if isinstance(self.fold_rule, dict):  # as read back from JSON
            object.__setattr__(self, "fold_rule", FoldRule(**self.fold_rule))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ModelContract:
        try:
            values = json.loads(text)
            if values.get("kind") == "embed":
                raise PairhuntError(f"{source} is a theory map (`pairhunt characterize --model`), not an assignment model")
            return cls(**values)
        except (TypeError, json.JSONDecodeError) as error:
            raise PairhuntError(f"{source}: malformed pairhunt metadata ({error})") from error

    @property
    def model_topology(self) -> Topology:
        """The model's topology, its jet features in the model's input order: the metadata's JSON
        has sorted keys, and read in that order the features would fill the wrong input columns."""
        topology = topology_from_dict(self.topology)
        jets = topology.jets
        by_name = {f.name: f for f in jets.features}
        if set(by_name) != set(self.features):
            return topology
        ordered = dataclasses.replace(jets, features=tuple(by_name[name] for name in self.features))
        return dataclasses.replace(topology, inputs=tuple(ordered if i is jets else i for i in topology.inputs))

    @property
    def has_detection(self) -> bool:
        """The model gives a detection probability per parent: outputs ``detection_<parent>``, or,
        in SPA-NET models exported before those existed, the detection logits its loss trained."""
        per_parent = all(detection_output(p) in self.outputs for p in self.model_topology.parents)
        return per_parent or DETECTION_LOGITS in self.outputs

    def check(self, topology: Topology, source: str = "model") -> None:
        """Raise unless ``topology`` (the processor's) matches the model's, feature by feature."""
        model = self.model_topology
        if (model.parents, model.products) != (topology.parents, topology.products):
            raise PairhuntError(
                f"{source} reconstructs {dict(model.products)} but the processor's topology "
                f"{topology.name!r} has {dict(topology.products)}"
            )
        if model.jets.source_collections != topology.jets.source_collections:
            raise PairhuntError(
                f"{source} reads its objects from {list(model.jets.source_collections)} but topology "
                f"{topology.name!r} from {list(topology.jets.source_collections)}"
            )
        theirs = {f.name: f for f in model.jets.features}
        ours = {f.name: f for f in topology.jets.features}
        for name in self.features:
            if name not in ours:
                raise PairhuntError(f"{source} needs feature {name!r}, which topology {topology.name!r} does not define")
            if ours[name] != theirs[name]:
                raise PairhuntError(
                    f"{source} was trained with feature {theirs[name]} but topology {topology.name!r} defines {ours[name]}"
                )
        self._check_event_level(model, topology, source)

    def _check_event_level(self, model: Topology, topology: Topology, source: str) -> None:
        """Every event-level feature the model reads is a global-input feature of the processor's
        topology, defined the same way."""
        ours, theirs = global_feature_definitions(topology), global_feature_definitions(model)
        for name in self.global_features:
            if name not in ours:
                raise PairhuntError(
                    f"{source} reads the event-level feature {name!r}, which topology {topology.name!r} does not define "
                    f"(its global inputs: {list(ours) or 'none'})"
                )
            if ours[name] != theirs.get(name):
                raise PairhuntError(f"{source} was trained with event-level feature {theirs.get(name)} but topology {topology.name!r} defines {ours[name]}")
