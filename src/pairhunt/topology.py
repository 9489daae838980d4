"""The event topology: inputs, their NanoAOD branches and selection, parents, decay products, symmetries.

This is the one contract between data, baselines, training and ONNX models. A topology comes
from pairhunt's YAML (``src/pairhunt/topologies/*.yaml``) or from a SPANet event YAML
(INPUTS / EVENT / PERMUTATIONS), and serialises back to a plain dict for model metadata.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from pairhunt.errors import PairhuntError
from pairhunt.topology_schema import PAIRHUNT, SPANET, check_keys, read_yaml
from pairhunt.topology_truth import TruthDecay, truth_from_dict

TRANSFORMS = ("none", "log1p", "cos", "sin")
SOURCE_CUTS = ("pt_min", "eta_max", "min_count", "max_count")  # what a merged input's source selects


@dataclass(frozen=True)
class Feature:
    """One input feature: the first branch of ``branches`` present in a file, transformed.

    A branch written ``"btagDeepFlavB>0.2783"`` is the 0/1 flag of a working point, so a model
    trained on the generator's ``btag`` flag can read real NanoAOD. In a merged input (jets and
    leptons), ``default`` is the value of objects whose collection has none of the branches (a
    lepton's b-tag), and a feature with ``source`` collections instead of branches is 1 for
    objects from those collections, 0 otherwise (the object type).
    """

    name: str
    branches: tuple[str, ...]
    transform: str = "none"
    default: float | None = None
    source: tuple[str, ...] = ()

    def __post_init__(self):
        if self.transform not in TRANSFORMS:
            raise PairhuntError(f"feature {self.name!r}: unknown transform {self.transform!r}; use one of {TRANSFORMS}")
        if bool(self.source) == bool(self.branches):
            raise PairhuntError(f"feature {self.name!r}: give either branches or source collections")


@dataclass(frozen=True)
class Selection:
    """Object selection of a sequential input: kinematic cuts, jet-count window, leading N kept."""

    pt_min: float = 0.0
    eta_max: float = math.inf
    min_count: int = 0
    max_count: int | None = None  # events with more selected objects are rejected
    keep: int = 10  # leading objects (by pT) passed on
    ht_min: float = 0.0  # scalar pT sum of the selected objects (all of them, not only the kept)

    def __post_init__(self):
        if self.keep < 1 or self.min_count < 0 or self.ht_min < 0 or (self.max_count is not None and self.max_count < self.min_count):
            raise PairhuntError(f"inconsistent selection {self}")


@dataclass(frozen=True)
class Source:
    """NanoAOD collections whose objects join a merged sequential input, with their own object
    cuts (pT, |eta|) and a window on how many of them an event has (``min_count``, ``max_count``)."""

    name: str
    collections: tuple[str, ...]
    selection: Selection = field(default_factory=Selection)


@dataclass(frozen=True)
class Input:
    """An input collection: ``sequential`` (jets, leptons: many per event) or ``global`` (MET).

    A sequential input with ``sources`` merges several collections (jets, electrons, muons) into
    one object sequence, as SPANet's semi-leptonic examples do: the objects of every source
    collection in order, each collection's objects in file order; ``collection`` is then the name
    of that merged sequence.
    """

    name: str
    collection: str
    kind: str
    features: tuple[Feature, ...]
    selection: Selection = field(default_factory=Selection)
    assignable: bool = False
    sources: tuple[Source, ...] = ()

    @property
    def source_collections(self) -> tuple[str, ...]:
        """The NanoAOD collections the input reads, in merge order (its own when not merged)."""
        return tuple(c for s in self.sources for c in s.collections) if self.sources else (self.collection,)


@dataclass(frozen=True)
class Topology:
    """Parents (event particles), their ordered decay products, and the symmetry groups."""

    name: str
    inputs: tuple[Input, ...]
    parents: tuple[str, ...]
    products: dict[str, tuple[str, ...]]
    parent_symmetries: tuple[tuple[str, ...], ...] = ()
    product_symmetries: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    mass_axis: tuple[int, float, float] = (100, 0.0, 500.0)
    regressions: tuple[str, ...] = ()  # event-level regression targets (SPA-NET extension)
    classifications: tuple[str, ...] = ()  # event-level classification targets
    truth: TruthDecay | None = None  # parents and products in NanoAOD GenPart (real MC truth)

    def __post_init__(self):
        for parent, products in self.products.items():
            repeated = sorted({p for p in products if products.count(p) > 1})
            if repeated:
                raise PairhuntError(
                    f"topology {self.name!r}: {parent} lists the product(s) {repeated} more than once"
                )
        for group in self.parent_symmetries:
            unknown = set(group) - set(self.parents)
            if unknown:
                raise PairhuntError(f"topology {self.name!r}: symmetry names unknown parents {sorted(unknown)}")
        for parent, groups in self.product_symmetries.items():
            for group in groups:
                unknown = set(group) - set(self.products[parent])
                if unknown:
                    raise PairhuntError(f"topology {self.name!r}: {parent} has no products {sorted(unknown)}")
        if not any(i.assignable for i in self.inputs):
            raise PairhuntError(f"topology {self.name!r} has no assignable input")
        if self.jets.selection.keep < self.n_assigned:
            raise PairhuntError(
                f"topology {self.name!r}: keep {self.jets.selection.keep} is below the {self.n_assigned} "
                "decay products; every product needs a jet"
            )

    @property
    def jets(self) -> Input:
        """The assignable sequential input whose objects are assigned to parents."""
        return next(i for i in self.inputs if i.assignable)

    @property
    def n_parents(self) -> int:
        return len(self.parents)

    @property
    def max_products(self) -> int:
        return max(len(p) for p in self.products.values())

    @property
    def products_per_parent(self) -> tuple[int, ...]:
        return tuple(len(self.products[p]) for p in self.parents)

    @property
    def n_assigned(self) -> int:
        """Objects needed to fill every parent."""
        return sum(len(p) for p in self.products.values())

    def with_selection(self, **changes) -> Topology:
        """A copy whose assignable input's selection has ``changes`` (``keep=8``, ``min_count=4``).

        A ``min_count`` below a merged input's source minimum lowers that too (training on partial
        events: ``min_count=3`` lets in semi-leptonic events with three jets and the lepton).
        """
        jets = self.jets
        updated = dataclasses.replace(jets, selection=dataclasses.replace(jets.selection, **changes))
        if "min_count" in changes:
            lowest = changes["min_count"]
            updated = dataclasses.replace(
                updated,
                sources=tuple(
                    dataclasses.replace(s, selection=dataclasses.replace(s.selection, min_count=min(s.selection.min_count, lowest)))
                    for s in jets.sources
                ),
            )
        inputs = tuple(updated if i is jets else i for i in self.inputs)
        return dataclasses.replace(self, inputs=inputs)

    def symmetric_products(self, parent: str) -> list[tuple[int, ...]]:
        """Product slot indices that are interchangeable within ``parent``."""
        names = self.products[parent]
        return [tuple(names.index(n) for n in group) for group in self.product_symmetries.get(parent, ())]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (YAML/JSON-ready) that :func:`topology_from_dict` reads back."""
        return {
            "name": self.name,
            "inputs": {
                i.name: {
                    "collection": i.collection,
                    "kind": i.kind,
                    "assignable": i.assignable,
                    "selection": _selection_dict(i.selection),
                    "features": {f.name: _feature_dict(f) for f in i.features},
                    **(
                        {"sources": {s.name: {"collections": list(s.collections), **_selection_dict(s.selection, SOURCE_CUTS)} for s in i.sources}}
                        if i.sources
                        else {}
                    ),
                }
                for i in self.inputs
            },
            "event": {p: list(self.products[p]) for p in self.parents},
            "permutations": {
                "event": [list(g) for g in self.parent_symmetries],
                **{p: [list(g) for g in groups] for p, groups in self.product_symmetries.items()},
            },
            "histograms": {"mass": dict(zip(("bins", "start", "stop"), self.mass_axis))},
            "regressions": list(self.regressions),
            "classifications": list(self.classifications),
            **({"truth": self.truth.to_dict(self.parents)} if self.truth else {}),
        }


