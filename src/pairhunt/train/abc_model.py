"""The ABC model (arXiv:2309.05728): unsupervised assignment of jets to two identical parents.

Each ABC layer lets the jets attend to each other, builds three candidates (parent A, parent B,
ISR) from the jets with soft category probabilities (the first three channels of every jet,
softmax with a temperature), lets the candidates attend to each other and the jets attend to
the candidates. After the last layer the two parent candidates (their learnt features and their
mass) go through one shared autoencoder. Training on background only asks the two candidates to
look alike in its latent space, randomly built candidate pairs to stay apart, little transverse
energy in the ISR category, and a good reconstruction. The reconstruction error of the hard
(argmax) assignment's candidates is the per-event anomaly score.

The autoencoder reads physical candidate features (mass, pT, jet count, mean jet log pT and log
mass), not the learnt jet embeddings: with learnt embeddings the network can write its own
category into them and make its two candidates identical whatever the jets, so the distance and
margin terms stop constraining the assignment (seen in training: no jet was ever sent to ISR
and the anomaly score had an AUC of 0.5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pairhunt.errors import PairhuntError
from pairhunt.train.model import EncoderBlock, Normaliser

CATEGORIES = ("A", "B", "ISR")
PARENTS = 2  # categories 0 and 1 are the parents; the last one collects ISR jets
# the model rebuilds jet four-momenta from these features, so it needs all of them
KINEMATIC_FEATURES = ("log_pt", "eta", "sin_phi", "cos_phi", "log_mass")


@dataclass(frozen=True)
class AbcConfig:
    """Network size and the loss weights; the defaults are the shipped model's."""

    dim: int = 64
    heads: int = 4
    layers: int = 3
    latent: int = 2
    autoencoder_hidden: int = 16
    temperature: float = 0.2  # softmax temperature of the category probabilities
    reconstruction_weight: float = 1.0
    distance_weight: float = 1.0
    margin_weight: float = 1.0
    margin: float = 1.0  # latent distance below which a random pair is penalised
    isr_weight: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class CrossAttention(nn.Module):
    """Queries attend to a few context tokens (jets -> candidates), pre-norm, residual."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        head_dim = dim // self.heads
        q = self.query(self.norm(x)).reshape(batch, length, self.heads, head_dim).transpose(1, 2)
        k, v = self.key_value(context).reshape(batch, context.shape[1], 2, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(attended.transpose(1, 2).reshape(batch, length, dim))


def category_probabilities(logits: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-jet softmax over the categories; padded jets belong to none."""
    return torch.softmax(logits / temperature, dim=-1) * mask.unsqueeze(-1).to(logits.dtype)


