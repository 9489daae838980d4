"""The training loop every pairhunt model shares: seeded split, AdamW with warm-up and cosine
decay, a progress bar, validation each epoch, best and last checkpoints, resume; on CUDA when
torch sees a GPU, on the CPU otherwise.

A run directory holds ``config.json`` (model kind, topology, features, normalisation, model and
training settings), ``last.pt`` (to resume), ``best.pt`` (best validation ``monitor``) and
``history.json`` (losses and validation metrics per epoch, or every ``validate_every`` steps).
Subclasses supply the model, the training tensors, the batch loss and the validation metrics, and
may end a run early (``stop_reason``).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pairhunt.errors import PairhuntError
from pairhunt.topology import Topology
from pairhunt.train.config import TrainConfig
from pairhunt.train.data import TrainingData

STATUS_EVERY = 100  # steps between the progress bar's loss readings (each one waits for the GPU)


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


def best_record(history: list[dict], monitor: str) -> dict:
    """The validation record ``best.pt`` holds: where the run stopped early, else the best ``monitor``."""
    if history[-1].get("stopped"):
        return history[-1]
    return max(history, key=lambda record: record[monitor])


def masked_stats(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per feature over real objects."""
    real = values[mask]
    return real.mean(axis=0), real.std(axis=0)


def device() -> torch.device:
    """CUDA when torch sees a GPU, the CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class RunTrainer:
    """One training run; ``fit`` trains the remaining epochs and writes the run directory.

    ``monitor`` names the validation metric (higher is better) that selects ``best.pt``.
    """

    kind: str
    monitor: str

    def __init__(self, topology: Topology, data: TrainingData, run_dir: str | Path, config: TrainConfig):
        if len(data) < 2:
            raise PairhuntError("need at least two events to train")
        self.topology, self.config = topology, config
        self.run_dir = Path(run_dir)
        seed_everything(config.seed)
        torch.set_num_threads(config.threads)
        self.validation, self.train = data.split(config.validation_fraction, config.seed)
        self.meta = self._metadata(self.train)
        self.device = device()
        self.model = self.build_model().to(self.device)
        self.optimiser = torch.optim.AdamW(self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        steps = max(config.epochs * math.ceil(len(self.train) / config.batch_size), 1)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimiser, lambda step: warmup_cosine(step, steps))
        self.history: list[dict] = []
        self.epoch = 0
        self.best = -math.inf
        self.stopped: str | None = None  # why the run ended before its last epoch

    def _metadata(self, data: TrainingData) -> dict:
        mean, std = masked_stats(data.features, data.mask)
        return {
            "kind": self.kind,
            "topology": self.topology.to_dict(),
            "features": [f.name for f in self.topology.jets.features],
            "normalisation": {"mean": mean.tolist(), "std": std.tolist()},
            "training": asdict(self.config),
            "events": {"train": len(data), "validation": len(self.validation)},
        }

    def build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def train_tensors(self) -> dict[str, torch.Tensor]:
        """Training-set tensors, indexed by event along their first axis."""
        raise NotImplementedError

    def batch_loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        """Scalar loss to minimise and its parts (detached) for the log."""
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        raise NotImplementedError

    def stop_reason(self, record: dict) -> str | None:
        """Why training ends at this validation record (None: it goes on); no early stop by default."""
        return None

    def fit(self, progress: bool = True) -> list[dict]:
        """Train the remaining epochs, or until ``stop_reason`` ends the run; returns the history.

        Validation runs at the end of every epoch and, with ``validate_every``, every that many
        steps; ``best.pt`` may come from any of them, ``last.pt`` (for ``resume``) is written at
        epoch ends and where the run stops. A stopped run's ``best.pt`` is the state it stopped in.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(self.meta, indent=2) + "\n")
        tensors = {k: v.to(self.device) for k, v in self.train_tensors().items()}
        n_batches = math.ceil(len(self.train) / self.config.batch_size)
        every = self.config.validate_every
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[status]}"))
        with Progress(*columns, disable=not progress) as bar:
            while self.epoch < self.config.epochs and self.stopped is None:
                task = bar.add_task(f"epoch {self.epoch + 1}/{self.config.epochs}", total=n_batches, status="")
                generator = torch.Generator().manual_seed(self.config.seed * 1000 + self.epoch)
                order = torch.randperm(len(self.train), generator=generator).to(self.device)
                self.model.train()
                start, sums = time.perf_counter(), {}
                for b in range(n_batches):
                    rows = order[b * self.config.batch_size : (b + 1) * self.config.batch_size]
                    total, parts = self.batch_loss({k: v[rows] for k, v in tensors.items()}, generator)
                    self.optimiser.zero_grad()
                    total.backward()
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
                    self.optimiser.step()
                    self.schedule.step()
                    for name, value in {"loss": total.detach(), **parts}.items():
                        sums[name] = sums.get(name, 0.0) + value.double()  # summed on the device: reading it every step would stall a GPU
                    status = {"status": f"loss {float(sums['loss']) / (b + 1):.3f}"} if progress and b % STATUS_EVERY == 0 else {}
                    bar.update(task, advance=1, **status)
                    step, epoch_end = self.epoch * n_batches + b + 1, b + 1 == n_batches
                    if epoch_end or (every and step % every == 0):
                        record = self._record(step, (b + 1) / n_batches, sums, b + 1, start)
                        bar.update(task, status=f"{self.monitor} {record[self.monitor]:.3f}")
                        if self.stopped is not None or epoch_end:
                            break
                        self.model.train()
                self.epoch += 1
                torch.save(self._state(), self.run_dir / "last.pt")
        return self.history

    def _record(self, step: int, epoch_fraction: float, sums: dict, batches: int, start: float) -> dict:
        """Validate, append the record to the history, checkpoint ``best.pt``; set ``stopped`` if the run ends here."""
        record = {"epoch": self.epoch + 1 if epoch_fraction == 1 else round(self.epoch + epoch_fraction, 3), "step": step,
                  "seconds": round(time.perf_counter() - start, 1)}
        record.update({k: float(v) / batches for k, v in sums.items()})
        record.update({f"val_{k}": v for k, v in self.validate().items()})
        self.stopped = self.stop_reason(record)
        if self.stopped is not None:
            record["stopped"] = self.stopped
        self.history.append(record)
        self._checkpoint(record)
        return record

    def _state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "schedule": self.schedule.state_dict(),
            "epoch": self.epoch,
            "best": self.best,
            "history": self.history,
            "stopped": self.stopped,
            "torch_rng": torch.get_rng_state(),
        }

    def _checkpoint(self, record: dict) -> None:
        """``best.pt`` if this validation is the best so far or where the run stops; the history."""
        if record[self.monitor] > self.best or self.stopped is not None:
            self.best = record[self.monitor]
            torch.save(self._state(), self.run_dir / "best.pt")
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
        self.stopped = state.get("stopped")
        torch.set_rng_state(state["torch_rng"].cpu())
