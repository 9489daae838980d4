"""Signal region and sidebands in the resonant feature: which role each event plays.

Every event in the analysis range has exactly one role, so no event is both a "signal-region"
and a "sideband" example (the bookkeeping CWoLa hunting and CATHODE rest on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pairhunt.errors import PairhuntError

OUTSIDE, SIDEBAND, SIGNAL_REGION = 0, 1, 2


@dataclass(frozen=True)
class Window:
    """Signal region ``[low, high)`` in GeV with a sideband of ``sideband`` times its width on each side."""

    low: float
    high: float
    sideband: float = 1.0

    def __post_init__(self):
        if not 0 < self.low < self.high:
            raise PairhuntError(f"signal region must satisfy 0 < low < high, got [{self.low}, {self.high})")
        if self.sideband <= 0:
            raise PairhuntError(f"the sideband width must be positive, got {self.sideband}")
        if self.range[0] <= 0:
            raise PairhuntError(f"the lower sideband of [{self.low}, {self.high}) would reach below 0 GeV")

    @property
    def width(self) -> float:
        return self.high - self.low

    @property
    def range(self) -> tuple[float, float]:
        """The analysis range: both sidebands and the signal region."""
        return self.low - self.sideband * self.width, self.high + self.sideband * self.width

    def roles(self, mass: np.ndarray) -> np.ndarray:
        """Per event ``SIGNAL_REGION``, ``SIDEBAND`` or ``OUTSIDE`` (NaN masses are outside)."""
        mass = np.asarray(mass, dtype=np.float64)
        low, high = self.range
        with np.errstate(invalid="ignore"):
            roles = np.where((mass >= low) & (mass < high), SIDEBAND, OUTSIDE)
            return np.where((mass >= self.low) & (mass < self.high), SIGNAL_REGION, roles)

    def edges(self, bins_per_region: int = 5) -> np.ndarray:
        """Bin edges over the analysis range that fall on the signal-region boundaries."""
        step = self.width / bins_per_region
        n_side = max(1, int(round(self.sideband * bins_per_region)))
        return self.low + step * np.arange(-n_side, bins_per_region + n_side + 1)

    def to_dict(self) -> dict:
        return {"signal_region_gev": [self.low, self.high], "analysis_range_gev": list(self.range), "sideband": self.sideband}


def sliding_windows(low: float, high: float, width: float, step: float, sideband: float = 1.0) -> list[Window]:
    """Signal regions of relative ``width`` (e.g. 0.3: high = 1.3 low) whose lower edges step by
    the factor ``1 + step`` from ``low`` while their upper edge stays below ``high``."""
    if width <= 0 or step <= 0:
        raise PairhuntError("sliding windows need a positive width and step")
    windows, start = [], low
    while start * (1 + width) <= high:
        windows.append(Window(start, start * (1 + width), sideband))
        start *= 1 + step
    return windows
