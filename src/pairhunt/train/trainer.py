"""Supervised SPA-NET-style training (the loop itself is :mod:`pairhunt.train.loop`), its
validation metrics, and loading a run directory of any model kind back.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from pairhunt.assign.decoding import decode_greedy
from pairhunt.contract import (
    GLOBALS_INPUT,
    JETS_INPUT,
    MASK_INPUT,
    FoldRule,
    assignment_output,
    classification_output,
    global_feature_definitions,
    regression_output,
)
from pairhunt.errors import PairhuntError
from pairhunt.slot_matching import best_correct, canonical, reconstructable
from pairhunt.topology import Topology, topology_from_dict
from pairhunt.train.abc_ensemble import member_dirs
from pairhunt.train.augment import Symmetry, random_symmetry
from pairhunt.train.data import TrainingData
from pairhunt.train.loop import RunTrainer, TrainConfig, device
from pairhunt.train.loss import AssignmentLoss, balance_weights
from pairhunt.train.config import ModelConfig
from pairhunt.train.model import AssignmentModel
from pairhunt.train.pairwise import pair_scale

__all__ = ["Trainer", "TrainConfig", "load_run", "predict", "decode_outputs", "assignment_metrics", "device"]


def assignment_metrics(slots: np.ndarray, targets: np.ndarray, topology: Topology) -> dict[str, float]:
    """Event efficiency (all / complete events) and per-parent efficiency, SPA-NET definitions."""
    recon = reconstructable(targets, topology)
    best = best_correct(canonical(slots, topology), canonical(targets, topology), recon, topology)
    complete = recon.all(axis=1)
    return {
        "event_efficiency": float((best == topology.n_parents).mean()),
        "complete_event_efficiency": float((best[complete] == topology.n_parents).mean()) if complete.any() else math.nan,
        "parent_efficiency": float(best.sum() / max(recon.sum(), 1)),
    }


def _tensors(data: TrainingData, weights: np.ndarray) -> dict[str, torch.Tensor]:
    tensors = {
        JETS_INPUT: torch.as_tensor(data.features, dtype=torch.float32),
        MASK_INPUT: torch.as_tensor(data.mask),
        "targets": torch.as_tensor(data.targets),
        "weights": torch.as_tensor(weights),
    }
    if data.global_features is not None:
        tensors[GLOBALS_INPUT] = torch.as_tensor(data.global_features, dtype=torch.float32)
    for name, values in data.regressions.items():
        tensors[regression_output(name)] = torch.as_tensor(values, dtype=torch.float32)
    for name, values in data.classifications.items():
        tensors[classification_output(name)] = torch.as_tensor(values)
    return tensors


def predict(model: AssignmentModel, data: TrainingData, batch_size: int = 4096) -> dict[str, np.ndarray]:
    """Model outputs (numpy) for every event, in evaluation mode, on the model's device."""
    model.eval()
    on = next(model.parameters()).device
    tensors = {k: v.to(on) for k, v in _tensors(data, np.ones(len(data), dtype=np.float32)).items()}
    chunks: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            batch = slice(start, start + batch_size)
            globals_ = tensors[GLOBALS_INPUT][batch] if GLOBALS_INPUT in tensors else None
            out = model(tensors[JETS_INPUT][batch], tensors[MASK_INPUT][batch], globals_)
            for name, value in out.items():
                chunks.setdefault(name, []).append(value.cpu().numpy())
    return {name: np.concatenate(values) for name, values in chunks.items()}


def decode_outputs(outputs: dict[str, np.ndarray], mask: np.ndarray, topology: Topology) -> np.ndarray:
    return decode_greedy([outputs[assignment_output(p)] for p in topology.parents], mask)