def _selection_dict(selection: Selection, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {k: v for k, v in asdict(selection).items() if v is not None and v != math.inf and (keys is None or k in keys)}


def _feature_dict(feature: Feature) -> dict[str, Any]:
    if feature.source:
        return {"source": list(feature.source), "transform": feature.transform}
    default = {} if feature.default is None else {"default": feature.default}
    return {"branch": list(feature.branches), "transform": feature.transform, **default}


def _feature(name: str, spec: Any) -> Feature:
    if isinstance(spec, str):
        spec = {"branch": spec}
    source = spec.get("source", ())
    source = (source,) if isinstance(source, str) else tuple(source)
    branches = spec.get("branch", () if source else name)
    branches = (branches,) if isinstance(branches, str) else tuple(branches)
    default = spec.get("default")
    return Feature(name, branches, spec.get("transform", "none"), None if default is None else float(default), source)


def _source(name: str, spec: dict[str, Any]) -> Source:
    collections = spec.get("collections", name)
    collections = (collections,) if isinstance(collections, str) else tuple(collections)
    return Source(name, collections, Selection(**{k: v for k, v in spec.items() if k != "collections"}))


def topology_from_dict(data: dict[str, Any], source: str = "topology") -> Topology:
    """Build a :class:`Topology` from pairhunt's YAML layout (see ``topologies/*.yaml``).

    ``source`` (the file) prefixes the message of an unknown key.
    """
    check_keys(data, PAIRHUNT, source)
    try:
        event = {p: tuple(products) for p, products in data["event"].items()}
        inputs = tuple(
            Input(
                name=name,
                collection=spec.get("collection", name),
                kind=spec.get("kind", "sequential"),
                assignable=bool(spec.get("assignable", False)),
                selection=Selection(**spec.get("selection", {})),
                features=tuple(_feature(f, s) for f, s in spec["features"].items()),
                sources=tuple(_source(n, s) for n, s in (spec.get("sources") or {}).items()),
            )
            for name, spec in data["inputs"].items()
        )
        permutations = {k.lower() if k.upper() == "EVENT" else k: v for k, v in data.get("permutations", {}).items()}
        mass = data.get("histograms", {}).get("mass", {"bins": 100, "start": 0.0, "stop": 500.0})
        return Topology(
            name=data["name"],
            inputs=inputs,
            parents=tuple(event),
            products=event,
            parent_symmetries=tuple(tuple(g) for g in permutations.get("event", ())),
            product_symmetries={p: tuple(tuple(g) for g in permutations[p]) for p in event if p in permutations},
            mass_axis=(int(mass["bins"]), float(mass["start"]), float(mass["stop"])),
            regressions=tuple(data.get("regressions", ())),
            classifications=tuple(data.get("classifications", ())),
            truth=truth_from_dict(data["truth"], tuple(event), event, source) if "truth" in data else None,
        )
    except (KeyError, TypeError) as error:
        raise PairhuntError(f"malformed topology config: missing or bad entry {error}") from error


# SPANet feature options -> pairhunt transform; the normalisation itself is learnt at training
_SPANET_TRANSFORMS = {"none": "none", "normalize": "none", "log_normalize": "log1p"}


def _event_targets(section: dict | None) -> tuple[str, ...]:
    """Names of SPANet's event-level regression/classification targets (``EVENT`` entries)."""
    entries = (section or {}).get("EVENT") or []
    names = []
    for entry in entries:
        names.extend(entry if isinstance(entry, dict) else [entry])
    return tuple(names)


def topology_from_spanet(data: dict[str, Any], name: str = "spanet") -> Topology:
    """Read SPANet's event YAML (INPUTS / EVENT / PERMUTATIONS).

    The first sequential input is the assignable one (SPANet's ``Source``); its features map to
    NanoAOD branches of the same name. Products given as ``{product: input}`` mappings (SPANet
    v2.1) keep their order.
    """
    check_keys(data, SPANET, name)
    try:
        sequential = data["INPUTS"]["SEQUENTIAL"]
        inputs = []
        for index, (input_name, features) in enumerate(sequential.items()):
            inputs.append(
                Input(
                    name=input_name,
                    collection=input_name,
                    kind="sequential",
                    assignable=index == 0,
                    features=tuple(
                        Feature(f, (f,), _SPANET_TRANSFORMS.get(option, "none")) for f, option in features.items()
                    ),
                )
            )
        for input_name, features in (data["INPUTS"].get("GLOBAL") or {}).items():
            inputs.append(
                Input(
                    name=input_name,
                    collection=input_name,
                    kind="global",
                    features=tuple(
                        Feature(f, (f,), _SPANET_TRANSFORMS.get(option, "none")) for f, option in features.items()
                    ),
                )
            )
        event = {p: tuple(products) for p, products in data["EVENT"].items()}
        permutations = data.get("PERMUTATIONS") or {}
        n_products = sum(len(p) for p in event.values())
        first = inputs[0]
        inputs[0] = Input(first.name, first.collection, first.kind, first.features, Selection(min_count=n_products), True)
        return Topology(
            name=name,
            inputs=tuple(inputs),
            parents=tuple(event),
            products=event,
            parent_symmetries=tuple(tuple(g) for g in permutations.get("EVENT", ())),
            product_symmetries={p: tuple(tuple(g) for g in permutations[p]) for p in event if p in permutations},
            regressions=_event_targets(data.get("REGRESSIONS")),
            classifications=_event_targets(data.get("CLASSIFICATIONS")),
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise PairhuntError(f"malformed SPANet event config: missing or bad entry {error}") from error


def load_topology(name_or_path: str | Path) -> Topology:
    """A shipped topology by name (``ttbar_allhad``, ``pair_3body``) or a YAML file.

    Files with an ``INPUTS`` section are read as SPANet event configs.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = Path(str(files("pairhunt") / "topologies" / f"{name_or_path}.yaml"))
    if not path.is_file():
        shipped = sorted(p.name.removesuffix(".yaml") for p in (files("pairhunt") / "topologies").iterdir())
        raise PairhuntError(f"no topology {str(name_or_path)!r}: not a file and not one of {shipped}")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise PairhuntError(f"{path}: a topology is a mapping (name, inputs, event, ...), not {type(data).__name__}")
    if "INPUTS" in data:
        return topology_from_spanet(data, name=path.stem)
    return topology_from_dict(data, source=str(path))
