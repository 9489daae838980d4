"""An exported theory map through onnxruntime: embed sets of events, place them among the theories."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairhunt.assign.onnx import resolve_model_path
from pairhunt.errors import PairhuntError
from pairhunt.theory.contract import EMBEDDING_OUTPUT, EVENTS_INPUT, WEIGHTS_INPUT, EmbeddingContract, read_embedding_contract
from pairhunt.theory.density import TheoryDensity

SHIPPED = "theory_map"


@dataclass(frozen=True)
class Placement:
    """Points on the map and what the library says of them: ``probabilities [n, theories]``
    (in the order of ``classes``), ``log_densities`` and ``unlike [n]``."""

    points: np.ndarray
    classes: list[str]
    probabilities: np.ndarray
    log_densities: np.ndarray
    unlike: np.ndarray

    def nearest(self) -> np.ndarray:
        """Per point, the most probable theory."""
        return np.array(self.classes)[np.argmax(self.probabilities, axis=1)]


class TheoryMap:
    """A theory-map model (shipped name ``theory_map`` or an .onnx path) and its library."""

    def __init__(self, model: str | Path = SHIPPED, threads: int = 1):
        import onnxruntime as ort

        self.path = resolve_model_path(model)
        self.contract: EmbeddingContract = read_embedding_contract(self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.density = TheoryDensity({c: np.asarray(p) for c, p in self.contract.library.items()}, self.contract.thresholds)

    @property
    def classes(self) -> list[str]:
        return self.density.classes

    def embed(self, features: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``[sets, latent]`` points of ``features [sets, events, F]`` with ``weights [sets, events]``."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 3 or features.shape[2] != len(self.contract.features):
            raise PairhuntError(
                f"the theory map reads [sets, events, {len(self.contract.features)}] features "
                f"({', '.join(self.contract.features)}), got shape {features.shape}"
            )
        weights = np.asarray(weights, dtype=np.float32)
        if not np.all(weights.sum(axis=1) > 0):
            raise PairhuntError("every set needs a positive total weight (more signal-region events than subtracted background)")
        return self.session.run([EMBEDDING_OUTPUT], {EVENTS_INPUT: features, WEIGHTS_INPUT: weights})[0]

    def place(self, points: np.ndarray, set_size: float) -> Placement:
        """What the library says of ``points``, sets of ``set_size`` (effective) events."""
        points = np.atleast_2d(points)
        return Placement(
            points, self.classes, self.density.probabilities(points), self.density.log_densities(points),
            self.density.unlike(points, set_size),
        )