class Trainer(RunTrainer):
    """Supervised SPA-NET-style training; ``best.pt`` has the best validation per-parent efficiency.

    With ``augment`` every training batch is rotated in phi and mirrored in eta at random, its
    event-level inputs (MET) with it (:mod:`pairhunt.train.augment`); validation events are used
    as they are.
    """

    kind = "spanet"
    monitor = "val_parent_efficiency"

    def __init__(
        self,
        topology: Topology,
        data: TrainingData,
        run_dir: str | Path,
        model_config: ModelConfig,
        config: TrainConfig,
        fold_rule: FoldRule | None = None,
        augment: bool = False,
    ):
        """``fold_rule``: train one fold of a k-fold model on the events of ``data`` it does not score."""
        self.model_config = model_config
        self.fold_rule = fold_rule
        self.augment = augment
        self.symmetries = symmetries(topology) if augment else None  # checked before the data are split
        self.loss = AssignmentLoss(topology, config.detection_weight)
        super().__init__(topology, data if fold_rule is None else fold_events(data, fold_rule), run_dir, config)

    def _metadata(self, data: TrainingData) -> dict:
        meta = super()._metadata(data)
        meta.update(
            fold_rule=None if self.fold_rule is None else asdict(self.fold_rule),
            model=self.model_config.to_dict(),
            classes={n: int(v.max()) + 1 for n, v in data.classifications.items()},
            regression_stats={n: (float(v.mean()), float(v.std() or 1.0)) for n, v in data.regressions.items()},
            augment=self.augment,
        )
        if data.global_features is not None:
            g_mean, g_std = data.global_features.mean(axis=0), data.global_features.std(axis=0)
            meta["global_normalisation"] = {"mean": g_mean.tolist(), "std": g_std.tolist()}
        if self.model_config.pair_bias or self.model_config.tuple_mass:
            meta["pair_scale"] = pair_scale(data, meta["features"])
        return meta

    def build_model(self) -> AssignmentModel:
        return build_model(self.topology, self.model_config, self.meta)

    def train_tensors(self) -> dict[str, torch.Tensor]:
        return _tensors(self.train, balance_weights(self.train.targets, self.topology))

    def batch_loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        jets, globals_ = batch[JETS_INPUT], batch.get(GLOBALS_INPUT)
        if self.symmetries is not None:
            on_jets, on_globals = self.symmetries
            angle, mirror = random_symmetry(len(jets), generator, jets.device)
            jets = on_jets(jets, angle, mirror)
            globals_ = None if globals_ is None else on_globals(globals_, angle, mirror)
        outputs = self.model(jets, batch[MASK_INPUT], globals_)
        total, parts = self.loss(outputs, batch["targets"], batch["weights"])
        for name, (mean, std) in self.meta["regression_stats"].items():
            key = regression_output(name)
            term = (((outputs[key] - batch[key]) / std) ** 2).mean()
            total, parts[key] = total + term, term.detach()
        for name in self.meta["classes"]:
            key = classification_output(name)
            term = torch.nn.functional.cross_entropy(outputs[key], batch[key])
            total, parts[key] = total + term, term.detach()
        return total, parts

    def validate(self) -> dict[str, float]:
        outputs = predict(self.model, self.validation)
        slots = decode_outputs(outputs, self.validation.mask, self.topology)
        return assignment_metrics(slots, self.validation.targets, self.topology)


def symmetries(topology: Topology) -> tuple[Symmetry, Symmetry]:
    """How phi rotations and eta mirrors act on the jets' and on the event-level inputs."""
    if topology.regressions:
        raise PairhuntError(
            f"topology {topology.name!r} regresses {', '.join(topology.regressions)}: symmetry augmentation "
            "cannot know how a regression target turns with the event; train without --augment"
        )
    return Symmetry(list(topology.jets.features)), Symmetry(list(global_feature_definitions(topology).values()))


def fold_events(data: TrainingData, rule: FoldRule) -> TrainingData:
    """The events a fold's model trains and validates on: those it will never score."""
    if data.event is None:
        raise PairhuntError(
            "k-fold training routes events by their NanoAOD event number; these training files have none "
            "(SPANet HDF5 has no event numbers: train with --folds 1)"
        )
    return data.subset(rule.trains_on(data.event))


def build_model(topology: Topology, model_config: ModelConfig, meta: dict) -> AssignmentModel:
    """The model of a run from its metadata (normalisation, classes, regression scales)."""
    glob = meta.get("global_normalisation")
    return AssignmentModel(
        topology,
        model_config,
        torch.tensor(meta["normalisation"]["mean"]),
        torch.tensor(meta["normalisation"]["std"]),
        None if glob is None else torch.tensor(glob["mean"]),
        None if glob is None else torch.tensor(glob["std"]),
        classes=meta.get("classes"),
        regression_stats={k: tuple(v) for k, v in meta.get("regression_stats", {}).items()},
        pair_scale=meta.get("pair_scale"),
    )


def load_run(run_dir: str | Path, checkpoint: str = "best.pt") -> tuple[torch.nn.Module, Topology, dict]:
    """Model (with the chosen checkpoint's weights), topology and metadata of a run of any kind."""
    run_dir = Path(run_dir)
    members = member_dirs(run_dir)
    if members is not None:
        from pairhunt.train.abc_trainer import load_abc_ensemble

        model, meta = load_abc_ensemble(run_dir, members)
        return model, topology_from_dict(meta["topology"]), meta
    if not (run_dir / "config.json").is_file():
        raise PairhuntError(f"{run_dir} is not a training run (no config.json)")
    meta = json.loads((run_dir / "config.json").read_text())
    meta.setdefault("kind", "spanet")  # runs written before ABC existed
    topology = topology_from_dict(meta["topology"])
    if meta["kind"] == "abc":
        from pairhunt.train.abc_trainer import build_abc_model, load_calibration

        model = build_abc_model(meta, load_calibration(run_dir))
    else:
        model = build_model(topology, ModelConfig(**meta["model"]), meta)
    state = torch.load(run_dir / checkpoint, weights_only=False, map_location="cpu")
    model.load_state_dict(state["model"])
    model.eval()
    return model, topology, meta
