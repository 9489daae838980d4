"""Unsupervised ABC training on background events: weighted losses, lowest validation loss wins.

Event weights (``genWeight`` of weighted generated QCD) weight every loss term, normalised to a
mean of one. The normalisations of the pairwise features and of the autoencoder's candidate
kinematics come from the training set itself (candidates built from randomly assigned jets).
After training, the best model's anomaly score is calibrated in bins of the average parent mass
on the training events or other background (``calibration.json`` in the run directory): the
mass-decorrelated score.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from pairhunt.contract import ANOMALY_SCORE
from pairhunt.errors import PairhuntError
from pairhunt.topology import Topology
from pairhunt.train.abc_ensemble import AbcEnsemble, member_dirs
from pairhunt.train.abc_model import AbcConfig, AbcModel, candidate_kinematics, random_categories
from pairhunt.train.augment import Symmetry, random_symmetry
from pairhunt.train.data import TrainingData
from pairhunt.train.loop import RunTrainer, TrainConfig, best_record
from pairhunt.train.pairwise import four_momenta, kinematic_index, pair_scale

VALIDATION_SEED = 12345  # the random candidate pairs of the validation loss are the same every epoch
CALIBRATION_FILE = "calibration.json"
# Average-mass bins of equal background event count: one per EVENTS_PER_CALIBRATION_BIN events,
# at least MIN_CALIBRATION_BINS (small samples), at most MAX_CALIBRATION_BINS. Narrow bins matter at
# high mass, where the score grows fastest: with 25 bins on 59k QCD events the last bin ran from
# 1.1 TeV upwards and a cut keeping 10 % kept 6 % above 1.1 TeV of the very events it was made on.
EVENTS_PER_CALIBRATION_BIN = 500
MIN_CALIBRATION_BINS = 25
# Up to 480 bins: equal-count bins are widest at high mass, where the score rises fastest, and a wide
# bin's quantiles are those of a mixture over its masses, broader than at its centre: with 120 bins
# on 380k QCD events a cut keeping 10 % kept 6-8.5 % at 1.2-2 TeV, in sample too.
MAX_CALIBRATION_BINS = 480
CALIBRATION_POINTS = 200  # score quantiles per bin: the decorrelated score moves in steps of 0.5 %
CALIBRATION_TREND_FRACTION = 0.4  # the upper bins whose quantiles fix how the score grows with mass beyond them
# Each bin's quantiles are smoothed over this share of the bins on either side (narrow bins share the
# events of their neighbours). Chosen by 4-fold cross-validation on 28 held-out QCD files (calibrate
# on 21, test on 7; chi2 of the 50 % and 10 % cut shapes summed, ndf 168): 120 bins smoothed over
# +-10 gave 236, 480 bins over +-80 201 (docs/benchmarks.md, "A larger calibration sample").
CALIBRATION_SMOOTHING_SHARE = 1 / 6
STUCK_ISR_SHARE = 0.1  # validation ISR pT share above which a run has not left the ISR-heavy start of training


def isr_start_warning(history: list[dict]) -> str | None:
    """Why a finished run will assign poorly, if its best epoch still sends much of the background pT to ISR.

    Training starts with a third to two thirds of the QCD pT in ISR and the ISR term drives it
    down, at speeds that differ from seed to seed. Of 45 runs (``benchmarks/abc_assigner_choice.py``,
    tuning samples) the 17 that ended above ``STUCK_ISR_SHARE`` put at most 19 % of a signal's
    events in its ±15 % mass window (16 of them under 2 %), the 24 below 5 % put 30-53 % there;
    12 of 20 seeds ended above it at the shipped recipe's ~400 steps, none of 10 at 800
    (``stop_isr_share`` ends a run once it is out).
    """
    if not history:
        return None
    share = best_record(history, "val_objective")["val_isr"]
    if share <= STUCK_ISR_SHARE:
        return None
    return (
        f"its best epoch sends {share:.0%} of the background pT to ISR: it has not left the ISR-heavy start of "
        "training and will put few signal events in their mass window; more steps (--epochs) get it out, and --stop-isr-share "
        "ends each run once it is out"
    )


def candidate_scale(data: TrainingData, features: list[str], seed: int) -> list[list[float]]:
    """Mean and std of log pT and jet count of candidates of 2+ randomly assigned jets.

    Candidates of zero or one jet are left out: they are not what a parent looks like.
    """
    jets = torch.as_tensor(data.features, dtype=torch.float32)
    mask = torch.as_tensor(data.mask)
    index = kinematic_index(features)
    weights = random_categories(mask, torch.Generator().manual_seed(seed))[..., :2]
    kinematics = candidate_kinematics(weights, four_momenta(jets, index))[weights.sum(dim=1) >= 2][:, 1:]
    return [kinematics.mean(dim=0).tolist(), kinematics.std(dim=0).clamp_min(1e-3).tolist()]


def normalised_weights(data: TrainingData) -> np.ndarray:
    """Event weights with mean one (all ones for unweighted data)."""
    if data.weights is None:
        return np.ones(len(data), dtype=np.float32)
    return (data.weights / data.weights.mean()).astype(np.float32)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of a weighted sample (the weighted empirical CDF, interpolated)."""
    order = np.argsort(values)
    cdf = np.cumsum(weights[order]) - 0.5 * weights[order]
    return np.interp(levels, cdf / weights.sum(), values[order])


