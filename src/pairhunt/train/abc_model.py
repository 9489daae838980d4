"""The ABC model (arXiv:2309.05728): unsupervised assignment of jets to two identical parents.

Each ABC layer lets the jets attend to each other, with a learnt bias from the pairwise jet
features (Δη, Δφ, ΔR, m_ij) as in the paper, builds three candidates (parent A, parent B, ISR)
from the jets with soft category probabilities (the first three channels of every jet, softmax
with a temperature), lets the candidates attend to each other and the jets attend to the
candidates. After the last layer the two parent candidates go through one shared autoencoder.

Training on background only asks for (the paper's loss terms):
- a good reconstruction of each candidate by the autoencoder;
- a good *crossed* reconstruction: each candidate decoded from the other one's latent vector,
  so the two candidates must look alike;
- randomly built candidate pairs to stay apart in the latent space (a margin hinge: without it
  the autoencoder could map every candidate to one point and the crossed term means nothing);
- little transverse energy in the ISR category.

The anomaly score is the reconstruction error of the two candidates that take every jet by
its likelier parent (:meth:`AbcModel.hard_assignment_score` says why);
``anomaly_score_decorrelated`` is that score's percentile among background events of the same
average candidate mass (a calibration table stored in the graph), so a cut on it keeps the same
fraction of background at every mass and does not sculpt the spectrum a bump hunt fits.

Everything an event's output depends on is computed per event: attention biases and masks have
an explicit batch axis, so the output does not depend on the other events in a batch (the
reference implementation repeats its pairwise bias head-major where torch reads it batch-major).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pairhunt.contract import ANOMALY_SCORE, ANOMALY_SCORE_DECORRELATED, CATEGORY_PROBABILITIES
from pairhunt.train.config import ABC_CATEGORIES as CATEGORIES, AbcConfig
from pairhunt.train.model import MASKED, EncoderBlock, Normaliser
from pairhunt.train.pairwise import four_momenta, kinematic_index, pair_bias_mlp, pair_features

PARENTS = 2  # categories 0 and 1 are the parents; the last one collects ISR jets


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
    """Jet self-attention (pairwise bias) -> soft candidates -> candidate self-attention -> jet-candidate attention."""

    def __init__(self, dim: int, heads: int, temperature: float):
        super().__init__()
        self.temperature = temperature
        self.objects = EncoderBlock(dim, heads, 0.0)
        self.candidates = EncoderBlock(dim, heads, 0.0)
        self.cross = CrossAttention(dim, heads)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.objects(x, mask, bias)
        weights = category_probabilities(x[..., : len(CATEGORIES)], mask, self.temperature)
        candidates = pool(weights, x)
        candidates = self.candidates(candidates, torch.ones_like(candidates[..., 0], dtype=torch.bool))
        return self.cross(x, candidates)


def hard_categories(probabilities: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One-hot argmax category of every real jet, ``[B, N, 3]``."""
    hard = F.one_hot(probabilities.argmax(dim=-1), len(CATEGORIES)).to(probabilities.dtype)
    return hard * mask.unsqueeze(-1).to(probabilities.dtype)


