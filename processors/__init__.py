"""coffea processors of pairhunt (installed as ``pairhunt.processors``)."""

from pairhunt.processors.pair_processor import PairProcessor

__all__ = ["PairProcessor"]
