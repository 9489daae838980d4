"""Resonant anomaly detection on the reconstructed pair mass: CWoLa hunting and CATHODE, with the
idealised and supervised classifiers as their bounds, on a run's per-event table.

torch (and zuko for CATHODE's flow) is needed here only, as in :mod:`pairhunt.train`. The names
below are imported on first use, so the numpy-only modules (``features``, ``regions``,
``sample``) serve other parts of pairhunt (the theory map) without importing torch.
"""

from __future__ import annotations

import importlib

# public name -> the module that defines it
_EXPORTS = {
    "ClassifierConfig": "classifier", "kfold_scores": "classifier",
    "FEATURES": "features", "mass_correlations": "features",
    "BackgroundFlow": "flow", "FlowConfig": "flow",
    "METHODS": "methods", "Scores": "methods", "SearchConfig": "methods",
    "cathode": "methods", "cwola": "methods", "idealised": "methods", "supervised": "methods",
    "Window": "regions", "sliding_windows": "regions",
    "AnomalySample": "sample", "load_sample": "sample",
    "WindowSearch": "scan", "look_elsewhere": "scan", "scan_windows": "scan",
    "keep_threshold": "significance", "max_sic": "significance", "sculpting": "significance",
    "sic_curve": "significance", "sideband_significance": "significance",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pairhunt.anomaly' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pairhunt.anomaly.{_EXPORTS[name]}"), name)
