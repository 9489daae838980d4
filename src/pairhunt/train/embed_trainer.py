"""``pairhunt train embed``: the theory map trained on a library of theories, and its export.

The library is a finished ``pairhunt run`` over a fileset with one dataset per theory (the
per-event tables of one assignment method). Each theory's events are split, seeded, into
training and validation events; training draws sets of events by weight, the validation loss
picks the checkpoint, and the validation events also set each theory's unlike threshold.

The run directory holds ``config.json`` (kind ``embed``, topology, method, features, theories,
normalisation, settings), ``best.pt``, ``history.json`` and ``library.json`` (per theory its
embedded training sets and its density threshold, and the novelty test fitted on the training
sets' pooled representations; both thresholds calibrated on the validation sets): everything the
exported model's contract carries.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pairhunt.errors import PairhuntError
from pairhunt.theory.contract import EMBEDDING_OUTPUT, EVENTS_INPUT, POOLED_OUTPUT, WEIGHTS_INPUT, EmbeddingContract
from pairhunt.theory.density import TheoryDensity
from pairhunt.theory.inputs import TheoryEvents
from pairhunt.theory.novelty import SetNovelty
from pairhunt.theory.sets import draw_sets
from pairhunt.train.config import EmbedConfig
from pairhunt.train.embed_model import MapOutputs, SetEmbedding, contrastive_loss
from pairhunt.train.loop import seed_everything, warmup_cosine

MIN_EVENTS = 20  # per theory and split: fewer cannot make distinct sets
VALIDATION_SETS = 32  # per theory, drawn once, for the validation loss


def _split(events: TheoryEvents, fraction: float, rng: np.random.Generator) -> tuple[TheoryEvents, TheoryEvents]:
    validation = np.zeros(len(events), dtype=bool)
    validation[rng.permutation(len(events))[: int(round(fraction * len(events)))]] = True
    return events.subset(~validation), events.subset(validation)


def _normalisation(theories: list[TheoryEvents]) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation per feature, every theory counted equally."""
    means = np.array([np.average(t.features, axis=0, weights=t.weight) for t in theories])
    squares = np.array([np.average(t.features.astype(np.float64) ** 2, axis=0, weights=t.weight) for t in theories])
    mean = means.mean(axis=0)
    std = np.sqrt(np.maximum(squares.mean(axis=0) - mean**2, 0.0))
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def _set_indices(theory: TheoryEvents, n_sets: int, config: EmbedConfig, rng: np.random.Generator) -> np.ndarray:
    """``[n_sets, K]`` events of one theory drawn by weight; a ``window_fraction`` of the sets
    from a mass window around a random event's mass (``characterize`` sees windows)."""
    indices = draw_sets(theory.weight, config.set_size, n_sets, rng)
    windowed = rng.random(n_sets) < config.window_fraction
    centres = theory.mass[draw_sets(theory.weight, int(windowed.sum()), 1, rng)[0]] if windowed.any() else []
    for row, centre in zip(np.flatnonzero(windowed), centres):
        inside = np.abs(theory.mass - centre) < rng.uniform(*config.window_half_width) * centre
        indices[row] = draw_sets(np.where(inside, theory.weight, 0.0), config.set_size, 1, rng)[0]
    return indices


