"""The keys a topology config may hold, and a YAML reader that says where a file is broken.

A misspelt ``selction:`` used to be ignored, and every cut with it: an unknown key is an error
that names the nearest valid one. Plain YAML keeps the last of two equal keys; here that is an
error too, with the file and line.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from pairhunt.errors import PairhuntError

NAMES = "*"  # a mapping whose keys the user chooses (inputs, features)

SELECTION = dict.fromkeys(("pt_min", "eta_max", "min_count", "max_count", "keep", "ht_min"))
INPUT = {
    "collection": None,
    "kind": None,
    "assignable": None,
    "selection": SELECTION,
    "sources": {NAMES: {"collections": None, **{k: None for k in SELECTION if k not in ("keep", "ht_min")}}},
    "features": {NAMES: {"branch": None, "transform": None, "default": None, "source": None}},
}
PAIRHUNT = {
    "name": None,
    "inputs": {NAMES: INPUT},
    "event": None,
    "permutations": None,
    "histograms": {"mass": dict.fromkeys(("bins", "start", "stop"))},
    "regressions": None,
    "classifications": None,
    "truth": {"parents": None, "products": {NAMES: {"pdgId": None, "via": None}}},
}
SPANET = {
    "INPUTS": {"SEQUENTIAL": None, "GLOBAL": None},
    "EVENT": None,
    "PERMUTATIONS": None,
    "REGRESSIONS": None,
    "CLASSIFICATIONS": None,
}


def unknown_key(data: Any, schema: dict | None, where: str = "") -> str | None:
    """The first key of ``data`` that ``schema`` does not allow, with the nearest valid one."""
    if schema is None or not isinstance(data, dict):
        return None
    for key, value in data.items():
        inside = f"{where}.{key}" if where else str(key)
        if NAMES in schema:
            problem = unknown_key(value, schema[NAMES], inside)
        elif key in schema:
            problem = unknown_key(value, schema[key], inside)
        else:
            nearest = difflib.get_close_matches(str(key), list(schema), n=1)
            hint = f"did you mean {nearest[0]!r}?" if nearest else f"valid keys: {', '.join(schema)}"
            problem = f"unknown key {key!r}{f' in {where}' if where else ''}; {hint}"
        if problem:
            return problem
    return None


def check_keys(data: Any, schema: dict, source: str) -> None:
    """Raise a :class:`PairhuntError` naming ``source`` for a key ``schema`` does not allow."""
    problem = unknown_key(data, schema)
    if problem:
        raise PairhuntError(f"{source}: {problem}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a mapping key given twice."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> Any:
    """The YAML file's content; a syntax error or a repeated key names ``path:line:column``."""
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise PairhuntError(f"{where}: {error.problem or error.context}") from error
    except yaml.YAMLError as error:
        raise PairhuntError(f"{path}: {error}") from error
