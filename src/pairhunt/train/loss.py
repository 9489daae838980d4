"""The SPA-NET loss: per-parent cross-entropy on the true tuple, minimal over parent permutations.

Partial events train too: a parent whose products are not all matched is masked out of the
assignment loss, events with at least one reconstructable parent contribute, and events are
weighted so that each number of reconstructable parents weighs the same (class balance). The
detection head learns which parents are reconstructable.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pairhunt.contract import DETECTION_LOGITS, assignment_output
from pairhunt.slot_matching import parent_permutations, reconstructable
from pairhunt.topology import Topology


def balance_weights(targets: np.ndarray, topology: Topology) -> np.ndarray:
    """Per-event weight: inverse frequency of its number of reconstructable parents (mean 1)."""
    n_recon = reconstructable(targets, topology).sum(axis=1)
    counts = np.bincount(n_recon, minlength=topology.n_parents + 1).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / np.count_nonzero(counts), 0.0)
    return weights[n_recon].astype(np.float32)


def tuple_log_prob(log_probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log p of the target tuple ``[B, k]`` in ``[B] + [N] * k`` (target -1 treated as 0)."""
    n = log_probs.shape[1]
    k = log_probs.ndim - 1
    flat_index = torch.zeros_like(target[:, 0])
    for axis in range(k):
        flat_index = flat_index * n + target[:, axis].clamp_min(0)
    return log_probs.reshape(log_probs.shape[0], -1).gather(1, flat_index[:, None]).squeeze(1)


class AssignmentLoss:
    """Callable: ``(outputs, targets [B,P,K], weights [B]) -> (total, parts)``."""

    def __init__(self, topology: Topology, detection_weight: float = 0.5):
        self.parents = list(topology.parents)
        self.products = [len(topology.products[p]) for p in self.parents]
        self.permutations = torch.as_tensor(parent_permutations(topology))
        self.detection_weight = detection_weight
        self._permutations_on: dict[torch.device, torch.Tensor] = {}

    def permutations_on(self, device: torch.device) -> torch.Tensor:
        """The permutations on ``device``, copied once: a copy per step would wait for the GPU every step."""
        if device not in self._permutations_on:
            self._permutations_on[device] = self.permutations.to(device)
        return self._permutations_on[device]

    def __call__(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor, weights: torch.Tensor):
        recon = torch.stack([(targets[:, p, :k] >= 0).all(dim=1) for p, k in enumerate(self.products)], dim=1)
        per_permutation = []
        for perm in self.permutations:
            # model parent p predicts truth parent perm[p]
            terms = []
            for p, parent in enumerate(self.parents):
                truth = int(perm[p])
                log_p = tuple_log_prob(outputs[assignment_output(parent)], targets[:, truth, : self.products[p]])
                terms.append(torch.where(recon[:, truth], -log_p, torch.zeros_like(log_p)))
            per_permutation.append(torch.stack(terms, dim=1).sum(dim=1))
        assignment, best = torch.stack(per_permutation, dim=1).min(dim=1)
        has_parent = recon.any(dim=1)
        n_recon = recon.sum(dim=1).clamp_min(1)
        assignment_loss = (weights * has_parent * assignment / n_recon).sum() / (weights * has_parent).sum().clamp_min(1e-6)
        rows = torch.arange(len(best), device=best.device)[:, None]
        detection_target = recon[rows, self.permutations_on(best.device)[best]].float()
        detection_loss = F.binary_cross_entropy_with_logits(outputs[DETECTION_LOGITS], detection_target)
        total = assignment_loss + self.detection_weight * detection_loss
        return total, {"assignment": assignment_loss.detach(), "detection": detection_loss.detach()}