def pool(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Weighted mean of jet ``values`` per category: ``[B, N, C] x [B, N, D] -> [B, C, D]``."""
    total = torch.einsum("bnc,bnd->bcd", weights, values)
    return total / (weights.sum(dim=1).unsqueeze(-1) + 1e-6)


class AbcLayer(nn.Module):
    """Jet self-attention -> soft candidates -> candidate self-attention -> jet-candidate attention."""

    def __init__(self, dim: int, heads: int, temperature: float):
        super().__init__()
        self.temperature = temperature
        self.objects = EncoderBlock(dim, heads, 0.0)
        self.candidates = EncoderBlock(dim, heads, 0.0)
        self.cross = CrossAttention(dim, heads)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.objects(x, mask)
        weights = category_probabilities(x[..., : len(CATEGORIES)], mask, self.temperature)
        candidates = pool(weights, x)
        candidates = self.candidates(candidates, torch.ones_like(candidates[..., 0], dtype=torch.bool))
        return self.cross(x, candidates)


def four_momenta(jets: torch.Tensor, index: dict[str, int]) -> torch.Tensor:
    """``[B, N, 4]`` (px, py, pz, E) from the unnormalised features (log1p pT, eta, sin/cos phi, log1p mass)."""
    pt = torch.expm1(jets[..., index["log_pt"]])
    mass = torch.expm1(jets[..., index["log_mass"]])
    px, py = pt * jets[..., index["cos_phi"]], pt * jets[..., index["sin_phi"]]
    pz = pt * torch.sinh(jets[..., index["eta"]])
    energy = torch.sqrt(px * px + py * py + pz * pz + mass * mass)
    return torch.stack([px, py, pz, energy], dim=-1)


def hard_categories(probabilities: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One-hot argmax category of every real jet, ``[B, N, 3]``."""
    hard = F.one_hot(probabilities.argmax(dim=-1), len(CATEGORIES)).to(probabilities.dtype)
    return hard * mask.unsqueeze(-1).to(probabilities.dtype)


def random_categories(mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One-hot categories drawn uniformly for every real jet, ``[B, N, 3]``."""
    drawn = torch.randint(len(CATEGORIES), mask.shape, generator=generator).to(mask.device)
    return F.one_hot(drawn, len(CATEGORIES)).float() * mask.unsqueeze(-1).float()


def candidate_kinematics(weights: torch.Tensor, p4: torch.Tensor) -> torch.Tensor:
    """log(1 + m), log(1 + pT) and the (soft) jet count of the category sums, ``[B, C, 3]``."""
    total = torch.einsum("bnc,bnk->bck", weights, p4)
    pt2 = total[..., 0] ** 2 + total[..., 1] ** 2
    mass2 = total[..., 3] ** 2 - pt2 - total[..., 2] ** 2
    log_mass = torch.log1p(torch.sqrt(mass2.clamp_min(0.0) + 1e-6))
    log_pt = torch.log1p(torch.sqrt(pt2 + 1e-6))
    return torch.stack([log_mass, log_pt, weights.sum(dim=1)], dim=-1)


class AbcModel(nn.Module):
    """ABC layers, the candidate autoencoder, the training losses and the anomaly score.

    ``candidate_scale`` (``[2, 3]``: mean and std of log mass, log pT and jet count of random
    candidates) normalises the autoencoder's kinematic inputs.
    """

    def __init__(self, features: list[str], config: AbcConfig, mean: torch.Tensor, std: torch.Tensor, candidate_scale: list[list[float]]):
        super().__init__()
        missing = [f for f in KINEMATIC_FEATURES if f not in features]
        if missing:
            raise PairhuntError(f"the ABC model rebuilds four-momenta and needs the features {missing} as well")
        if config.dim % config.heads or config.dim <= len(CATEGORIES):
            raise PairhuntError(f"dim {config.dim} must exceed {len(CATEGORIES)} and divide into {config.heads} heads")
        self.config = config
        self.index = {name: features.index(name) for name in KINEMATIC_FEATURES}
        self.normalise = Normaliser(mean, std)
        self.register_buffer("candidate_scale", torch.tensor(candidate_scale, dtype=torch.float32))
        self.jet_summary = [features.index("log_pt"), features.index("log_mass")]
        self.embed = nn.Sequential(nn.Linear(len(features), config.dim), nn.GELU(), nn.Linear(config.dim, config.dim))
        self.layers = nn.ModuleList(AbcLayer(config.dim, config.heads, config.temperature) for _ in range(config.layers))
        width = 3 + len(self.jet_summary)  # candidate log m, log pT, jet count; mean jet log pT, log mass
        self.encoder = nn.Sequential(nn.Linear(width, config.autoencoder_hidden), nn.GELU(), nn.Linear(config.autoencoder_hidden, config.latent))
        self.decoder = nn.Sequential(nn.Linear(config.latent, config.autoencoder_hidden), nn.GELU(), nn.Linear(config.autoencoder_hidden, width))

    def encode_jets(self, jets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft category probabilities ``[B, N, 3]`` and the normalised jet features."""
        normalised = self.normalise(jets) * mask.unsqueeze(-1).to(jets.dtype)
        x = self.embed(normalised) * mask.unsqueeze(-1).to(jets.dtype)
        for layer in self.layers:
            x = layer(x, mask)
        return category_probabilities(x[..., : len(CATEGORIES)], mask, self.config.temperature), normalised

    def parent_candidates(self, normalised: torch.Tensor, weights: torch.Tensor, p4: torch.Tensor) -> torch.Tensor:
        """Autoencoder inputs of the two parent candidates, ``[B, 2, width]``."""
        parents = weights[..., :PARENTS]
        kinematics = (candidate_kinematics(parents, p4) - self.candidate_scale[0]) / self.candidate_scale[1]
        return torch.cat([kinematics, pool(parents, normalised[..., self.jet_summary])], dim=-1)

    def autoencode(self, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent vectors and per-candidate mean squared reconstruction error."""
        latent = self.encoder(candidates)
        error = ((self.decoder(latent) - candidates) ** 2).mean(dim=-1)
        return latent, error

    def forward(self, jets: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Category probabilities and the anomaly score of the hard (argmax) assignment."""
        probabilities, normalised = self.encode_jets(jets, mask)
        hard = hard_categories(probabilities, mask)
        _, error = self.autoencode(self.parent_candidates(normalised, hard, four_momenta(jets, self.index)))
        return {"category_probabilities": probabilities, "anomaly_score": error.mean(dim=-1)}

    def losses(self, jets: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-event loss terms of the soft assignment, ``{name: [B]}``, unweighted.

        (Hard candidates with soft gradients, straight-through, collapsed here: every jet went
        to one category.)
        """
        probabilities, normalised = self.encode_jets(jets, mask)
        return self.loss_terms(probabilities, normalised, jets, random_categories(mask, generator))

    def loss_terms(
        self, assignment: torch.Tensor, normalised: torch.Tensor, jets: torch.Tensor, random_weights: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Reconstruction, latent distance, random-pair margin and ISR transverse-energy fraction."""
        p4 = four_momenta(jets, self.index)
        latent, error = self.autoencode(self.parent_candidates(normalised, assignment, p4))
        random_latent, _ = self.autoencode(self.parent_candidates(normalised, random_weights, p4))
        distance = ((latent[:, 0] - latent[:, 1]) ** 2).sum(dim=-1)
        random_distance = ((random_latent[:, 0] - random_latent[:, 1]) ** 2).sum(dim=-1).add(1e-9).sqrt()
        pt = torch.expm1(jets[..., self.index["log_pt"]]) * (assignment.sum(dim=-1) > 0).to(jets.dtype)
        return {
            "reconstruction": error.mean(dim=-1),
            "distance": distance,
            "margin": F.relu(self.config.margin - random_distance) ** 2,
            "isr": (assignment[..., -1] * pt).sum(dim=1) / pt.sum(dim=1).clamp_min(1e-6),
        }

    def weighted_total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-event total loss with the configured weights."""
        c = self.config
        return (
            c.reconstruction_weight * terms["reconstruction"]
            + c.distance_weight * terms["distance"]
            + c.margin_weight * terms["margin"]
            + c.isr_weight * terms["isr"]
        )
