"""The theory map's network: a deep-sets embedding of a set of events, and its contrastive loss.

Every event passes the same MLP φ; the set is the *weighted mean* of the φ's, then an MLP ρ maps
it to a point in a latent space of 2-4 dimensions. The mean makes the point independent of the
order of the events and of the set size, and lets a background estimate enter with negative
weights (``pairhunt characterize`` subtracts sideband events that way). Feature standardisation
lives in the graph.

The loss is Hadsell, Chopra and LeCun's contrastive margin loss (CVPR 2006) over every pair of
sets in a batch: sets of one theory are pulled together (d²), sets of different theories pushed
apart up to the margin (max(0, margin - d)²). The two kinds of pairs are averaged separately, so
the number of theories does not tilt the balance.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SetEmbedding(nn.Module):
    """``forward(events [S, K, F], weights [S, K]) -> [S, latent]``."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, hidden: int, latent: int):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        n_features = len(mean)
        self.phi = _mlp([n_features, hidden, hidden, hidden])
        self.rho = _mlp([hidden, hidden, latent])

    def pool(self, events: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``[S, hidden]``: the set's representation before ρ, the weighted mean of the φ's."""
        per_event = self.phi((events - self.mean) / self.std)
        return (weights.unsqueeze(-1) * per_event).sum(dim=1) / weights.sum(dim=1, keepdim=True)

    def forward(self, events: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.rho(self.pool(events, weights))


class MapOutputs(nn.Module):
    """What the exported map computes: the point on the map and the pooled representation (the
    novelty test's statistic, :mod:`pairhunt.theory.novelty`)."""

    def __init__(self, model: SetEmbedding):
        super().__init__()
        self.model = model

    def forward(self, events: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.model.pool(events, weights)
        return self.model.rho(pooled), pooled


def contrastive_loss(points: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over same-theory pairs of d² plus mean over different-theory pairs of max(0, margin - d)²."""
    difference = points.unsqueeze(0) - points.unsqueeze(1)
    distance = torch.sqrt((difference**2).sum(dim=-1) + 1e-12)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    upper = torch.ones_like(same).triu(diagonal=1)
    positive, negative = same & upper, ~same & upper
    loss = points.new_zeros(())
    if positive.any():
        loss = loss + (distance[positive] ** 2).mean()
    if negative.any():
        loss = loss + (torch.clamp(margin - distance[negative], min=0) ** 2).mean()
    return loss
