"""Symmetry augmentation: each training event rotated in phi and mirrored in eta at random.

Both are exact symmetries of pp collisions and of the detector model, so a model that is not
invariant by construction (absolute sin/cos phi and eta inputs) learns them from the data instead
of the azimuths and rapidities of its finite training set: more distinct events for free. The
labels do not change: a jet keeps its parent when the whole event turns.
"""

from __future__ import annotations

import math

import torch

from pairhunt.errors import PairhuntError
from pairhunt.topology import Feature

__all__ = ["Symmetry", "random_symmetry"]


class Symmetry:
    """Where a feature vector holds its phi (as sin/cos pairs) and eta: what the augmentation touches.

    Built from the topology's feature definitions (the branch and transform of each feature), not
    from names, so a feature that depends on phi or eta in a way the augmentation cannot follow
    (a raw phi, a transformed eta) is an error instead of a silently wrong event.
    """

    def __init__(self, features: list[Feature]):
        """``features``: the definitions of the model inputs, in their order."""
        phi: dict[str, int] = {}  # "sin"/"cos" -> position
        self.mirrored: list[int] = []
        for i, feature in enumerate(features):
            branch = feature.branches[0] if feature.branches else None
            if branch == "phi" and feature.transform in ("sin", "cos"):
                phi[feature.transform] = i
            elif branch == "eta" and feature.transform == "none":
                self.mirrored.append(i)
            elif branch in ("phi", "eta"):
                raise PairhuntError(
                    f"feature {feature.name!r} ({feature.transform} of {branch}): symmetry augmentation rotates "
                    "only sin/cos of phi and mirrors only eta itself"
                )
        if len(phi) == 1:
            raise PairhuntError("symmetry augmentation needs both sin and cos of phi to rotate it")
        self.rotated = [(phi["sin"], phi["cos"])] if phi else []

    def __call__(self, values: torch.Tensor, angle: torch.Tensor, mirror: torch.Tensor) -> torch.Tensor:
        """``values`` [B, ..., F] rotated by ``angle`` [B] and multiplied in eta by ``mirror`` [B] (±1).

        Works on unnormalised features; zero-padded objects stay zero.
        """
        shape = (len(values),) + (1,) * (values.dim() - 2)
        angle, mirror = angle.view(shape), mirror.view(shape)
        out = values.clone()
        for sin_i, cos_i in self.rotated:
            sin, cos = values[..., sin_i], values[..., cos_i]
            out[..., sin_i] = sin * torch.cos(angle) + cos * torch.sin(angle)
            out[..., cos_i] = cos * torch.cos(angle) - sin * torch.sin(angle)
        for i in self.mirrored:
            out[..., i] = values[..., i] * mirror
        return out


def random_symmetry(count: int, generator: torch.Generator, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """One angle in [0, 2 pi) and one eta sign (±1, each with probability 1/2) per event."""
    angle = torch.rand(count, generator=generator) * (2 * math.pi)
    mirror = torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
    return angle.to(device), mirror.to(device)
