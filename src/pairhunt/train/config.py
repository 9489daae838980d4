"""The settings of every training, torch-free: the command line reads their defaults without torch.

``pairhunt --help`` and every other command start without importing torch; the training
modules (``loop``, ``model``, ``abc_model``, ``embed_model``) import these from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pairhunt.errors import PairhuntError

ABC_CATEGORIES = ("A", "B", "ISR")  # what ABC assigns each jet to: one of the two parents or ISR


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; ``seed`` fixes the split, initialisation and batch order."""

    epochs: int = 20
    batch_size: int = 512
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    validation_fraction: float = 0.1
    detection_weight: float = 0.5
    seed: int = 1
    threads: int = 2
    validate_every: int = 0  # steps between validations besides each epoch's end (0: epoch ends only)


@dataclass(frozen=True)
class ModelConfig:
    """Size of the network; defaults are the shipped ttbar model's."""

    dim: int = 64
    heads: int = 4
    encoder_layers: int = 3
    branch_layers: int = 1
    tensor_dim: int = 32
    dropout: float = 0.0
    pair_bias: int = 0  # width of the MLP that turns pairwise jet features into attention biases; 0: none
    tuple_mass: int = 0  # width of the MLP that scores each candidate tuple from its invariant masses; 0: none

    def __post_init__(self):
        sizes = {"dim": self.dim, "heads": self.heads, "encoder layers": self.encoder_layers, "tensor dim": self.tensor_dim}
        bad = [f"{name} {value}" for name, value in sizes.items() if value < 1]
        bad += [f"{name} {value}" for name, value in (("branch layers", self.branch_layers), ("pair bias", self.pair_bias), ("tuple mass", self.tuple_mass)) if value < 0]
        if bad:
            raise PairhuntError(f"model size: {', '.join(bad)} (sizes are positive; branch layers, pair bias and tuple mass may be 0)")
        if self.dim % self.heads:
            raise PairhuntError(f"model size: dim {self.dim} does not divide into {self.heads} heads")
        if not 0 <= self.dropout < 1:
            raise PairhuntError(f"dropout {self.dropout}: must lie in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AbcConfig:
    """Network size and the loss weights; the defaults are the shipped model's."""

    dim: int = 32
    heads: int = 4
    layers: int = 3
    pair_hidden: int = 16  # width of the MLP that turns pairwise features into attention biases
    latent: int = 2
    autoencoder_hidden: int = 16
    temperature: float = 0.2  # softmax temperature of the category probabilities
    mass_scale: float = 100.0  # GeV: the candidate mass enters the autoencoder as m / mass_scale
    reconstruction_weight: float = 1.0
    crossed_weight: float = 1.0
    margin_weight: float = 1.0
    margin: float = 1.0  # latent distance below which a random pair is penalised
    isr_weight: float = 4.0

    def __post_init__(self):
        sizes = {"dim": self.dim, "heads": self.heads, "layers": self.layers, "pair hidden": self.pair_hidden,
                 "latent": self.latent, "autoencoder hidden": self.autoencoder_hidden}
        bad = [f"{name} {value}" for name, value in sizes.items() if value < 1]
        bad += [f"{name} {value}" for name, value in (("temperature", self.temperature), ("mass scale", self.mass_scale)) if not value > 0]
        if bad:
            raise PairhuntError(f"ABC model: {', '.join(bad)} (sizes, temperature and mass scale are positive)")
        if self.dim % self.heads or self.dim <= len(ABC_CATEGORIES):
            raise PairhuntError(f"ABC model: dim {self.dim} must exceed {len(ABC_CATEGORIES)} and divide into {self.heads} heads")
        terms = {"reconstruction": self.reconstruction_weight, "crossed": self.crossed_weight, "margin": self.margin_weight,
                 "isr": self.isr_weight, "margin distance": self.margin}
        if negative := [f"{name} {value}" for name, value in terms.items() if not value >= 0]:
            raise PairhuntError(f"ABC loss: {', '.join(negative)} (weights and the margin are 0 or more)")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EmbedConfig:
    """Network and training settings; ``seed`` fixes the validation split, initialisation and sets."""

    hidden: int = 64
    latent: int = 2
    set_size: int = 32
    margin: float = 1.0
    sets_per_theory: int = 8  # per training step
    steps: int = 3000
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    validation_fraction: float = 0.2
    validate_every: int = 250
    # a fraction of the sets comes from a mass window, as `pairhunt characterize` forms them: centred on
    # the mass of a random event of the theory, half-width a uniform fraction of the centre in this range
    window_fraction: float = 0.5
    window_half_width: tuple[float, float] = (0.1, 0.25)
    library_sets: int = 300  # embedded training sets per theory that make its density on the map
    unlike_quantile: float = 0.05  # the usual 95 % region of each theory
    threshold_set_sizes: tuple[int, ...] = (8, 16, 32, 64)  # the unlike thresholds are calibrated for each
    novelty_sets: int = 1000  # training sets per theory that fix the novelty test's mean and covariance
    novelty_shrinkage: float = 0.1  # the novelty test's covariances, this far towards their diagonal
    seed: int = 1
    threads: int = 1
