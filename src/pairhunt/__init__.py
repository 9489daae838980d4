"""pairhunt: reconstruct pair-produced heavy particles in columnar HEP analyses, and hunt bumps."""

from pairhunt._version import __version__

__all__ = ["__version__"]
