"""Train an assignment model: seeded split, AdamW + cosine schedule, validation each epoch,
best and last checkpoints, resume; on CUDA when torch sees a GPU, on the CPU otherwise.

A run directory holds ``config.json`` (topology, model and training settings, normalisation),
``last.pt`` (to resume), ``best.pt`` (best validation per-parent efficiency) and
``history.json`` (losses and validation metrics per epoch).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pairhunt.decoding import decode_greedy
from pairhunt.errors import PairhuntError
from pairhunt.evaluate import best_correct, canonical, reconstructable
from pairhunt.topology import Topology, topology_from_dict
from pairhunt.train.data import TrainingData
from pairhunt.train.loss import AssignmentLoss, balance_weights
from pairhunt.train.model import AssignmentModel, ModelConfig


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def warmup_cosine(step: int, total: int, warmup_fraction: float = 0.05) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to zero at ``total`` steps.

    A pure function of the step, so a resumed run with more epochs simply stretches it.
    """
    warmup = max(1, int(warmup_fraction * total))
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def masked_stats(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per feature over real objects."""
    real = values[mask]
    return real.mean(axis=0), real.std(axis=0)


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
        "jets": torch.as_tensor(data.features, dtype=torch.float32),
        "mask": torch.as_tensor(data.mask),
        "targets": torch.as_tensor(data.targets),
        "weights": torch.as_tensor(weights),
    }
    if data.global_features is not None:
        tensors["globals"] = torch.as_tensor(data.global_features, dtype=torch.float32)
    for name, values in data.regressions.items():
        tensors[f"regression_{name}"] = torch.as_tensor(values, dtype=torch.float32)
    for name, values in data.classifications.items():
        tensors[f"classification_{name}"] = torch.as_tensor(values)
    return tensors


def device() -> torch.device:
    """CUDA when torch sees a GPU, the CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def predict(model: AssignmentModel, data: TrainingData, batch_size: int = 4096) -> dict[str, np.ndarray]:
    """Model outputs (numpy) for every event, in evaluation mode, on the model's device."""
    model.eval()
    on = next(model.parameters()).device
    tensors = {k: v.to(on) for k, v in _tensors(data, np.ones(len(data), dtype=np.float32)).items()}
    chunks: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            batch = slice(start, start + batch_size)
            globals_ = tensors["globals"][batch] if "globals" in tensors else None
            out = model(tensors["jets"][batch], tensors["mask"][batch], globals_)
            for name, value in out.items():
                chunks.setdefault(name, []).append(value.cpu().numpy())
    return {name: np.concatenate(values) for name, values in chunks.items()}


def decode_outputs(outputs: dict[str, np.ndarray], mask: np.ndarray, topology: Topology) -> np.ndarray:
    return decode_greedy([outputs[f"assignment_{p}"] for p in topology.parents], mask)


class Trainer:
    """Everything one training run needs; ``fit`` trains and writes the run directory."""

    def __init__(self, topology: Topology, data: TrainingData, run_dir: str | Path, model_config: ModelConfig, config: TrainConfig):
        if len(data) < 2:
            raise PairhuntError("need at least two events to train")
        self.topology, self.config, self.model_config = topology, config, model_config
        self.run_dir = Path(run_dir)
        seed_everything(config.seed)
        torch.set_num_threads(config.threads)
        self.validation, self.train = data.split(config.validation_fraction, config.seed)
        self.meta = self._metadata(self.train)
        self.device = device()
        self.model = build_model(topology, model_config, self.meta).to(self.device)
        self.loss = AssignmentLoss(topology, config.detection_weight)
        self.optimiser = torch.optim.AdamW(self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        steps = max(config.epochs * math.ceil(len(self.train) / config.batch_size), 1)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimiser, lambda step: warmup_cosine(step, steps))
        self.history: list[dict] = []
        self.epoch = 0
        self.best = -math.inf

    def _metadata(self, data: TrainingData) -> dict:
        mean, std = masked_stats(data.features, data.mask)
        meta = {
            "topology": self.topology.to_dict(),
            "features": [f.name for f in self.topology.jets.features],
            "normalisation": {"mean": mean.tolist(), "std": std.tolist()},
            "model": self.model_config.to_dict(),
            "training": asdict(self.config),
            "events": {"train": len(data), "validation": len(self.validation)},
            "classes": {n: int(v.max()) + 1 for n, v in data.classifications.items()},
            "regression_stats": {n: (float(v.mean()), float(v.std() or 1.0)) for n, v in data.regressions.items()},
        }
        if data.global_features is not None:
            g_mean, g_std = data.global_features.mean(axis=0), data.global_features.std(axis=0)
            meta["global_normalisation"] = {"mean": g_mean.tolist(), "std": g_std.tolist()}
        return meta

    def _batch_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        outputs = self.model(batch["jets"], batch["mask"], batch.get("globals"))
        total, parts = self.loss(outputs, batch["targets"], batch["weights"])
        for name, (mean, std) in self.meta["regression_stats"].items():
            term = (((outputs[f"regression_{name}"] - batch[f"regression_{name}"]) / std) ** 2).mean()
            total, parts[f"regression_{name}"] = total + term, term.detach()
        for name in self.meta["classes"]:
            term = torch.nn.functional.cross_entropy(outputs[f"classification_{name}"], batch[f"classification_{name}"])
            total, parts[f"classification_{name}"] = total + term, term.detach()
        return total, parts

    def fit(self, progress: bool = True) -> list[dict]:
        """Train the remaining epochs; returns the history."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(self.meta, indent=2) + "\n")
        tensors = {k: v.to(self.device) for k, v in _tensors(self.train, balance_weights(self.train.targets, self.topology)).items()}
        n_batches = math.ceil(len(self.train) / self.config.batch_size)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[status]}"))
        with Progress(*columns, disable=not progress) as bar:
            while self.epoch < self.config.epochs:
                task = bar.add_task(f"epoch {self.epoch + 1}/{self.config.epochs}", total=n_batches, status="")
                generator = torch.Generator().manual_seed(self.config.seed * 1000 + self.epoch)
                order = torch.randperm(len(self.train), generator=generator).to(self.device)
                self.model.train()
                start, sums = time.perf_counter(), {}
                for b in range(n_batches):
                    rows = order[b * self.config.batch_size : (b + 1) * self.config.batch_size]
                    total, parts = self._batch_loss({k: v[rows] for k, v in tensors.items()})
                    self.optimiser.zero_grad()
                    total.backward()
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
                    self.optimiser.step()
                    self.schedule.step()
                    for name, value in {"loss": total.detach(), **parts}.items():
                        sums[name] = sums.get(name, 0.0) + float(value)
                    bar.update(task, advance=1, status=f"loss {sums['loss'] / (b + 1):.3f}")
                self.epoch += 1
                record = {"epoch": self.epoch, "seconds": round(time.perf_counter() - start, 1)}
                record.update({k: v / n_batches for k, v in sums.items()})
                record.update({f"val_{k}": v for k, v in self.validate().items()})
                self.history.append(record)
                bar.update(task, status=f"val parent eff. {record['val_parent_efficiency']:.3f}")
                self._checkpoint(record)
        return self.history

    def validate(self) -> dict[str, float]:
        outputs = predict(self.model, self.validation)
        slots = decode_outputs(outputs, self.validation.mask, self.topology)
        return assignment_metrics(slots, self.validation.targets, self.topology)

    def _state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "schedule": self.schedule.state_dict(),
            "epoch": self.epoch,
            "best": self.best,
            "history": self.history,
            "torch_rng": torch.get_rng_state(),
        }

    def _checkpoint(self, record: dict) -> None:
        state = self._state()
        torch.save(state, self.run_dir / "last.pt")
        if record["val_parent_efficiency"] > self.best:
            self.best = record["val_parent_efficiency"]
            state["best"] = self.best
            torch.save(state, self.run_dir / "best.pt")
        (self.run_dir / "history.json").write_text(json.dumps(self.history, indent=2) + "\n")

    def resume(self) -> None:
        """Continue from ``last.pt`` of the run directory."""
        path = self.run_dir / "last.pt"
        if not path.is_file():
            raise PairhuntError(f"nothing to resume: {path} does not exist")
        state = torch.load(path, weights_only=False, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.schedule.load_state_dict(state["schedule"])
        self.epoch, self.best, self.history = state["epoch"], state["best"], state["history"]
        torch.set_rng_state(state["torch_rng"].cpu())


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
    )


def load_run(run_dir: str | Path, checkpoint: str = "best.pt") -> tuple[AssignmentModel, Topology, dict]:
    """Model (with the chosen checkpoint's weights), topology and metadata of a run."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise PairhuntError(f"{run_dir} is not a training run (no config.json)")
    meta = json.loads((run_dir / "config.json").read_text())
    topology = topology_from_dict(meta["topology"])
    model = build_model(topology, ModelConfig(**meta["model"]), meta)
    state = torch.load(run_dir / checkpoint, weights_only=False, map_location="cpu")
    model.load_state_dict(state["model"])
    model.eval()
    return model, topology, meta
