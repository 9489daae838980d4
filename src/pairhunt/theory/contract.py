"""The contract of an exported theory-map model, JSON in its ONNX metadata (key ``pairhunt``).

It says which events the map was trained on (topology and assignment method of the runs, the
features in order), the set size, and carries the library itself: the embedded training sets of
every theory with, per set size, the density level below which a set is unlike that theory on
the map, and the novelty test (per theory the mean and covariance of its sets' pooled
representations and, per set size, the distance beyond which a set is unlike it). So one ONNX
file is the whole map; :func:`read_embedding_contract` refuses assignment models and vice versa.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pairhunt._version import __version__
from pairhunt.errors import PairhuntError

EMBED_KIND = "embed"
# graph inputs: event features [S, K, F] and per-event weights [S, K] (0: padding, < 0: subtracted
# background); outputs: the set's point on the map [S, latent] and its pooled representation [S, hidden]
EVENTS_INPUT = "events"
WEIGHTS_INPUT = "weights"
EMBEDDING_OUTPUT = "embedding"
POOLED_OUTPUT = "pooled"


@dataclass(frozen=True)
class EmbeddingContract:
    """What a theory-map model reads and what its library holds."""

    topology: str
    topology_inputs: list  # the run's input definitions (collections, selection, features)
    method: str
    features: list[str]
    set_size: int
    latent: int
    classes: list[str]
    library: dict[str, list[list[float]]]  # per theory: embedded training sets
    thresholds: dict[str, dict[str, float]]  # per set size, per theory: log density below which a set is unlike it
    novelty: dict  # SetNovelty.to_dict(): per theory mean and covariance of pooled sets, thresholds per set size
    unlike_quantile: float  # the fraction of a theory's own validation sets beyond each of its two thresholds
    kind: str = EMBED_KIND
    inputs: list[str] = field(default_factory=lambda: [EVENTS_INPUT, WEIGHTS_INPUT])
    outputs: list[str] = field(default_factory=lambda: [EMBEDDING_OUTPUT, POOLED_OUTPUT])
    pairhunt_version: str = __version__

    def __post_init__(self):
        if self.kind != EMBED_KIND:
            raise PairhuntError(f"a theory-map contract has kind {EMBED_KIND!r}, not {self.kind!r}")
        missing = set(self.classes) ^ set(self.library)
        per_theory = [*self.thresholds.values(), self.novelty.get("means", {}), *self.novelty.get("thresholds", {}).values()]
        if missing or any(set(self.classes) != set(t) for t in per_theory):
            raise PairhuntError(f"theory-map contract: library, thresholds, novelty test and classes disagree ({sorted(missing)})")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> EmbeddingContract:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise PairhuntError(f"{source}: malformed pairhunt metadata ({error})") from error
        if values.get("kind") != EMBED_KIND:
            raise PairhuntError(f"{source} is a {values.get('kind')!r} model, not a theory map (`pairhunt train embed`)")
        if "novelty" not in values:
            raise PairhuntError(
                f"{source} is a theory map from before the pooled-representation unlike test (pairhunt "
                f"{values.get('pairhunt_version', '?')}): train it again with `pairhunt train embed` and export it"
            )
        try:
            return cls(**values)
        except TypeError as error:
            raise PairhuntError(f"{source}: malformed theory-map metadata ({error})") from error


def read_embedding_contract(path: str | Path) -> EmbeddingContract:
    """The contract of an exported theory map (clear error for other files)."""
    from pairhunt.assign.onnx import read_metadata

    return EmbeddingContract.from_json(read_metadata(path), source=str(path))
