"""ONNX assignment models in the processor, through onnxruntime.

One ``InferenceSession`` per model file and worker process, created lazily and cached at module
level: a session held by the processor object would break pickling (even the iterative executor
pickles the processor). Events go through the model in mini-batches (one call per 50k-event
chunk needed ~4 GB); events without jets never reach it. A k-fold model set sends each event to
the fold model that did not train on it (:mod:`pairhunt.model_set`).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np

from pairhunt.assign.base import JetAssignment
from pairhunt.contract import (
    DETECTION_LOGITS, GLOBALS_INPUT, JETS_INPUT, MASK_INPUT, METADATA_KEY, ModelContract, assignment_output,
    classification_output, detection_output, regression_output,
)
from pairhunt.assign.decoding import decode_greedy, decode_top_k
from pairhunt.errors import PairhuntError
from pairhunt.inputs import JetInputs
from pairhunt.model_set import ModelSet, load_model_set
from pairhunt.topology import Topology

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
# events per InferenceSession.run when not given: one CPU core is as fast at 1,024 as at 65,536;
# a GPU needs larger batches (H100, benchmarks/gpu.py: 291k events/s at 1,024, 610k at 8,192,
# 502k at 65,536), and at 65,536 sixteen workers sharing one H100 ran out of its 80 GB
BATCH_SIZES = {CPU: 1024, CUDA: 8192}
_SESSIONS: dict[tuple, object] = {}


def select_providers(available: list[str], device: str = "auto", tf32: bool = True) -> list:
    """onnxruntime providers for ``device``: ``auto`` takes CUDA when onnxruntime offers it,
    ``cpu`` never does, ``cuda`` insists (a clear error when it is not offered); CPU is always
    the fallback. ``tf32=False`` keeps CUDA's float32 matrix products in full float32 precision
    (TF32 rounds their inputs to 10 mantissa bits) for reproducible results, at some speed."""
    if device not in DEVICES:
        raise PairhuntError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "cuda" and CUDA not in available:
        raise PairhuntError(
            "--device cuda: this onnxruntime has no CUDA provider (install onnxruntime-gpu instead of onnxruntime)"
        )
    if device == "cpu" or CUDA not in available:
        return [CPU]
    return [(CUDA, {"use_tf32": "1" if tf32 else "0"}), CPU]


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


def create_session(path: Path, threads: int, device: str = "auto", tf32: bool = True):
    """A new session on ``device`` (see :func:`select_providers`).

    When CUDA is offered but cannot run (no GPU, CUDA libraries missing), ``auto`` falls back
    to CPU with a warning in the log and ``cuda`` is an error.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    wanted = select_providers(ort.get_available_providers(), device, tf32)
    session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
    if len(wanted) > 1 and CUDA not in session.get_providers():
        if device == "cuda":
            raise PairhuntError(f"--device cuda: onnxruntime lists CUDA but could not run {path.name} on it (no GPU or CUDA libraries?)")
        log.warning("onnxruntime lists CUDA but could not use it (no GPU or CUDA libraries?): running %s on CPU", path.name)
    return session


def cached_session(path: Path, threads: int = 1, device: str = "auto", tf32: bool = True):
    """The session of this process for (model, threads, device, TF32), created on first use."""
    key = (str(path.resolve()), threads, device, tf32)
    if key not in _SESSIONS:
        _SESSIONS[key] = create_session(path, threads, device, tf32)
    return _SESSIONS[key]


def onnxruntime_errors() -> tuple[type[Exception], ...]:
    """What onnxruntime raises for a file that is not a (valid) ONNX model."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return (state.Fail, state.InvalidArgument, state.InvalidGraph, state.InvalidProtobuf, state.NoSuchFile, state.RuntimeException)


def read_metadata(path: str | Path) -> str:
    """The pairhunt metadata (JSON text) of an ONNX file; a clear error for a file onnxruntime
    cannot load or one pairhunt did not export."""
    import onnxruntime as ort

    try:
        meta = ort.InferenceSession(str(path), providers=[CPU]).get_modelmeta().custom_metadata_map
    except onnxruntime_errors() as error:
        reason = " ".join(str(error).split())
        raise PairhuntError(f"{path} is not an ONNX model onnxruntime can load: {reason}") from None
    if METADATA_KEY not in meta:
        raise PairhuntError(f"{path}: no '{METADATA_KEY}' metadata; not a model exported by pairhunt")
    return meta[METADATA_KEY]


def read_contract(path: Path) -> ModelContract:
    """The pairhunt contract from an ONNX file's metadata (clear error if absent)."""
    return ModelContract.from_json(read_metadata(path), source=str(path))