def _sets(theories: list[TheoryEvents], n_sets: int, config: EmbedConfig, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_sets`` sets of every theory: features ``[T * n, K, F]`` and labels."""
    features = [t.features[_set_indices(t, n_sets, config, rng)] for t in theories]
    labels = np.repeat(np.arange(len(theories)), n_sets)
    return torch.from_numpy(np.concatenate(features)), torch.from_numpy(labels)


def _embed(model: SetEmbedding, features: torch.Tensor) -> torch.Tensor:
    return model(features, torch.ones(features.shape[:2]))


class EmbedTrainer:
    """Trains one theory map: ``library`` maps theory names to their events."""

    def __init__(self, library: dict[str, TheoryEvents], run_dir: str | Path, config: EmbedConfig, source: dict):
        """``source``: the ``topology`` (name), ``topology_inputs`` and ``method`` of the library's run."""
        if len(library) < 2:
            raise PairhuntError(f"a theory map needs at least two theories, got {list(library)}")
        self.config, self.source, self.run_dir = config, source, Path(run_dir)
        self.names = list(library)
        rng = np.random.default_rng(config.seed)
        self.train, self.validation = [], []
        for name in self.names:
            train, validation = _split(library[name], config.validation_fraction, rng)
            if min(len(train), len(validation)) < MIN_EVENTS:
                raise PairhuntError(f"theory {name!r} has {len(library[name])} usable events; at least {2 * MIN_EVENTS} are needed")
            self.train.append(train)
            self.validation.append(validation)
        self.features = list(library[self.names[0]].names)
        self.mean, self.std = _normalisation(self.train)
        seed_everything(config.seed)
        self.model = SetEmbedding(self.mean, self.std, config.hidden, config.latent)
        self.rng = rng

    def _validation_loss(self, sets: tuple[torch.Tensor, torch.Tensor]) -> float:
        self.model.eval()
        with torch.no_grad():
            loss = contrastive_loss(_embed(self.model, sets[0]), sets[1], self.config.margin)
        self.model.train()
        return float(loss)

    def fit(self, progress: bool = True) -> list[dict]:
        """Train, keep the weights of the lowest validation loss, embed the library, write the run."""
        config = self.config
        torch.set_num_threads(config.threads)
        validation = _sets(self.validation, VALIDATION_SETS, config, self.rng)
        optimiser = torch.optim.AdamW(self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: warmup_cosine(step, config.steps))
        history, best, best_state, running = [], np.inf, None, []
        columns = (TextColumn("train embed"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[status]}"))
        with Progress(*columns, disable=not progress) as bar:
            task = bar.add_task("steps", total=config.steps, status="")
            for step in range(1, config.steps + 1):
                features, labels = _sets(self.train, config.sets_per_theory, config, self.rng)
                loss = contrastive_loss(_embed(self.model, features), labels, config.margin)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                running.append(loss.item())
                if step % config.validate_every == 0 or step == config.steps:
                    record = {"step": step, "train_loss": float(np.mean(running)), "validation_loss": self._validation_loss(validation)}
                    running = []
                    history.append(record)
                    if record["validation_loss"] < best:
                        best, best_state = record["validation_loss"], {k: v.clone() for k, v in self.model.state_dict().items()}
                    bar.update(task, status=f"validation loss {record['validation_loss']:.4f}")
                bar.advance(task)
        self.model.load_state_dict(best_state)
        self.model.eval()
        self._write(history)
        return history

    def embedded_sets(self, theories: list[TheoryEvents], n_sets: int, set_size: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per theory, ``n_sets`` sets of ``set_size`` events: their points on the map and their pooled representations."""
        features, labels = _sets(theories, n_sets, dataclasses.replace(self.config, set_size=set_size), self.rng)
        with torch.no_grad():
            pooled = self.model.pool(features, torch.ones(features.shape[:2]))
            points = self.model.rho(pooled).numpy().astype(np.float64)
        pooled = pooled.numpy().astype(np.float64)
        labels = labels.numpy()
        return ({name: points[labels == k] for k, name in enumerate(self.names)},
                {name: pooled[labels == k] for k, name in enumerate(self.names)})

    def _write(self, history: list[dict]) -> None:
        """The run directory; ``library.json`` last."""
        config = self.config
        library = self.embedded_sets(self.train, config.library_sets, config.set_size)[0]
        density = TheoryDensity(library)
        novelty = SetNovelty.fit(self.embedded_sets(self.train, config.novelty_sets, config.set_size)[1], config.novelty_shrinkage)
        thresholds = {}
        for size in config.threshold_set_sizes:
            points, pooled = self.embedded_sets(self.validation, config.library_sets, size)
            thresholds[str(size)] = density.calibrate(points, config.unlike_quantile, size)
            novelty.calibrate(pooled, config.unlike_quantile, size)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "kind": "embed", **self.source, "features": self.features, "theories": self.names,
            "normalisation": {"mean": self.mean.tolist(), "std": self.std.tolist()}, "embed": asdict(config),
            "events": {n: {"train": len(t), "validation": len(v)} for n, t, v in zip(self.names, self.train, self.validation)},
        }
        (self.run_dir / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
        torch.save({"model": self.model.state_dict()}, self.run_dir / "best.pt")
        (self.run_dir / "history.json").write_text(json.dumps(history, indent=2) + "\n")
        (self.run_dir / "library.json").write_text(json.dumps(
            {"library": {n: p.tolist() for n, p in library.items()}, "thresholds": thresholds, "novelty": novelty.to_dict()}) + "\n")


def load_embedding_run(run_dir: str | Path) -> tuple[SetEmbedding, dict, dict]:
    """The trained network, ``config.json`` and ``library.json`` of a finished ``train embed`` run."""
    run_dir = Path(run_dir)
    if not (run_dir / "library.json").is_file():
        raise PairhuntError(f"{run_dir} is not a finished theory-map run (no library.json)")
    meta = json.loads((run_dir / "config.json").read_text())
    settings = EmbedConfig(**meta["embed"])
    model = SetEmbedding(np.array(meta["normalisation"]["mean"]), np.array(meta["normalisation"]["std"]), settings.hidden, settings.latent)
    model.load_state_dict(torch.load(run_dir / "best.pt", weights_only=True, map_location="cpu")["model"])
    return model.eval(), meta, json.loads((run_dir / "library.json").read_text())


def export_embedding(run_dir: str | Path, output: str | Path) -> EmbeddingContract:
    """``output`` (.onnx) with dynamic set count and set size, the contract in its metadata."""
    import onnx

    from pairhunt.contract import METADATA_KEY
    from pairhunt.train.export import OPSET

    model, meta, library = load_embedding_run(run_dir)
    settings = EmbedConfig(**meta["embed"])
    args = (torch.randn(3, settings.set_size, len(meta["features"])), torch.rand(3, settings.set_size) + 0.5)
    sets, events = torch.export.Dim("sets", min=1, max=1_000_000), torch.export.Dim("set_size", min=1, max=1_000_000)
    program = torch.onnx.export(
        MapOutputs(model), args, dynamo=True, dynamic_shapes=({0: sets, 1: events}, {0: sets, 1: events}),
        input_names=[EVENTS_INPUT, WEIGHTS_INPUT], output_names=[EMBEDDING_OUTPUT, POOLED_OUTPUT], opset_version=OPSET, verbose=False,
    )
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(output))
    contract = EmbeddingContract(
        topology=meta["topology"], topology_inputs=meta["topology_inputs"], method=meta["method"], features=meta["features"],
        set_size=settings.set_size, latent=settings.latent, classes=meta["theories"], library=library["library"],
        thresholds=library["thresholds"], novelty=library["novelty"], unlike_quantile=settings.unlike_quantile,
    )
    proto = onnx.load(str(output))
    onnx.helper.set_model_props(proto, {METADATA_KEY: contract.to_json()})
    onnx.save(proto, str(output))
    return contract
