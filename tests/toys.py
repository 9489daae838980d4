"""Truth-perfect toy events: parents decayed by exact two-body kinematics into massless jets."""

from __future__ import annotations

import awkward as ak
import numpy as np


def _boost(p: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Boost four-vectors ``p[..., (px, py, pz, E)]`` by velocity ``beta[..., 3]``."""
    b2 = np.sum(beta * beta, axis=-1, keepdims=True)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = np.sum(beta * p[..., :3], axis=-1, keepdims=True)
    coefficient = np.where(b2 > 0, (gamma - 1.0) * bp / np.where(b2 > 0, b2, 1.0), 0.0)
    space = p[..., :3] + coefficient * beta + gamma * beta * p[..., 3:4]
    return np.concatenate([space, gamma * (p[..., 3:4] + bp)], axis=-1)


def two_body(parent: np.ndarray, mass: np.ndarray, m1: np.ndarray, m2: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic decay of ``parent`` (mass ``mass``) into daughters of masses m1, m2."""
    n = len(parent)
    p = np.sqrt(np.maximum((mass**2 - (m1 + m2) ** 2) * (mass**2 - (m1 - m2) ** 2), 0.0)) / (2 * mass)
    cos = rng.uniform(-1, 1, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    sin = np.sqrt(1 - cos**2)
    direction = np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=1)
    d1 = np.concatenate([p[:, None] * direction, np.sqrt(p**2 + m1**2)[:, None]], axis=1)
    d2 = np.concatenate([-p[:, None] * direction, np.sqrt(p**2 + m2**2)[:, None]], axis=1)
    beta = parent[:, :3] / parent[:, 3:4]
    return _boost(d1, beta), _boost(d2, beta)


def parents(n: int, mass: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two back-to-back parents with random pT and rapidity."""
    pt = rng.uniform(50, 300, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    out = []
    for sign in (1, -1):
        eta = rng.uniform(-1, 1, n)
        px, py, pz = sign * pt * np.cos(phi), sign * pt * np.sin(phi), pt * np.sinh(eta)
        out.append(np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)], axis=1))
    return out[0], out[1]


def ttbar(n: int, rng, top: float = 172.5, w: float = 80.4) -> list[list[np.ndarray]]:
    """Per top the four-momenta of (q1, q2, b): exact top and W masses."""
    zero = np.zeros(n)
    tops = []
    for t in parents(n, top, rng):
        w_boson, b = two_body(t, np.full(n, top), np.full(n, w), zero, rng)
        q1, q2 = two_body(w_boson, np.full(n, w), zero, zero, rng)
        tops.append([q1, q2, b])
    return tops


def three_body_pairs(n: int, rng, mass: float = 1000.0) -> list[list[np.ndarray]]:
    """Per parent three massless quarks (sequential decay through a random intermediate mass)."""
    zero = np.zeros(n)
    out = []
    for parent in parents(n, mass, rng):
        m12 = rng.uniform(0.2, 0.8, n) * mass
        pair, q3 = two_body(parent, np.full(n, mass), m12, zero, rng)
        q1, q2 = two_body(pair, m12, zero, zero, rng)
        out.append([q1, q2, q3])
    return out


def to_jets(decays: list[list[np.ndarray]], rng, extra: int = 0) -> tuple[ak.Array, np.ndarray, np.ndarray]:
    """Shuffled jet records (pt, eta, phi, mass) and each jet's true parent and slot.

    ``extra`` adds soft unrelated jets. Returns ``(jets, parent [E, J], slot [E, J])`` in
    the jets' (pT-ordered) order.
    """
    momenta = [p for decay in decays for p in decay]
    labels = [(i, k) for i, decay in enumerate(decays) for k in range(len(decay))]
    n = len(momenta[0])
    for _ in range(extra):
        pt = rng.uniform(26, 40, n)
        eta, phi = rng.uniform(-2, 2, n), rng.uniform(-np.pi, np.pi, n)
        momenta.append(np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=1))
        labels.append((-1, -1))
    p = np.stack(momenta, axis=1)  # [E, J, 4]
    pt = np.hypot(p[..., 0], p[..., 1])
    order = np.argsort(-pt, axis=1)
    p = np.take_along_axis(p, order[..., None], axis=1)
    parent = np.array([l[0] for l in labels])[order]
    slot = np.array([l[1] for l in labels])[order]
    pt = np.hypot(p[..., 0], p[..., 1])
    jets = ak.zip(
        {
            "pt": pt,
            "eta": np.arcsinh(p[..., 2] / pt),
            "phi": np.arctan2(p[..., 1], p[..., 0]),
            "mass": np.sqrt(np.maximum(p[..., 3] ** 2 - (p[..., :3] ** 2).sum(-1), 0.0)),
        }
    )
    return ak.Array(jets), parent, slot