@dataclass
class OnnxModel(ABC):
    """An exported pairhunt model of kind ``kind``: its contract and its outputs on selected jets."""

    kind = ""
    model: str
    name: str
    threads: int = 1
    device: str = "auto"
    tf32: bool = True
    batch_size: int | None = None  # None: by provider (BATCH_SIZES)
    _models: ModelSet | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.batch_size is not None and self.batch_size < 1:
            raise PairhuntError(f"ONNX batch size must be at least 1, got {self.batch_size}")

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
        unsupported = [name for name in self.contract.inputs if name not in (JETS_INPUT, MASK_INPUT, GLOBALS_INPUT)]
        if unsupported:
            raise PairhuntError(
                f"{self.path} needs the graph inputs {unsupported}; the processor builds {JETS_INPUT!r}, "
                f"{MASK_INPUT!r} and {GLOBALS_INPUT!r} (the topology's event-level inputs)"
            )
        self.contract.check(topology, source=str(self.path))

    def required_features(self, topology: Topology) -> tuple[str, ...]:
        self.check(topology)
        return tuple(self.contract.features)

    def session(self, path: Path):
        """This process's session for one model file of the set."""
        return cached_session(path, self.threads, self.device, self.tf32)

    def outputs(self, jets: JetInputs, timing: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        """Raw model outputs for every event (NaN rows for events without jets); each event from
        the fold model that did not train on it. ``timing`` receives features and model seconds."""
        timing = {} if timing is None else timing
        start = time.perf_counter()
        names = self.contract.outputs
        features = jets.feature_matrix(self.contract.features)
        event_level = self.event_level(jets) if GLOBALS_INPUT in self.contract.inputs else None
        timing["features"] = time.perf_counter() - start
        start = time.perf_counter()
        results: dict[str, np.ndarray] = {}
        for path, active in self.models.routes(jets.event, np.flatnonzero(jets.counts > 0)):
            session = self.session(path)
            batch = self.batch_size or BATCH_SIZES[session.get_providers()[0]]
            for first in range(0, len(active), batch):
                rows = active[first : first + batch]
                feeds = {JETS_INPUT: features[rows], MASK_INPUT: jets.mask[rows]}
                if GLOBALS_INPUT in self.contract.inputs:
                    feeds[GLOBALS_INPUT] = event_level[rows]
                for name, value in zip(names, session.run(names, feeds)):
                    if name not in results:
                        results[name] = np.full((jets.n_events, *value.shape[1:]), np.nan, dtype=value.dtype)
                    results[name][rows] = value
        timing["model"] = time.perf_counter() - start
        return results

    def event_level(self, jets: JetInputs) -> np.ndarray:
        """The ``globals`` feed: the event-level features the processor built, in the contract's order."""
        missing = [name for name in self.contract.global_features if name not in jets.globals]
        if missing:
            raise PairhuntError(f"{self.path} reads the event-level features {missing}, which the selected events do not carry")
        return jets.global_matrix(self.contract.global_features)

    def output(self, outputs: dict[str, np.ndarray], name: str) -> np.ndarray:
        if name not in outputs:
            raise PairhuntError(f"{self.path}: the model has no output {name!r} (outputs: {sorted(outputs)})")
        return outputs[name]

    def assign(self, jets: JetInputs, topology: Topology) -> JetAssignment:
        """Check the contract, run the model on the events with jets, decode its outputs."""
        self.check(topology)
        if not (jets.counts > 0).any():
            return self.unassigned(jets)
        timing: dict[str, float] = {}
        outputs = self.outputs(jets, timing)
        start = time.perf_counter()
        assignment = self.decode(outputs, jets, topology)
        timing["decode"] = time.perf_counter() - start
        assignment.timing = timing
        return assignment

    def warm_up(self) -> None:
        """Create this process's sessions and run every fold model and the decoder on dummy events."""
        contract = self.contract
        n_jets, n_events = contract.max_jets, self.models.folds
        zeros = np.zeros((n_events, n_jets))
        counts = np.full(n_events, n_jets)
        jets = JetInputs(
            zeros, zeros, zeros, zeros, np.ones((n_events, n_jets), dtype=bool), np.tile(np.arange(n_jets), (n_events, 1)),
            counts, counts, features={name: zeros for name in contract.features}, event=np.arange(n_events),
            globals={name: np.zeros(n_events) for name in contract.global_features},
        )
        self.assign(jets, contract.model_topology)

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
    top_k: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.top_k is not None:
            parents = self.contract.model_topology.parents
            if self.top_k < 1:
                raise PairhuntError(f"top k must be at least 1, got {self.top_k}")
            if len(parents) != 2:
                raise PairhuntError(f"top-k decoding ranks joint assignments of two parents; {self.path} has {len(parents)}")
        if self.detection_cut is None:
            return
        if not 0.0 <= self.detection_cut < 1.0:
            raise PairhuntError(f"detection cut {self.detection_cut:g}: a probability in [0, 1) is needed")
        if not self.contract.has_detection:
            wanted = ", ".join(detection_output(p) for p in self.contract.model_topology.parents)
            raise PairhuntError(
                f"{self.path} has no detection outputs ({wanted} or {DETECTION_LOGITS!r}; it has "
                f"{', '.join(self.contract.outputs)}): a detection cut needs a model trained with a detection head"
            )

    def unassigned(self, jets: JetInputs) -> JetAssignment:
        empty = super().unassigned(jets)
        for _ in range(self.top_k or 0):
            empty.ranked.append(JetAssignment.unassigned(jets.n_events, jets.width))
            empty.ranked[-1].score = np.full(jets.n_events, np.nan)
        if self.contract.has_detection:
            empty.detection = np.full((jets.n_events, len(self.contract.model_topology.parents)), np.nan)
            empty.detection_cut = self.detection_cut
        shapes = {o.name: o.shape[1:] for o in self.session(self.models.members[0]).get_outputs()}
        names = [*map(regression_output, self.contract.model_topology.regressions), *map(classification_output, self.contract.model_topology.classifications)]
        empty.heads = {name: np.full((jets.n_events, *shapes[name]), np.nan) for name in names}
        empty.head_ranges = self.head_ranges()
        return empty

    def decode(self, outputs: dict[str, np.ndarray], jets: JetInputs, topology: Topology) -> JetAssignment:
        scores = [self.output(outputs, assignment_output(p)) for p in topology.parents]
        assignment = JetAssignment.from_slots(decode_greedy(scores, jets.mask), jets.width)
        if self.top_k:
            assignment.ranked = self.ranked(scores, jets, topology)
        if self.contract.has_detection:
            assignment.detection = self.detection(outputs, topology)
            assignment.detection_cut = self.detection_cut
        assignment.heads = self.heads(outputs)
        assignment.head_ranges = self.head_ranges()
        return assignment

    def head_ranges(self) -> dict[str, tuple[float, float]]:
        """Histogram spans of the regressed values, from the training targets' statistics."""
        return {regression_output(n): self.contract.regression_range(n) for n in self.contract.model_topology.regressions}

    def heads(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The event-level heads: regressed values, and class probabilities (softmax of the logits)."""
        model = self.contract.model_topology
        heads = {regression_output(n): outputs[regression_output(n)].astype(np.float64) for n in model.regressions}
        for name in map(classification_output, model.classifications):
            logits = outputs[name].astype(np.float64)
            exp = np.exp(logits - np.max(logits, axis=1, keepdims=True))
            heads[name] = exp / exp.sum(axis=1, keepdims=True)
        return heads

    def detection(self, outputs: dict[str, np.ndarray], topology: Topology) -> np.ndarray:
        """``[events, parents]`` detection probabilities: the per-parent outputs, or for models
        exported before those existed the sigmoid of the logits."""
        names = [detection_output(p) for p in topology.parents]
        if all(name in outputs for name in names):
            return np.stack([outputs[name] for name in names], axis=1).astype(np.float64)
        return 1.0 / (1.0 + np.exp(-self.output(outputs, DETECTION_LOGITS).astype(np.float64)))

    def ranked(self, scores: list[np.ndarray], jets: JetInputs, topology: Topology) -> list[JetAssignment]:
        """The ``top_k`` best distinct joint assignments, best first (:func:`decode_top_k`)."""
        groups = [tuple(topology.symmetric_products(p)) for p in topology.parents]
        interchangeable = any(set(g) == set(topology.parents) for g in topology.parent_symmetries)
        slots, totals = decode_top_k(scores, jets.mask, self.top_k, groups, interchangeable)
        out = []
        for rank in range(self.top_k):
            assignment = JetAssignment.from_slots(slots[:, rank], jets.width)
            assignment.score = np.where(np.isfinite(totals[:, rank]), totals[:, rank], np.nan)
            out.append(assignment)
        return out
