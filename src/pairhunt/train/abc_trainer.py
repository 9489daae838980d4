"""Unsupervised ABC training on background events: weighted losses, lowest validation loss wins.

Event weights (``genWeight`` of weighted generated QCD) weight every loss term, normalised to a
mean of one. The normalisation of the autoencoder's candidate kinematics comes from the training
set itself: candidates built from randomly assigned jets.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pairhunt.topology import Topology
from pairhunt.train.abc_model import KINEMATIC_FEATURES, AbcConfig, AbcModel, candidate_kinematics, four_momenta, random_categories
from pairhunt.train.data import TrainingData
from pairhunt.train.loop import RunTrainer, TrainConfig

VALIDATION_SEED = 12345  # the random candidate pairs of the validation loss are the same every epoch


def candidate_scale(data: TrainingData, features: list[str], seed: int) -> list[list[float]]:
    """Mean and std of log mass, log pT and jet count of candidates of 2+ randomly assigned jets.

    Candidates of zero or one jet are left out: their near-zero masses would inflate the scale
    and make a 10% mass difference between the parents invisible to the autoencoder.
    """
    jets = torch.as_tensor(data.features, dtype=torch.float32)
    mask = torch.as_tensor(data.mask)
    index = {name: features.index(name) for name in KINEMATIC_FEATURES}
    weights = random_categories(mask, torch.Generator().manual_seed(seed))[..., :2]
    kinematics = candidate_kinematics(weights, four_momenta(jets, index))[weights.sum(dim=1) >= 2]
    return [kinematics.mean(dim=0).tolist(), kinematics.std(dim=0).clamp_min(1e-3).tolist()]


def normalised_weights(data: TrainingData) -> np.ndarray:
    """Event weights with mean one (all ones for unweighted data)."""
    if data.weights is None:
        return np.ones(len(data), dtype=np.float32)
    return (data.weights / data.weights.mean()).astype(np.float32)


def build_abc_model(meta: dict) -> AbcModel:
    """The ABC model of a run from its metadata."""
    return AbcModel(
        meta["features"],
        AbcConfig(**meta["model"]),
        torch.tensor(meta["normalisation"]["mean"]),
        torch.tensor(meta["normalisation"]["std"]),
        meta["candidate_scale"],
    )


class AbcTrainer(RunTrainer):
    """Train the ABC model; ``best.pt`` has the lowest weighted validation loss."""

    kind = "abc"
    monitor = "val_objective"

    def __init__(self, topology: Topology, data: TrainingData, run_dir, abc_config: AbcConfig, config: TrainConfig):
        self.abc_config = abc_config
        super().__init__(topology, data, run_dir, config)

    def _metadata(self, data: TrainingData) -> dict:
        meta = super()._metadata(data)
        meta["model"] = self.abc_config.to_dict()
        meta["candidate_scale"] = candidate_scale(data, meta["features"], self.config.seed)
        meta["weighted"] = data.weights is not None
        return meta

    def build_model(self) -> AbcModel:
        return build_abc_model(self.meta)

    def train_tensors(self) -> dict[str, torch.Tensor]:
        return tensors(self.train)

    def batch_loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        terms = self.model.losses(batch["jets"], batch["mask"], generator)
        weights = batch["weights"]
        means = {name: (weights * value).sum() / weights.sum() for name, value in terms.items()}
        return self.model.weighted_total(means), {name: value.detach() for name, value in means.items()}

    def validate(self, batch_size: int = 4096) -> dict[str, float]:
        """Weighted mean loss terms on the validation set; ``objective`` is minus the total."""
        self.model.eval()
        data = {k: v.to(self.device) for k, v in tensors(self.validation).items()}
        generator = torch.Generator().manual_seed(VALIDATION_SEED)
        sums: dict[str, float] = {}
        with torch.no_grad():
            for start in range(0, len(self.validation), batch_size):
                rows = slice(start, start + batch_size)
                weights = data["weights"][rows]
                terms = self.model.losses(data["jets"][rows], data["mask"][rows], generator)
                terms["loss"] = self.model.weighted_total(terms)
                terms["anomaly_score"] = self.model(data["jets"][rows], data["mask"][rows])["anomaly_score"]
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + float((weights * value).sum())
        total_weight = float(data["weights"].sum())
        metrics = {name: value / total_weight for name, value in sums.items()}
        metrics["objective"] = -metrics["loss"] if math.isfinite(metrics["loss"]) else -math.inf
        return metrics


def tensors(data: TrainingData) -> dict[str, torch.Tensor]:
    return {
        "jets": torch.as_tensor(data.features, dtype=torch.float32),
        "mask": torch.as_tensor(data.mask),
        "weights": torch.as_tensor(normalised_weights(data)),
    }
