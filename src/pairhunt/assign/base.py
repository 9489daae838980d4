"""What every assignment method returns, and what it must provide to the processor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from pairhunt.inputs import JetInputs
from pairhunt.topology import Topology


@dataclass
class JetAssignment:
    """Per selected jet (padded ``[events, width]``): parent index and product slot, -1 if none.

    ``score`` is an optional per-event number (for example an anomaly score).
    ``fixed_multiplicity`` is False for methods whose parents take any number of jets (ABC):
    a parent is then complete with one jet or more, not only with all its product slots filled.
    ``detection`` (``[events, parents]``, SPA-NET models) is the probability that each parent is
    fully reconstructable; with a ``detection_cut`` only candidates above it are histogrammed.
    ``timing`` holds the seconds a method spent per step (ONNX models: features, model, decode).
    ``ranked`` (SPA-NET models asked for their top k) holds the k best distinct joint assignments,
    best first, each with its summed log-probability as ``score`` (NaN where an event has fewer).
    ``heads`` holds the event-level heads of SPA-NET models with regression or classification
    targets, by output name: the regressed value ``[events]``, the class probabilities
    ``[events, classes]`` (NaN for events the model did not see); ``head_ranges`` the span a
    histogram of each regressed value shows.
    """

    parent: np.ndarray
    product: np.ndarray
    score: np.ndarray | None = None
    fixed_multiplicity: bool = True
    detection: np.ndarray | None = None
    detection_cut: float | None = None
    timing: dict[str, float] = field(default_factory=dict)
    ranked: list[JetAssignment] = field(default_factory=list)
    heads: dict[str, np.ndarray] = field(default_factory=dict)
    head_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def unassigned(cls, n_events: int, width: int) -> JetAssignment:
        empty = np.full((n_events, width), -1, dtype=np.int8)
        return cls(parent=empty, product=empty.copy())

    @classmethod
    def from_slots(cls, slots: np.ndarray, width: int) -> JetAssignment:
        """From ``[events, parents, products]`` jet indices (-1 = slot left empty)."""
        n_events, n_parents, n_products = slots.shape
        out = cls.unassigned(n_events, width)
        rows = np.broadcast_to(np.arange(n_events)[:, None, None], slots.shape)
        parent = np.broadcast_to(np.arange(n_parents)[None, :, None], slots.shape)
        product = np.broadcast_to(np.arange(n_products)[None, None, :], slots.shape)
        filled = slots >= 0
        out.parent[rows[filled], slots[filled]] = parent[filled]
        out.product[rows[filled], slots[filled]] = product[filled]
        return out


@runtime_checkable
class AssignmentMethod(Protocol):
    """A way to assign jets to parents: a baseline or an ONNX model.

    Methods are pickled to every worker: keep heavy state (sessions) out of ``__init__`` and
    create it lazily.
    """

    name: str

    def required_features(self, topology: Topology) -> tuple[str, ...]:
        """Topology features (besides the kinematics) this method reads from ``JetInputs``."""
        ...

    def assign(self, jets: JetInputs, topology: Topology) -> JetAssignment:
        """Assign the jets of every event."""
        ...

    def warm_up(self) -> None:
        """Pay the one-time costs (sessions, compiled code) before the first chunk is timed."""
        ...