def random_categories(mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One-hot categories drawn uniformly for every real jet, ``[B, N, 3]``."""
    drawn = torch.randint(len(CATEGORIES), mask.shape, generator=generator).to(mask.device)
    return F.one_hot(drawn, len(CATEGORIES)).float() * mask.unsqueeze(-1).float()


def candidate_kinematics(weights: torch.Tensor, p4: torch.Tensor) -> torch.Tensor:
    """Mass [GeV], log(1 + pT) and the (soft) jet count of the category sums, ``[B, C, 3]``.

    The mass is linear, as in the paper: the two candidates must then agree in GeV, not in
    ratio, which favours light candidates on QCD (e.g. one per hemisphere) over a balanced split
    of all jets into two heavy ones, and so does not push QCD towards high masses.
    """
    total = torch.einsum("bnc,bnk->bck", weights, p4)
    pt2 = total[..., 0] ** 2 + total[..., 1] ** 2
    mass2 = total[..., 3] ** 2 - pt2 - total[..., 2] ** 2
    mass = torch.sqrt(mass2.clamp_min(0.0) + 1e-6)
    log_pt = torch.log1p(torch.sqrt(pt2 + 1e-6))
    return torch.stack([mass, log_pt, weights.sum(dim=1)], dim=-1)


def average_mass(weights: torch.Tensor, p4: torch.Tensor) -> torch.Tensor:
    """Mean mass of the two parent candidates of an assignment, ``[B]`` (the processor's ``mass_average``)."""
    return candidate_kinematics(weights[..., :PARENTS], p4)[..., 0].mean(dim=-1)


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).mean(dim=-1)


class MassCalibration(nn.Module):
    """Percentile of the anomaly score among background events of the same average mass.

    The background events are split into M average-mass bins of equal count; ``centres`` ``[M]``
    holds each bin's weighted median mass, ``quantiles`` ``[M, Q]`` its weighted score
    quantiles. An event's percentile is the fraction of quantiles below its score, interpolated
    linearly in mass between the two nearest bin centres: the score distribution changes with
    mass inside a bin too, and a step per bin would leave that trend in the cut. Below the first
    centre the first table holds. Above the last centre, where a heavy signal sits and the
    background has few events, the background score keeps rising with mass (on QCD roughly as a
    power of it, the tail more slowly than the median), so each quantile of the last table is
    scaled by ``(mass / last centre) ** power``, one power per quantile fitted on the upper
    bins. A cut at x then keeps a fraction 1 - x of the background at every mass. Empty tables
    (before calibration) give NaN.
    """

    def __init__(self, bins: int = 1, points: int = 1):
        super().__init__()
        # not in the state dict: the table is made after training and stored beside the run
        self.register_buffer("centres", torch.zeros(bins), persistent=False)
        self.register_buffer("quantiles", torch.full((bins, points), float("nan")), persistent=False)
        self.register_buffer("power", torch.zeros(points), persistent=False)

    def set(self, centres: torch.Tensor, quantiles: torch.Tensor, power: torch.Tensor | None = None) -> None:
        """The table; ``power`` ``[Q]`` (default zeros: the last table holds above the last centre)."""
        self.centres = centres.float().to(self.centres.device)
        self.quantiles = quantiles.float().to(self.quantiles.device)
        self.power = (torch.zeros(quantiles.shape[1]) if power is None else power).float().to(self.power.device)

    @property
    def ready(self) -> bool:
        return bool(torch.isfinite(self.quantiles).all())

    def forward(self, score: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
        last = self.centres.shape[0] - 1
        above = (mass[:, None] > self.centres[None, :]).sum(dim=1)
        lower, upper = (above - 1).clamp(0, last), above.clamp(0, last)
        span = self.centres[upper] - self.centres[lower]
        fraction = torch.where(span > 0, (mass - self.centres[lower]) / span.clamp_min(1e-6), torch.zeros_like(mass))
        growth = (mass / self.centres[last]).clamp_min(1.0)[:, None] ** self.power[None, :]
        below_lower = (score[:, None] > self.quantiles[lower] * growth).to(score.dtype).mean(dim=1)
        below_upper = (score[:, None] > self.quantiles[upper] * growth).to(score.dtype).mean(dim=1)
        return (1 - fraction) * below_lower + fraction * below_upper


def scored_outputs(
    probabilities: torch.Tensor, score: torch.Tensor, mass: torch.Tensor, calibration: MassCalibration
) -> dict[str, torch.Tensor]:
    """The graph outputs of an ABC model (or ensemble): categories, score and its mass-decorrelated percentile."""
    return {
        CATEGORY_PROBABILITIES: probabilities,
        ANOMALY_SCORE: score,
        ANOMALY_SCORE_DECORRELATED: calibration(score, mass),
    }


class AbcModel(nn.Module):
    """ABC layers, the candidate autoencoder, the training losses and the anomaly scores.

    The autoencoder reads the candidate mass in units of ``config.mass_scale`` (the paper's
    100 GeV: a mass difference between the candidates costs in GeV, whatever their masses);
    ``candidate_scale`` (``[2, 2]``: mean and std of log pT and jet count of random candidates)
    normalises its other kinematic inputs; ``pair_scale`` (``[2, 5]``) the pairwise features.
    """

    def __init__(
        self,
        features: list[str],
        config: AbcConfig,
        mean: torch.Tensor,
        std: torch.Tensor,
        candidate_scale: list[list[float]],
        pair_scale: list[list[float]],
    ):
        super().__init__()
        self.config = config
        self.index = kinematic_index(features)
        self.normalise = Normaliser(mean, std)
        self.normalise_pairs = Normaliser(torch.tensor(pair_scale[0]), torch.tensor(pair_scale[1]))
        self.register_buffer("candidate_scale", torch.tensor(candidate_scale, dtype=torch.float32))
        self.jet_summary = [features.index("log_pt"), features.index("log_mass")]
        self.embed = nn.Sequential(nn.Linear(len(features), config.dim), nn.GELU(), nn.Linear(config.dim, config.dim))
        self.pair_bias = pair_bias_mlp(config.pair_hidden, config.heads)
        self.layers = nn.ModuleList(AbcLayer(config.dim, config.heads, config.temperature) for _ in range(config.layers))
        width = 3 + len(self.jet_summary)  # candidate m, log pT, jet count; mean jet log pT, log mass
        self.encoder = nn.Sequential(nn.Linear(width, config.autoencoder_hidden), nn.GELU(), nn.Linear(config.autoencoder_hidden, config.latent))
        self.decoder = nn.Sequential(nn.Linear(config.latent, config.autoencoder_hidden), nn.GELU(), nn.Linear(config.autoencoder_hidden, width))
        self.calibration = MassCalibration()

    def attention_bias(self, jets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-event, per-head additive attention bias ``[B, H, N, N]``; padded keys masked out."""
        bias = self.pair_bias(self.normalise_pairs(pair_features(jets, self.index))).permute(0, 3, 1, 2)
        return bias.masked_fill(~mask[:, None, None, :], MASKED)

    def encode_jets(self, jets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft category probabilities ``[B, N, 3]`` and the normalised jet features."""
        real = mask.unsqueeze(-1).to(jets.dtype)
        jets = jets * real  # padded jets: all-zero features, whatever the caller filled in
        normalised = self.normalise(jets) * real
        bias = self.attention_bias(jets, mask)
        x = self.embed(normalised) * real
        for layer in self.layers:
            x = layer(x, mask, bias)
        return category_probabilities(x[..., : len(CATEGORIES)], mask, self.config.temperature), normalised

    def parent_candidates(self, normalised: torch.Tensor, weights: torch.Tensor, p4: torch.Tensor) -> torch.Tensor:
        """Autoencoder inputs of the two parent candidates, ``[B, 2, width]``."""
        parents = weights[..., :PARENTS]
        kinematics = candidate_kinematics(parents, p4)
        mass = kinematics[..., :1] / self.config.mass_scale
        rest = (kinematics[..., 1:] - self.candidate_scale[0]) / self.candidate_scale[1]
        return torch.cat([mass, rest, pool(parents, normalised[..., self.jet_summary])], dim=-1)

    def autoencode(self, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latent vectors, per-candidate reconstruction error and crossed reconstruction error."""
        latent = self.encoder(candidates)
        decoded = self.decoder(latent)
        return latent, mse(decoded, candidates), mse(decoded.flip(1), candidates)

    def hard_assignment_score(self, jets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Category probabilities, the anomaly score and the average parent mass of the argmax assignment.

        The mass is that of the argmax assignment (ISR jets left out), the one the processor
        histograms. The score is the reconstruction error of the two candidates that take *every*
        jet by its likelier parent: whether the whole event looks like a background pair. With
        the ISR jets left out of the score as well, signal jets that the ISR category takes make
        signal look like background (on the tuning samples the AUC falls from 0.82-0.98 to 0.74-0.92).
        """
        probabilities, normalised = self.encode_jets(jets, mask)
        hard = hard_categories(probabilities, mask)
        every_jet = hard_categories(probabilities[..., :PARENTS], mask)
        p4 = four_momenta(jets * mask.unsqueeze(-1).to(jets.dtype), self.index)
        _, error, _ = self.autoencode(self.parent_candidates(normalised, every_jet, p4))
        return probabilities, error.mean(dim=-1), average_mass(hard, p4)

    def forward(self, jets: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Category probabilities and the anomaly scores of the hard (argmax) assignment."""
        return scored_outputs(*self.hard_assignment_score(jets, mask), self.calibration)

    def losses(self, jets: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-event loss terms of the soft assignment, ``{name: [B]}``, unweighted."""
        probabilities, normalised = self.encode_jets(jets, mask)
        return self.loss_terms(probabilities, normalised, jets * mask.unsqueeze(-1).to(jets.dtype), random_categories(mask, generator))

    def loss_terms(
        self, assignment: torch.Tensor, normalised: torch.Tensor, jets: torch.Tensor, random_weights: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Reconstruction, crossed reconstruction, random-pair margin and ISR transverse-energy fraction."""
        p4 = four_momenta(jets, self.index)
        _, error, crossed = self.autoencode(self.parent_candidates(normalised, assignment, p4))
        random_latent, _, _ = self.autoencode(self.parent_candidates(normalised, random_weights, p4))
        random_distance = ((random_latent[:, 0] - random_latent[:, 1]) ** 2).sum(dim=-1).add(1e-9).sqrt()
        pt = torch.expm1(jets[..., self.index["log_pt"]]) * (assignment.sum(dim=-1) > 0).to(jets.dtype)
        return {
            "reconstruction": error.mean(dim=-1),
            "crossed": crossed.mean(dim=-1),
            "margin": F.relu(self.config.margin - random_distance) ** 2,
            "isr": (assignment[..., -1] * pt).sum(dim=1) / pt.sum(dim=1).clamp_min(1e-6),
        }

    def weighted_total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-event total loss with the configured weights."""
        c = self.config
        return (
            c.reconstruction_weight * terms["reconstruction"]
            + c.crossed_weight * terms["crossed"]
            + c.margin_weight * terms["margin"]
            + c.isr_weight * terms["isr"]
        )
