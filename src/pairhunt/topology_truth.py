"""A topology's optional ``truth`` block: which generator particles are its parents and products.

Real NanoAOD MC has no ``Jet_truthParent``/``Jet_truthProduct``, only the generator record
(``GenPart``). To label its jets, the topology names the PDG id of every parent and, for every
decay product, the |PDG id| of the quark and of the resonances between parent and quark::

    truth:
      parents: {t1: 6, t2: -6}          # signed: top is t1, antitop t2 (equal ids: record order)
      products:
        q1: {pdgId: [1, 2, 3, 4, 5], via: [24]}   # t -> W -> q
        q2: {pdgId: [1, 2, 3, 4, 5], via: [24]}
        b:  {pdgId: 5}                             # t -> b
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pairhunt.errors import PairhuntError


@dataclass(frozen=True)
class ProductTruth:
    """The generator particle of one decay product: its |PDG id|s, reached from the parent ``via``
    intermediate resonances (|PDG id|, outermost first)."""

    pdg_ids: tuple[int, ...]
    via: tuple[int, ...] = ()


@dataclass(frozen=True)
class TruthDecay:
    """PDG id of every parent (topology order) and the generator particle of every product name."""

    parents: tuple[int, ...]
    products: dict[str, ProductTruth]

    def to_dict(self, parent_names: tuple[str, ...]) -> dict[str, Any]:
        """The YAML layout that :func:`truth_from_dict` reads back."""
        return {
            "parents": dict(zip(parent_names, self.parents)),
            "products": {n: {"pdgId": list(p.pdg_ids), "via": list(p.via)} for n, p in self.products.items()},
        }


def _pdg_ids(value: Any, where: str, signed: bool = False) -> tuple[int, ...]:
    """A PDG id or a list of them, checked: integers, non-zero, positive unless ``signed``."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and (v != 0 if signed else v > 0) for v in values):
        kind = "non-zero integer PDG id" if signed else "positive integer |PDG id|"
        raise PairhuntError(f"{where}: expected a {kind} or a list of them, got {value!r}")
    return tuple(values)


def truth_from_dict(data: Any, parents: tuple[str, ...], products: dict[str, tuple[str, ...]], source: str) -> TruthDecay:
    """Read and check a ``truth`` block against the topology's parents and products."""
    where = f"{source}: truth"
    if not isinstance(data, dict) or not isinstance(data.get("parents"), dict) or not isinstance(data.get("products"), dict):
        raise PairhuntError(f"{where}: needs the mappings 'parents' (name: pdgId) and 'products' (name: {{pdgId, via}})")
    if set(data["parents"]) != set(parents):
        raise PairhuntError(f"{where}.parents names {sorted(data['parents'])}, the topology's parents are {sorted(parents)}")
    names = {name for parent in parents for name in products[parent]}
    if set(data["products"]) != names:
        raise PairhuntError(f"{where}.products names {sorted(data['products'])}, the topology's products are {sorted(names)}")
    parent_ids = tuple(_pdg_ids(data["parents"][p], f"{where}.parents.{p}", signed=True) for p in parents)
    if any(len(ids) != 1 for ids in parent_ids):
        raise PairhuntError(f"{where}.parents: one PDG id per parent")
    specs = {}
    for name, spec in data["products"].items():
        if not isinstance(spec, dict) or "pdgId" not in spec:
            raise PairhuntError(f"{where}.products.{name}: expected {{pdgId: ..., via: [...]}}, got {spec!r}")
        via = spec.get("via", [])
        specs[name] = ProductTruth(
            _pdg_ids(spec["pdgId"], f"{where}.products.{name}.pdgId"),
            _pdg_ids(via, f"{where}.products.{name}.via") if via != [] else (),
        )
    return TruthDecay(tuple(ids[0] for ids in parent_ids), specs)
