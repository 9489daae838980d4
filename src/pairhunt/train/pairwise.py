"""Pairwise jet features (Δη, Δφ, ΔR, m_ij) and the attention bias a small MLP makes of them;
the invariant masses of jet tuples, which SPA-NET's ``--tuple-mass`` head scores.

The ABC model (as in its paper) and, with ``--pair-bias``, the SPA-NET model add this bias to
their jet self-attention, as the Particle Transformer does: from per-jet (pT, η, φ, m) inputs an
attention layer cannot easily form an invariant mass, and m_ij is what singles out, e.g., the two
jets of a W. The features are computed in the graph from the jet features the model already
reads, so an exported model needs no new input.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import torch
from torch import nn

from pairhunt.errors import PairhuntError

if TYPE_CHECKING:
    from pairhunt.train.data import TrainingData

# the four-momenta are rebuilt from these features, so a model with pairwise features needs all of them
KINEMATIC_FEATURES = ("log_pt", "eta", "sin_phi", "cos_phi", "log_mass")
PAIR_FEATURES = ("delta_eta", "cos_delta_phi", "sin_delta_phi", "delta_r", "log_mass_ij")


def kinematic_index(features: list[str]) -> dict[str, int]:
    """Where each kinematic feature sits among ``features``; a clear error names any that is missing."""
    missing = [name for name in KINEMATIC_FEATURES if name not in features]
    if missing:
        raise PairhuntError(f"the model rebuilds jet four-momenta and needs the features {missing} as well")
    return {name: features.index(name) for name in KINEMATIC_FEATURES}


def four_momenta(jets: torch.Tensor, index: dict[str, int]) -> torch.Tensor:
    """``[B, N, 4]`` (px, py, pz, E) from the unnormalised features (log1p pT, eta, sin/cos phi, log1p mass)."""
    pt = torch.expm1(jets[..., index["log_pt"]])
    mass = torch.expm1(jets[..., index["log_mass"]])
    px, py = pt * jets[..., index["cos_phi"]], pt * jets[..., index["sin_phi"]]
    pz = pt * torch.sinh(jets[..., index["eta"]])
    energy = torch.sqrt(px * px + py * py + pz * pz + mass * mass)
    return torch.stack([px, py, pz, energy], dim=-1)


def pair_features(jets: torch.Tensor, index: dict[str, int]) -> torch.Tensor:
    """``[B, N, N, 5]``: Δη, cos Δφ, sin Δφ, ΔR and log(1 + m_ij) of every jet pair."""
    eta, sin_phi, cos_phi = (jets[..., index[name]] for name in ("eta", "sin_phi", "cos_phi"))
    delta_eta = eta[:, :, None] - eta[:, None, :]
    cos_dphi = cos_phi[:, :, None] * cos_phi[:, None, :] + sin_phi[:, :, None] * sin_phi[:, None, :]
    sin_dphi = sin_phi[:, :, None] * cos_phi[:, None, :] - cos_phi[:, :, None] * sin_phi[:, None, :]
    delta_r = torch.sqrt(delta_eta**2 + torch.atan2(sin_dphi, cos_dphi) ** 2 + 1e-12)
    p4 = four_momenta(jets, index)
    log_mass = log_invariant_mass(p4[:, :, None, :] + p4[:, None, :, :])
    return torch.stack([delta_eta, cos_dphi, sin_dphi, delta_r, log_mass], dim=-1)


def log_invariant_mass(p4: torch.Tensor) -> torch.Tensor:
    """log(1 + m) of four-momenta ``[..., 4]`` (px, py, pz, E); finite for massless and padded sums."""
    mass2 = p4[..., 3] ** 2 - p4[..., 0] ** 2 - p4[..., 1] ** 2 - p4[..., 2] ** 2
    return torch.log1p(torch.sqrt(mass2.clamp_min(0.0) + 1e-6))


def tuple_mass_count(k: int) -> int:
    """How many masses :func:`tuple_masses` gives a k-tuple: every subset of two or more jets."""
    return 2**k - k - 1


def tuple_masses(p4: torch.Tensor, k: int) -> torch.Tensor:
    """``[B, N, ..., N, F]`` (k jet axes): log(1 + m) of every k-tuple of jets and of each of its
    subsets of two or more jets (for a top: the triplet and its three pairs, one of them the W)."""
    batch, n = p4.shape[:2]
    masses = []
    for size in range(2, k + 1):
        for subset in itertools.combinations(range(k), size):
            total = sum(p4[(slice(None), *(slice(None) if axis == a else None for a in range(k)), slice(None))] for axis in subset)
            masses.append(log_invariant_mass(total).expand([batch] + [n] * k))
    return torch.stack(masses, dim=-1)


def pair_scale(data: TrainingData, features: list[str], max_events: int = 20_000) -> list[list[float]]:
    """Mean and std of the pairwise features over pairs of distinct real jets."""
    jets = torch.as_tensor(data.features[:max_events], dtype=torch.float32)
    mask = torch.as_tensor(data.mask[:max_events])
    pairs = mask[:, :, None] & mask[:, None, :] & ~torch.eye(mask.shape[1], dtype=torch.bool)
    values = pair_features(jets, kinematic_index(features))[pairs]
    return [values.mean(dim=0).tolist(), values.std(dim=0).clamp_min(1e-3).tolist()]


def pair_bias_mlp(hidden: int, heads: int) -> nn.Sequential:
    """Normalised pairwise features -> one additive attention bias per head."""
    return small_mlp(len(PAIR_FEATURES), hidden, heads)


def small_mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """Two hidden GELU layers of one width: what turns a handful of physics features into scores."""
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.GELU(),
        nn.Linear(hidden, hidden), nn.GELU(),
        nn.Linear(hidden, outputs),
    )
