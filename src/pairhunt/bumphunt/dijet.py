"""The dijet function family: f(m) = p0 (1 - x)^p1 x^(p2 + p3 ln x + p4 ln^2 x), x = m / sqrt(s).

The fit works with ``log p0`` (the normalisation spans many orders of magnitude) and integrates
f over each bin with Simpson's rule, so wide bins on a steep spectrum are predicted correctly.
"""

from __future__ import annotations

import numpy as np

SQRT_S = 13000.0
N_PARAMETERS = (3, 4, 5)


def log_density(mass: np.ndarray, params: np.ndarray, sqrt_s: float = SQRT_S) -> np.ndarray:
    """log f(m) per GeV; ``params`` = (log p0, p1, p2[, p3[, p4]])."""
    x = mass / sqrt_s
    log_x = np.log(x)
    exponent = params[2] + sum(params[3 + k] * log_x ** (k + 1) for k in range(len(params) - 3))
    return params[0] + params[1] * np.log1p(-x) + exponent * log_x


def bin_integrals(edges: np.ndarray, params: np.ndarray, sqrt_s: float = SQRT_S) -> np.ndarray:
    """Expected content of each bin: Simpson's rule on f over [low, high]."""
    low, high = edges[:-1], edges[1:]
    mid = 0.5 * (low + high)
    density = [np.exp(log_density(m, params, sqrt_s)) for m in (low, mid, high)]
    return (high - low) * (density[0] + 4.0 * density[1] + density[2]) / 6.0


def start_values(n_params: int, edges: np.ndarray, total: float, sqrt_s: float = SQRT_S) -> np.ndarray:
    """Typical dijet-spectrum shape, normalised to ``total`` entries."""
    params = np.array([0.0, 10.0, -5.0, 0.0, 0.0][:n_params])
    params[0] = np.log(total / bin_integrals(edges, params, sqrt_s).sum())
    return params
