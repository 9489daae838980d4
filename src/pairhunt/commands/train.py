"""``pairhunt train spanet``: train a SPA-NET-style assignment model (needs the ``train`` extra)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pairhunt.errors import PairhuntError


def load_data(paths: list[str], topology, max_events: int | None, min_jets: int | None = None):
    """Training events from generated ROOT files or SPANet HDF5 files (by suffix)."""
    from pairhunt.train.data import from_nanoaod, from_spanet_h5

    if all(p.endswith((".h5", ".hdf5")) for p in paths):
        if len(paths) != 1:
            raise PairhuntError("give one SPANet HDF5 file")
        data = from_spanet_h5(paths[0], topology)
        return data if max_events is None else data.subset(slice(0, max_events))
    if any(p.endswith((".h5", ".hdf5")) for p in paths):
        raise PairhuntError("do not mix ROOT and HDF5 training files")
    return from_nanoaod(paths, topology, max_events, min_jets)


def execute(args: argparse.Namespace) -> int:
    from pairhunt.topology import load_topology
    from pairhunt.train.model import ModelConfig
    from pairhunt.train.trainer import TrainConfig, Trainer

    topology = load_topology(args.topology)
    data = load_data(args.data, topology, args.max_events, args.min_jets)
    model_config = ModelConfig(
        dim=args.dim, heads=args.heads, encoder_layers=args.encoder_layers,
        branch_layers=args.branch_layers, tensor_dim=args.tensor_dim,
    )
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        validation_fraction=args.validation_fraction, seed=args.seed, threads=args.threads,
    )
    trainer = Trainer(topology, data, args.output, model_config, config)
    if args.resume:
        trainer.resume()
    history = trainer.fit(progress=not args.no_progress)
    print(json.dumps(history[-1] if history else {}, indent=2))
    print(f"run directory: {Path(args.output).resolve()} (best.pt, last.pt, config.json, history.json)")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an assignment model (SPA-NET style) on generated or SPANet HDF5 data",
        description="Train a model with torch (extra 'train'); export it with `pairhunt export`.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    spanet = kinds.add_parser("spanet", help="supervised SPA-NET-style model (truth-labelled data)",
                              description="Supervised SPA-NET-style training: symmetric tensor attention, "
                              "permutation-minimal loss, partial events.")
    spanet.add_argument("--topology", required=True, help="shipped topology name, pairhunt YAML or SPANet event YAML")
    spanet.add_argument("--data", nargs="+", required=True, help="generated ROOT files (pairhunt generate) or one SPANet .h5")
    spanet.add_argument("-o", "--output", required=True, help="run directory")
    spanet.add_argument("--max-events", type=int, help="use at most this many events")
    spanet.add_argument("--min-jets", type=int, help="train on events with at least this many jets (default: the topology's)")
    spanet.add_argument("--epochs", type=int, default=20)
    spanet.add_argument("--batch-size", type=int, default=512)
    spanet.add_argument("--learning-rate", type=float, default=2e-3)
    spanet.add_argument("--validation-fraction", type=float, default=0.1)
    spanet.add_argument("--seed", type=int, default=1)
    spanet.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    spanet.add_argument("--dim", type=int, default=64)
    spanet.add_argument("--heads", type=int, default=4)
    spanet.add_argument("--encoder-layers", type=int, default=3)
    spanet.add_argument("--branch-layers", type=int, default=1)
    spanet.add_argument("--tensor-dim", type=int, default=32)
    spanet.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    spanet.add_argument("--no-progress", action="store_true")
    spanet.set_defaults(handler=execute)
