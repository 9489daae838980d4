"""Pairwise jet features (Δη, Δφ, ΔR, m_ij) and the attention bias a small MLP makes of them.

The ABC model (as in its paper) and, with ``--pair-bias``, the SPA-NET model add this bias to
their jet self-attention, as the Particle Transformer does: from per-jet (pT, η, φ, m) inputs an
attention layer cannot easily form an invariant mass, and m_ij is what singles out, e.g., the two
jets of a W. The features are computed in the graph from the jet features the model already
reads, so an exported model needs no new input.
"""

from __future__ import annotations

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
    pair = p4[:, :, None, :] + p4[:, None, :, :]
    mass2 = pair[..., 3] ** 2 - pair[..., 0] ** 2 - pair[..., 1] ** 2 - pair[..., 2] ** 2
    log_mass = torch.log1p(torch.sqrt(mass2.clamp_min(0.0) + 1e-6))
    return torch.stack([delta_eta, cos_dphi, sin_dphi, delta_r, log_mass], dim=-1)


def pair_scale(data: TrainingData, features: list[str], max_events: int = 20_000) -> list[list[float]]:
    """Mean and std of the pairwise features over pairs of distinct real jets."""
    jets = torch.as_tensor(data.features[:max_events], dtype=torch.float32)
    mask = torch.as_tensor(data.mask[:max_events])
    pairs = mask[:, :, None] & mask[:, None, :] & ~torch.eye(mask.shape[1], dtype=torch.bool)
    values = pair_features(jets, kinematic_index(features))[pairs]
    return [values.mean(dim=0).tolist(), values.std(dim=0).clamp_min(1e-3).tolist()]


def pair_bias_mlp(hidden: int, heads: int) -> nn.Sequential:
    """Normalised pairwise features -> one additive attention bias per head."""
    return nn.Sequential(
        nn.Linear(len(PAIR_FEATURES), hidden), nn.GELU(),
        nn.Linear(hidden, hidden), nn.GELU(),
        nn.Linear(hidden, heads),
    )
