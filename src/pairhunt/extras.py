"""Optional dependencies (pyproject's extras): a command that needs one says so in one line
before it starts, and a base install (``pip install pairhunt``) keeps every other command."""

from __future__ import annotations

import importlib
import importlib.util

from pairhunt.errors import PairhuntError

# extra -> the modules a command of it imports
EXTRAS = {
    "generate": ("pythia8mc", "fastjet"),
    "train": ("torch", "onnx", "onnxscript"),
    "anomaly": ("torch", "zuko"),
}


def require(command: str, *extras: str) -> None:
    """Raise a :class:`PairhuntError` naming the first of ``extras`` whose modules do not import."""
    for extra in extras:
        for module in EXTRAS[extra]:
            try:
                importlib.import_module(module)
            except ImportError as error:
                raise PairhuntError(f"{command} needs the '{extra}' extra (pip install 'pairhunt[{extra}]'): {error}") from None


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing it (torch alone takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False
