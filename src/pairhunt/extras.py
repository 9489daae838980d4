"""Optional dependencies (pyproject's extras): a command that needs one says so in one line
before it starts, and a base install (``pip install pairhunt``) keeps every other command."""

from __future__ import annotations

import importlib

from pairhunt.errors import PairhuntError

# extra -> the modules a command of it imports
EXTRAS = {
    "generate": ("pythia8mc", "fastjet"),
    "train": ("torch", "onnx", "onnxscript"),
    "anomaly": ("torch", "zuko"),
}


def missing(extra: str) -> ImportError | None:
    """Why ``extra`` is not usable here (the first module that does not import), or None."""
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError as error:
            return error
    return None


def require(command: str, *extras: str) -> None:
    """Raise a :class:`PairhuntError` naming the first of ``extras`` that is not installed."""
    for extra in extras:
        error = missing(extra)
        if error is not None:
            raise PairhuntError(f"{command} needs the '{extra}' extra (pip install 'pairhunt[{extra}]'): {error}")