def calibration_bins(events: int) -> int:
    """How many average-mass bins a calibration sample of ``events`` events gets."""
    return int(np.clip(events // EVENTS_PER_CALIBRATION_BIN, MIN_CALIBRATION_BINS, MAX_CALIBRATION_BINS))


def calibration_smoothing(bins: int) -> int:
    """Over how many neighbouring bins on either side a table of ``bins`` bins is smoothed by default."""
    return round(bins * CALIBRATION_SMOOTHING_SHARE)


def mass_calibration(model: AbcModel | AbcEnsemble, data: TrainingData, batch_size: int = 4096) -> dict[str, list]:
    """The calibration table of ``model``'s anomaly score on background ``data``."""
    scores, masses = [], []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            jets = torch.as_tensor(data.features[start : start + batch_size], dtype=torch.float32)
            _, score, mass = model.hard_assignment_score(jets, torch.as_tensor(data.mask[start : start + batch_size]))
            scores.append(score.numpy())
            masses.append(mass.numpy())
    return calibration_table(
        np.concatenate(scores).astype(np.float64), np.concatenate(masses).astype(np.float64),
        normalised_weights(data).astype(np.float64),
    )


def calibration_table(
    score: np.ndarray, mass: np.ndarray, weights: np.ndarray, bins: int | None = None, smooth: int | None = None
) -> dict[str, list]:
    """Average-mass bins of equal event count: edges, weighted median masses, score quantiles and
    the high-mass power of each quantile (what :class:`MassCalibration` reads). ``bins`` overrides
    the count :func:`calibration_bins` gives the sample; ``smooth`` > 0 smooths each quantile
    across that many neighbouring bins on either side (:func:`smoothed_quantiles`; default
    :func:`calibration_smoothing`)."""
    n_bins = calibration_bins(len(mass)) if bins is None else bins
    smooth = calibration_smoothing(n_bins) if smooth is None else smooth
    if len(mass) < 2 * n_bins:
        raise PairhuntError(f"{len(mass)} background events cannot calibrate the anomaly score in {n_bins} average-mass bins; give more")
    edges = np.quantile(mass, np.linspace(0.0, 1.0, n_bins + 1))
    bin_index = np.clip(np.searchsorted(edges[1:-1], mass, side="left"), 0, n_bins - 1)
    levels = (np.arange(CALIBRATION_POINTS) + 0.5) / CALIBRATION_POINTS
    bins = [bin_index == b for b in range(n_bins)]
    empty = sum(not members.any() for members in bins)
    if empty:
        raise PairhuntError(
            f"cannot calibrate the anomaly score in {n_bins} average-mass bins: {empty} are empty, the model "
            f"gives {len(np.unique(mass))} distinct average masses for {len(mass)} events (does it send every jet to ISR?)"
        )
    centres = [weighted_quantiles(mass[b], weights[b], np.array([0.5]))[0] for b in bins]
    quantiles = [weighted_quantiles(score[b], weights[b], levels) for b in bins]
    if smooth:
        quantiles = list(smoothed_quantiles(np.array(centres), np.array(quantiles), smooth))
    trend = max(2, round(CALIBRATION_TREND_FRACTION * n_bins))
    power = high_mass_power(np.array(centres[-trend:]), np.array(quantiles[-trend:]))
    return {
        "edges": edges.tolist(), "centres": centres, "quantiles": np.array(quantiles).tolist(),
        "high_mass_power": power, "events": int(len(mass)), "smoothing": smooth,
    }


def smoothed_quantiles(centres: np.ndarray, quantiles: np.ndarray, half_width: int) -> np.ndarray:
    """Each score quantile ``[bins, Q]`` replaced by a local linear fit of its logarithm in log mass
    over ``half_width`` bins on either side (tricube weights), then kept ordered across levels.

    Why: a bin's quantiles carry the statistical noise of its few hundred events, and a cut on the
    decorrelated score inherits it as bumps and dips of the cut QCD mass shape; the score's
    distribution changes smoothly with mass, so neighbouring bins can share their events.
    """
    x, y = np.log(centres), np.log(np.clip(quantiles, 1e-12, None))
    smoothed = np.empty_like(y)
    for i in range(len(x)):
        lo, hi = max(0, i - half_width), min(len(x), i + half_width + 1)
        distance = np.abs(np.arange(lo, hi) - i) / (half_width + 1)
        weight = (1 - distance**3) ** 3
        smoothed[i] = np.polyfit(x[lo:hi] - x[i], y[lo:hi], 1, w=np.sqrt(weight))[1]  # the fit's value at x[i]
    return np.exp(np.maximum.accumulate(smoothed, axis=1))


def high_mass_power(centres: np.ndarray, quantiles: np.ndarray) -> list[float]:
    """Per quantile level, the power p of quantile ~ mass**p on the upper bins (``quantiles``
    ``[bins, Q]``; never negative): how the calibration extrapolates above its last bin centre."""
    slopes = np.polyfit(np.log(centres), np.log(np.clip(quantiles, 1e-12, None)), 1)[0]
    return np.clip(slopes, 0.0, None).tolist()


def build_abc_model(meta: dict, calibration: dict | None = None) -> AbcModel:
    """The ABC model of a run from its metadata (and its mass calibration, when made)."""
    model = AbcModel(
        meta["features"],
        AbcConfig(**meta["model"]),
        torch.tensor(meta["normalisation"]["mean"]),
        torch.tensor(meta["normalisation"]["std"]),
        meta["candidate_scale"],
        meta["pair_scale"],
    )
    set_calibration(model, calibration)
    return model


def set_calibration(model: AbcModel | AbcEnsemble, calibration: dict | None) -> None:
    """Load a run's mass calibration table into the model's graph (nothing before calibration)."""
    if calibration is None:
        return
    if "centres" not in calibration:
        raise PairhuntError("the run's calibration.json predates interpolated calibration; recalibrate the run")
    # calibrations made before the high-mass extrapolation keep their constant last table
    model.calibration.set(
        torch.tensor(calibration["centres"]), torch.tensor(calibration["quantiles"]),
        torch.tensor(calibration["high_mass_power"]) if "high_mass_power" in calibration else None,
    )


def load_abc_ensemble(run_dir: str | Path, members: list[Path]) -> tuple[AbcEnsemble, dict]:
    """The ensemble of an ensemble run directory and its metadata (the first member's, plus the members)."""
    meta = json.loads((members[0] / "config.json").read_text())
    ensemble = AbcEnsemble([load_member(member) for member in members])
    set_calibration(ensemble, load_calibration(run_dir))
    meta["ensemble"] = [str(Path(m).relative_to(run_dir)) for m in members]
    return ensemble.eval(), meta


def load_member(run_dir: str | Path) -> AbcModel:
    """The ``best.pt`` model of a single ABC run (an ensemble member), uncalibrated."""
    model = build_abc_model(json.loads((Path(run_dir) / "config.json").read_text()))
    model.load_state_dict(torch.load(Path(run_dir) / "best.pt", weights_only=False, map_location="cpu")["model"])
    return model.eval()


def calibrate_ensemble(run_dir: str | Path, data: TrainingData) -> dict:
    """Calibrate an ensemble run's score in bins of its assigning (first) member's mass, on background ``data``."""
    ensemble, _ = load_abc_ensemble(run_dir, member_dirs(run_dir))
    calibration = mass_calibration(ensemble, data)
    (Path(run_dir) / CALIBRATION_FILE).write_text(json.dumps(calibration) + "\n")
    return calibration


def load_calibration(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / CALIBRATION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


class AbcTrainer(RunTrainer):
    """Train the ABC model; ``best.pt`` has the lowest weighted validation loss, or with
    ``stop_isr_share`` is the state where the run stopped.

    With ``augment`` every training batch is randomly rotated in phi and mirrored in eta
    (:mod:`pairhunt.train.augment`); validation events are used as they are.

    ``stop_isr_share`` ends the run at the first validation whose background pT share in ISR
    falls below it. Why: training starts with a third to two thirds of the QCD pT in ISR and the
    ISR term drives it down at a speed that depends on the seed; a fixed number of steps stops
    some seeds before they leave that start (they assign almost nothing to a signal's mass window)
    and runs others on until no jet goes to ISR, which assigns worse (models/pair_abc.md). Stopped
    at a share of 0.03-0.045 (validated every 20 steps), all 25 seeds of one recipe on the tuning
    samples were usable, with a higher mean quality than at any fixed length tried.
    """

    kind = "abc"
    monitor = "val_objective"

    def __init__(
        self, topology: Topology, data: TrainingData, run_dir, abc_config: AbcConfig, config: TrainConfig,
        augment: bool = False, stop_isr_share: float | None = None,
    ):
        if stop_isr_share is not None and not 0 < stop_isr_share < 1:
            raise PairhuntError(f"stop ISR share {stop_isr_share}: must lie between 0 and 1")
        self.abc_config = abc_config
        self.augment = augment
        self.stop_isr_share = stop_isr_share
        self.symmetry = Symmetry(list(topology.jets.features)) if augment else None
        super().__init__(topology, data, run_dir, config)

    def _metadata(self, data: TrainingData) -> dict:
        meta = super()._metadata(data)
        meta["model"] = self.abc_config.to_dict()
        meta["candidate_scale"] = candidate_scale(data, meta["features"], self.config.seed)
        meta["pair_scale"] = pair_scale(data, meta["features"])
        meta["weighted"] = data.weights is not None
        meta["augment"] = self.augment
        meta["stop_isr_share"] = self.stop_isr_share
        return meta

    def stop_reason(self, record: dict) -> str | None:
        if self.stop_isr_share is None or record["val_isr"] >= self.stop_isr_share:
            return None
        return f"validation ISR pT share {record['val_isr']:.3f} below {self.stop_isr_share:g}"

    def build_model(self) -> AbcModel:
        return build_abc_model(self.meta)

    def train_tensors(self) -> dict[str, torch.Tensor]:
        return tensors(self.train)

    def batch_loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        jets = batch["jets"]
        if self.symmetry is not None:
            jets = self.symmetry(jets, *random_symmetry(len(jets), generator, jets.device))
        terms = self.model.losses(jets, batch["mask"], generator)
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
                _, terms[ANOMALY_SCORE], _ = self.model.hard_assignment_score(data["jets"][rows], data["mask"][rows])
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + float((weights * value).sum())
        total_weight = float(data["weights"].sum())
        metrics = {name: value / total_weight for name, value in sums.items()}
        metrics["objective"] = -metrics["loss"] if math.isfinite(metrics["loss"]) else -math.inf
        return metrics

    def calibrate(self, events: TrainingData | None = None) -> dict:
        """Calibrate ``best.pt``'s anomaly score in bins of the average mass on ``events`` (default:
        all training events)."""
        path = self.run_dir / "best.pt"
        if not path.is_file():
            raise PairhuntError(f"nothing to calibrate: {path} does not exist")
        model = load_member(self.run_dir)
        if events is None:
            events = self.train if len(self.validation) == 0 else concatenate(self.train, self.validation)
        calibration = mass_calibration(model, events)
        (self.run_dir / CALIBRATION_FILE).write_text(json.dumps(calibration) + "\n")
        return calibration


def concatenate(first: TrainingData, second: TrainingData) -> TrainingData:
    """Features, mask and weights of two sets of events (what the calibration needs)."""
    weights = None if first.weights is None else np.concatenate([first.weights, second.weights])
    return TrainingData(
        features=np.concatenate([first.features, second.features]),
        mask=np.concatenate([first.mask, second.mask]),
        targets=np.concatenate([first.targets, second.targets]),
        multiplicity=np.concatenate([first.multiplicity, second.multiplicity]),
        weights=weights,
    )


def tensors(data: TrainingData) -> dict[str, torch.Tensor]:
    return {
        "jets": torch.as_tensor(data.features, dtype=torch.float32),
        "mask": torch.as_tensor(data.mask),
        "weights": torch.as_tensor(normalised_weights(data)),
    }
