"""ONNX assignment models in the processor, through onnxruntime.

One ``InferenceSession`` per model file and worker process, created lazily and cached at module
level: a session held by the processor object would break pickling (even the iterative executor
pickles the processor). Events go through the model in mini-batches (one call per 50k-event
chunk needed ~4 GB); events without jets never reach it. A k-fold model set sends each event to
the fold model that did not train on it (:mod:`pairhunt.model_set`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np

from pairhunt.assignment import JetAssignment
from pairhunt.contract import JETS_INPUT, MASK_INPUT, METADATA_KEY, ModelContract, assignment_output, detection_output
from pairhunt.decoding import decode_greedy
from pairhunt.errors import PairhuntError
from pairhunt.inputs import JetInputs
from pairhunt.model_set import ModelSet, load_model_set
from pairhunt.topology import Topology

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_SESSIONS: dict[tuple, object] = {}


def select_providers(available: list[str], use_gpu: bool = True) -> list[str]:
    """CUDA first when onnxruntime offers it (and it is wanted), CPU always as the fallback."""
    providers = [CUDA] if use_gpu and CUDA in available else []
    return providers + [CPU]


def resolve_model_path(model: str | Path) -> Path:
    """A path (ONNX file or k-fold model set directory), or the name of a model shipped in
    ``pairhunt.models`` (``ttbar_allhad``)."""
    path = Path(model)
    if path.exists():
        return path
    shipped = Path(str(files("pairhunt.models") / f"{model}.onnx"))
    if shipped.is_file():
        return shipped
    raise PairhuntError(f"no ONNX model {str(model)!r}: not a file or model set and not a model shipped in pairhunt.models")


def create_session(path: Path, threads: int, use_gpu: bool):
    """A new session; logs clearly when CUDA was listed but could not be used."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    wanted = select_providers(ort.get_available_providers(), use_gpu)
    session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
    if CUDA in wanted and CUDA not in session.get_providers():
        log.warning("onnxruntime lists CUDA but could not use it (no GPU or CUDA libraries?): running %s on CPU", path.name)
    return session


def cached_session(path: Path, threads: int = 1, use_gpu: bool = True):
    """The session of this process for (model, threads, device), created on first use."""
    key = (str(path.resolve()), threads, use_gpu)
    if key not in _SESSIONS:
        _SESSIONS[key] = create_session(path, threads, use_gpu)
    return _SESSIONS[key]


def read_contract(path: Path) -> ModelContract:
    """The pairhunt contract from an ONNX file's metadata (clear error if absent)."""
    import onnxruntime as ort

    meta = ort.InferenceSession(str(path), providers=[CPU]).get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise PairhuntError(f"{path}: no '{METADATA_KEY}' metadata; not a model exported by pairhunt")
    return ModelContract.from_json(meta[METADATA_KEY], source=str(path))


@dataclass
class OnnxModel(ABC):
    """An exported pairhunt model of kind ``kind``: its contract and its outputs on selected jets."""

    kind = ""
    model: str
    name: str
    threads: int = 1
    batch_size: int = 1024
    use_gpu: bool = True
    _models: ModelSet | None = field(default=None, init=False, repr=False)

    @property
    def path(self) -> Path:
        return resolve_model_path(self.model)

    @property
    def models(self) -> ModelSet:
        """The model file, or the fold models of a k-fold set."""
        if self._models is None:
            self._models = load_model_set(self.path)
        return self._models

    @property
    def contract(self) -> ModelContract:
        return self.models.contract

    def check(self, topology: Topology) -> None:
        """The model is of this method's kind and matches the processor's topology (or a clear error)."""
        if self.contract.kind != self.kind:
            raise PairhuntError(f"{self.path} is a {self.contract.kind!r} model; method {self.name!r} needs a {self.kind!r} model")
        self.contract.check(topology, source=str(self.path))

    def required_features(self, topology: Topology) -> tuple[str, ...]:
        self.check(topology)
        return tuple(self.contract.features)

    def outputs(self, jets: JetInputs) -> dict[str, np.ndarray]:
        """Raw model outputs for every event (NaN rows for events without jets); each event from
        the fold model that did not train on it."""
        names = self.contract.outputs
        features = jets.feature_matrix(self.contract.features)
        results: dict[str, np.ndarray] = {}
        for path, active in self.models.routes(jets.event, np.flatnonzero(jets.counts > 0)):
            session = cached_session(path, self.threads, self.use_gpu)
            for start in range(0, len(active), self.batch_size):
                rows = active[start : start + self.batch_size]
                feeds = {JETS_INPUT: features[rows], MASK_INPUT: jets.mask[rows]}
                for name, value in zip(names, session.run(names, feeds)):
                    if name not in results:
                        results[name] = np.full((jets.n_events, *value.shape[1:]), np.nan, dtype=value.dtype)
                    results[name][rows] = value
        return results

    def output(self, outputs: dict[str, np.ndarray], name: str) -> np.ndarray:
        if name not in outputs:
            raise PairhuntError(f"{self.path}: the model has no output {name!r} (outputs: {sorted(outputs)})")
        return outputs[name]

    def assign(self, jets: JetInputs, topology: Topology) -> JetAssignment:
        """Check the contract, run the model on the events with jets, decode its outputs."""
        self.check(topology)
        if not (jets.counts > 0).any():
            return self.unassigned(jets)
        return self.decode(self.outputs(jets), jets, topology)

    def unassigned(self, jets: JetInputs) -> JetAssignment:
        """The assignment of a chunk in which no event has a jet (the model never runs)."""
        return JetAssignment.unassigned(jets.n_events, jets.width)

    @abstractmethod
    def decode(self, outputs: dict[str, np.ndarray], jets: JetInputs, topology: Topology) -> JetAssignment:
        """The assignment from the model's outputs; each model kind has its own."""


@dataclass
class OnnxAssignment(OnnxModel):
    """Assign jets with an exported SPA-NET-style model (tuple scores -> greedy decoding).

    Models with detection outputs also give each parent's detection probability;
    ``detection_cut`` keeps the candidates of parents at or below it out of the histograms.
    """

    kind = "spanet"
    name: str = "spanet"
    detection_cut: float | None = None

    def __post_init__(self):
        if self.detection_cut is None:
            return
        if not 0.0 <= self.detection_cut < 1.0:
            raise PairhuntError(f"detection cut {self.detection_cut:g}: a probability in [0, 1) is needed")
        if not self.contract.has_detection:
            wanted = ", ".join(detection_output(p) for p in self.contract.model_topology.parents)
            raise PairhuntError(
                f"{self.path} has no per-parent detection outputs ({wanted}; it has {', '.join(self.contract.outputs)}): "
                "a detection cut needs a model exported with them; export its training run again with `pairhunt export`"
            )

    def unassigned(self, jets: JetInputs) -> JetAssignment:
        empty = super().unassigned(jets)
        if self.contract.has_detection:
            empty.detection = np.full((jets.n_events, len(self.contract.model_topology.parents)), np.nan)
            empty.detection_cut = self.detection_cut
        return empty

    def decode(self, outputs: dict[str, np.ndarray], jets: JetInputs, topology: Topology) -> JetAssignment:
        scores = [self.output(outputs, assignment_output(p)) for p in topology.parents]
        assignment = JetAssignment.from_slots(decode_greedy(scores, jets.mask), jets.width)
        if self.contract.has_detection:
            detection = [self.output(outputs, detection_output(p)) for p in topology.parents]
            assignment.detection = np.stack(detection, axis=1).astype(np.float64)
            assignment.detection_cut = self.detection_cut
        return assignment
