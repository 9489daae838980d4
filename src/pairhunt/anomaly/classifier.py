"""A small weighted binary classifier (torch MLP) and its k-fold use: every event gets the score
of a model that never saw it, the rule all resonant anomaly methods share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pairhunt.anomaly.folds import assign_folds, fold_splits


@dataclass(frozen=True)
class ClassifierConfig:
    """Sizes of the classifier and its training; early stopping on a held-out part of the training folds."""

    hidden: tuple[int, ...] = (64, 64)
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 1e-3
    validation_fraction: float = 0.2
    patience: int = 5


class Classifier(nn.Module):
    """Standardised inputs -> MLP -> logit."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, hidden: tuple[int, ...]):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        layers, width = [], len(mean)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std).squeeze(-1)


def _balanced(labels: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weights scaled so both classes carry the same total (mean 1 per event)."""
    out = weight.astype(np.float64).copy()
    for label in (0, 1):
        chosen = labels == label
        out[chosen] *= 0.5 * len(out) / max(out[chosen].sum(), 1e-300)
    return out


def train_classifier(
    x: np.ndarray, labels: np.ndarray, weight: np.ndarray, seed: int, config: ClassifierConfig = ClassifierConfig()
) -> Classifier:
    """Weighted binary cross-entropy, classes balanced; the epoch with the lowest validation loss is kept."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    validation = rng.random(len(x)) < config.validation_fraction
    train = ~validation
    w = _balanced(labels, weight)
    mean = np.average(x[train], axis=0, weights=w[train])
    std = np.sqrt(np.average((x[train] - mean) ** 2, axis=0, weights=w[train]))
    model = Classifier(mean, np.where(std > 0, std, 1.0), config.hidden)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    tensors = [torch.as_tensor(a, dtype=torch.float32) for a in (x, labels, w)]
    xt, yt, wt = (t[torch.as_tensor(train)] for t in tensors)
    xv, yv, wv = (t[torch.as_tensor(validation)] for t in tensors)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    best, best_state, waited = np.inf, None, 0
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(config.epochs):
        model.train()
        for batch in torch.randperm(len(xt), generator=generator).split(config.batch_size):
            optimiser.zero_grad()
            loss = (loss_fn(model(xt[batch]), yt[batch]) * wt[batch]).mean()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            # without validation events every epoch counts as an improvement: the last is kept
            val = float((loss_fn(model(xv), yv) * wv).sum() / wv.sum()) if len(xv) else -float(epoch)
        if val < best:
            best, best_state, waited = val, {k: v.clone() for k, v in model.state_dict().items()}, 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return model


def predict(model: Classifier, x: np.ndarray) -> np.ndarray:
    """Probability of label 1."""
    with torch.no_grad():
        return torch.sigmoid(model(torch.as_tensor(x, dtype=torch.float32))).numpy().astype(np.float64)


def kfold_scores(
    x: np.ndarray,
    labels: np.ndarray,
    weight: np.ndarray,
    k: int,
    seed: int,
    config: ClassifierConfig = ClassifierConfig(),
    extra: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Out-of-fold probabilities of label 1 for every row of ``x``; ``extra`` rows (never trained
    on) are dealt to folds as well and scored by their fold's single model, so their scores are
    distributed as the out-of-fold ones (an average over the k models would be narrower, and a
    common cut would then treat them differently). Rows of one ``groups`` id share a fold."""
    folds = assign_folds(len(x), k, seed, groups)
    extra_folds = None if extra is None else assign_folds(len(extra), k, seed + 1)
    scores = np.full(len(x), np.nan)
    extra_scores = None if extra is None else np.full(len(extra), np.nan)
    for fold, train, test in fold_splits(folds, k):
        model = train_classifier(x[train], labels[train], weight[train], seed + 1000 * (fold + 1), config)
        scores[test] = predict(model, x[test])
        if extra is not None:
            chosen = extra_folds == fold
            extra_scores[chosen] = predict(model, extra[chosen])
    return scores, extra_scores
