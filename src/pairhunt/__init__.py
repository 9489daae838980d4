"""pairhunt: reconstruct pair-produced heavy particles in columnar HEP analyses, and hunt bumps.

The public API, importable from ``pairhunt`` itself and loaded on first use, so that
``import pairhunt`` (and the command line) stays light:

- processing: :class:`PairProcessor` (the coffea processor), :func:`run_fileset`,
  :func:`load_fileset`, :func:`load_topology`;
- assignment: :func:`make_method` (a method by name, as ``pairhunt run --method`` takes it),
  :class:`Chi2`, :class:`MassAsymmetry`, :class:`OnnxAssignment`, :class:`AbcAssignment`,
  :class:`JetAssignment`, :func:`decode_greedy`, :func:`decode_top_k`;
- any exported model in your own coffea processor: :class:`OnnxWrapper` (``coffea.ml_tools`` style);
- bump hunts: :func:`bump_hunt`, :class:`Spectrum` (more in :mod:`pairhunt.bumphunt`);
- errors: :class:`PairhuntError`.

Training (torch) lives in :mod:`pairhunt.train`, generation (Pythia8) in :mod:`pairhunt.generate`.
"""

from importlib import import_module

from pairhunt._version import __version__

_PUBLIC = {
    "PairProcessor": "pairhunt.processors",
    "run_fileset": "pairhunt.runner",
    "load_fileset": "pairhunt.runner",
    "load_topology": "pairhunt.topology",
    "make_method": "pairhunt.assign.registry",
    "Chi2": "pairhunt.assign.baselines",
    "MassAsymmetry": "pairhunt.assign.baselines",
    "OnnxAssignment": "pairhunt.assign.onnx",
    "AbcAssignment": "pairhunt.assign.abc",
    "JetAssignment": "pairhunt.assign.base",
    "decode_greedy": "pairhunt.assign.decoding",
    "decode_top_k": "pairhunt.assign.decoding",
    "OnnxWrapper": "pairhunt.ml",
    "bump_hunt": "pairhunt.bumphunt",
    "Spectrum": "pairhunt.bumphunt",
    "PairhuntError": "pairhunt.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pairhunt' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
