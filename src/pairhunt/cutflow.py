"""A cutflow: events (and weighted events) left after each successive selection step."""

from __future__ import annotations

import numpy as np


class Cutflow:
    """Sequential selection steps over one chunk of events; every ``add`` step ANDs with the
    previous, a ``count`` step is counted after them without changing what passes.

    ``as_dict()`` gives ``{"events": {step: n}, "sumw": {step: w}}``; coffea's accumulate adds
    these dicts across chunks, so the cutflow of a whole run accounts for every event read.
    """

    def __init__(self, weights: np.ndarray, first_step: str = "all events"):
        self._weights = np.asarray(weights, dtype=np.float64)
        self._passing = np.ones(len(self._weights), dtype=bool)
        self.events: dict[str, int] = {first_step: len(self._weights)}
        self.sumw: dict[str, float] = {first_step: float(self._weights.sum())}

    def add(self, step: str, mask: np.ndarray) -> None:
        self._passing = self._passing & np.asarray(mask, dtype=bool)
        self.events[step] = int(self._passing.sum())
        self.sumw[step] = float(self._weights[self._passing].sum())

    def count(self, step: str, mask: np.ndarray) -> None:
        """A step that branches off the steps so far: counted, not ANDed into them (one method's
        own cut must not remove events from the other methods)."""
        branch = self._passing & np.asarray(mask, dtype=bool)
        self.events[step] = int(branch.sum())
        self.sumw[step] = float(self._weights[branch].sum())

    @property
    def passing(self) -> np.ndarray:
        return self._passing

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {"events": dict(self.events), "sumw": dict(self.sumw)}
