"""An exported theory map through onnxruntime: embed sets of events, place them among the theories."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairhunt.assign.onnx import resolve_model_path
from pairhunt.errors import PairhuntError
from pairhunt.theory.contract import EMBEDDING_OUTPUT, EVENTS_INPUT, POOLED_OUTPUT, WEIGHTS_INPUT, EmbeddingContract, read_embedding_contract
from pairhunt.theory.density import TheoryDensity
from pairhunt.theory.novelty import SetNovelty

SHIPPED = "theory_map"


@dataclass(frozen=True)
class Placement:
    """Sets on the map and what the library says of them: ``points [n, latent]``,
    ``probabilities [n, theories]`` (in the order of ``classes``) and ``log_densities`` on the map,
    the novelty test's squared ``distances [n, theories]``, and per set whether it is unlike every
    theory on the map (``unlike_on_map``) and in the pooled representation (``unlike_pooled``)."""

    points: np.ndarray
    classes: list[str]
    probabilities: np.ndarray
    log_densities: np.ndarray
    distances: np.ndarray
    unlike_on_map: np.ndarray
    unlike_pooled: np.ndarray

    @property
    def unlike(self) -> np.ndarray:
        """``[n]``: unlike every theory by either test (each sees what the other can miss)."""
        return self.unlike_on_map | self.unlike_pooled

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
        self.novelty = SetNovelty.from_dict(self.contract.novelty)

    @property
    def classes(self) -> list[str]:
        return self.density.classes

    def embed(self, features: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``[sets, latent]`` points of ``features [sets, events, F]`` with ``weights [sets, events]``."""
        return self._run(features, weights, [EMBEDDING_OUTPUT])[0]

    def _run(self, features: np.ndarray, weights: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 3 or features.shape[2] != len(self.contract.features):
            raise PairhuntError(
                f"the theory map reads [sets, events, {len(self.contract.features)}] features "
                f"({', '.join(self.contract.features)}), got shape {features.shape}"
            )
        weights = np.asarray(weights, dtype=np.float32)
        if not np.all(weights.sum(axis=1) > 0):
            raise PairhuntError("every set needs a positive total weight (more signal-region events than subtracted background)")
        return self.session.run(outputs, {EVENTS_INPUT: features, WEIGHTS_INPUT: weights})

    def place(self, features: np.ndarray, weights: np.ndarray, set_size: float) -> Placement:
        """What the library says of the sets ``features [sets, events, F]`` with ``weights``, each
        judged as a set of ``set_size`` (effective) events."""
        points, pooled = self._run(features, weights, [EMBEDDING_OUTPUT, POOLED_OUTPUT])
        return Placement(
            points, self.classes, self.density.probabilities(points), self.density.log_densities(points),
            self.novelty.distances(pooled), self.density.unlike(points, set_size), self.novelty.unlike(pooled, set_size),
        )
