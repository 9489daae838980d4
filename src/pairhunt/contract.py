"""The contract an exported model carries in its ONNX metadata, and its checks.

Training writes the topology (with the feature list, branches and transforms), the
normalisation, the jet count it was trained with and the model kind into the ONNX file under the
metadata key ``pairhunt``. The processor builds its inputs from this contract and refuses a
model whose contract does not match the processor's topology: a mismatch never passes silently.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from pairhunt._version import __version__
from pairhunt.errors import PairhuntError
from pairhunt.topology import Topology, topology_from_dict

METADATA_KEY = "pairhunt"
MODEL_KINDS = ("spanet", "abc")


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

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise PairhuntError(f"unknown model kind {self.kind!r}; expected one of {MODEL_KINDS}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ModelContract:
        try:
            return cls(**json.loads(text))
        except (TypeError, json.JSONDecodeError) as error:
            raise PairhuntError(f"{source}: malformed pairhunt metadata ({error})") from error

    @property
    def model_topology(self) -> Topology:
        return topology_from_dict(self.topology)

    def check(self, topology: Topology, source: str = "model") -> None:
        """Raise unless ``topology`` (the processor's) matches the model's, feature by feature."""
        model = self.model_topology
        if (model.parents, model.products) != (topology.parents, topology.products):
            raise PairhuntError(
                f"{source} reconstructs {dict(model.products)} but the processor's topology "
                f"{topology.name!r} has {dict(topology.products)}"
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
