"""``pairhunt train spanet|abc|embed``: train a model (needs the ``train`` extra).

``spanet`` is supervised (truth-labelled generated files or SPANet HDF5); ``abc`` is
unsupervised and trains on background events only (weighted generated QCD, or real data);
``embed`` trains the theory map on a run over a library of theories, one dataset each.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pairhunt.errors import PairhuntError
from pairhunt.extras import installed, require

LOSS_TERMS = ("reconstruction", "crossed", "margin", "isr")  # the weighted terms of the ABC loss
# ABC's default recipe: end each run where less than 3 % of the background pT goes to ISR, looked at
# every 20 steps, within an 8-epoch schedule; on the tuning samples every one of 25 seeds was usable
# this way, where a fixed length left 12 of 20 in the ISR-heavy start (docs/training.md, item 8)
ABC_EPOCHS, ABC_VALIDATE_EVERY, ABC_STOP_ISR_SHARE = 8, 20, 0.03


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


def train_config(args: argparse.Namespace):
    from pairhunt.train.config import TrainConfig

    weights = {"detection_weight": args.detection_weight} if args.kind == "spanet" else {}
    return TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        validation_fraction=args.validation_fraction, seed=args.seed, threads=args.threads, validate_every=args.validate_every,
        **weights,
    )


def spanet_trainers(args: argparse.Namespace):
    """The trainer of the run, or one per fold (built one after the other) with ``--folds k``."""
    from pairhunt.topology import load_topology
    from pairhunt.train.folds import fold_trainers
    from pairhunt.train.config import ModelConfig
    from pairhunt.train.trainer import Trainer, symmetries

    if args.folds < 1:
        raise PairhuntError(f"--folds {args.folds}: need 1 (one model) or more")
    topology = load_topology(args.topology)
    model_config = ModelConfig(  # a bad size is one line before any file is read
        dim=args.dim, heads=args.heads, encoder_layers=args.encoder_layers,
        branch_layers=args.branch_layers, tensor_dim=args.tensor_dim, pair_bias=args.pair_bias,
        tuple_mass=args.tuple_mass,
    )
    if args.augment:
        symmetries(topology)  # a topology augmentation cannot turn is one line before any file is read
    data = load_data(args.data, topology, args.max_events, args.min_jets)
    if args.folds == 1:
        return [Trainer(topology, data, args.output, model_config, train_config(args), augment=args.augment)]
    return fold_trainers(topology, data, args.output, model_config, train_config(args), args.folds, args.augment)


def abc_data(args: argparse.Namespace):
    """The background events ABC trains on (every member of an ensemble on the same)."""
    import numpy as np

    from pairhunt.topology import load_topology
    from pairhunt.train.data import from_nanoaod

    if any(p.endswith((".h5", ".hdf5")) for p in args.data):
        raise PairhuntError("ABC trains on NanoAOD-like ROOT files (background only)")
    topology = load_topology(args.topology)
    data = from_nanoaod(args.data, topology, args.max_events, require_truth=False)
    if args.train_events is not None:
        if args.train_events > len(data):
            raise PairhuntError(f"--train-events {args.train_events}: the files hold only {len(data)} selected events")
        data = data.subset(np.arange(args.train_events))
    return topology, data


def abc_config(args: argparse.Namespace):
    """The ABC model's settings; a bad one is one line before any file is read."""
    from pairhunt.train.config import AbcConfig

    return AbcConfig(
        dim=args.dim, heads=args.heads, layers=args.layers, latent=args.latent, temperature=args.temperature,
        **{f"{term}_weight": getattr(args, f"{term}_weight") for term in LOSS_TERMS},
        margin=args.margin,
    )


def abc_trainers(args: argparse.Namespace, topology, data, abc_config):
    """The trainer of the run, or with ``--seeds`` one per ensemble member (OUTPUT/seed_<s>)."""
    import dataclasses

    from pairhunt.train.abc_trainer import AbcTrainer

    options = {"augment": args.augment, "stop_isr_share": args.stop_isr_share or None}  # 0: no early stop
    if not args.seeds:
        return [AbcTrainer(topology, data, args.output, abc_config, train_config(args), **options)]
    if len(set(args.seeds)) != len(args.seeds):
        raise PairhuntError(f"--seeds {args.seeds}: every member needs its own seed")
    return [
        AbcTrainer(topology, data, Path(args.output) / f"seed_{seed}", abc_config,
                   dataclasses.replace(train_config(args), seed=seed), **options)
        for seed in args.seeds
    ]


def train_embedding(args: argparse.Namespace) -> int:
    """The theory map on the datasets of a finished run (each one theory)."""
    from pairhunt.rundir import require_finished
    from pairhunt.theory.inputs import load_events
    from pairhunt.train.config import EmbedConfig
    from pairhunt.train.embed_trainer import EmbedTrainer

    require_finished(args.run_dir)
    summary = json.loads((Path(args.run_dir) / "summary.json").read_text())
    theories = args.theories or sorted(summary["cutflow"])
    accounting: dict[str, dict] = {}
    library = {name: load_events(args.run_dir, args.method, [name], accounting=accounting) for name in theories}
    if args.max_events is not None:  # learning curves: the first N usable events of every theory
        library = {name: events.subset(slice(0, args.max_events)) for name, events in library.items()}
    config = EmbedConfig(
        hidden=args.hidden, latent=args.latent, set_size=args.set_size, margin=args.margin, sets_per_theory=args.sets_per_theory,
        steps=args.steps, validate_every=args.validate_every, learning_rate=args.learning_rate, validation_fraction=args.validation_fraction,
        window_fraction=args.window_fraction, library_sets=args.library_sets, unlike_quantile=args.unlike_quantile, seed=args.seed, threads=args.threads,
    )
    source = {"topology": summary["topology"], "topology_inputs": summary["topology_definition"]["inputs"], "method": args.method,
              "run_dir": str(Path(args.run_dir).resolve()), "library_events": accounting}
    history = EmbedTrainer(library, args.output, config, source).fit(progress=not args.no_progress)
    print(json.dumps(history[-1], indent=2))
    print(f"run directory: {Path(args.output).resolve()} (best.pt, config.json, history.json, library.json); "
          f"theories {', '.join(theories)}")
    return 0


def execute(args: argparse.Namespace) -> int:
    several = (args.kind == "spanet" and args.folds > 1) or (args.kind == "abc" and bool(args.seeds))
    calibration = None
    if args.kind == "abc":
        config = abc_config(args)
        topology, data = abc_data(args)
        trainers = abc_trainers(args, topology, data, config)
        if args.calibration_data:
            from pairhunt.train.data import from_nanoaod

            calibration = from_nanoaod(args.calibration_data, topology, require_truth=False)
    else:
        trainers = spanet_trainers(args)
    for trainer in trainers:
        # a fold or ensemble member that had not started when the run stopped starts now
        if args.resume and (not several or (trainer.run_dir / "last.pt").is_file()):
            trainer.resume()
        history = trainer.fit(progress=not args.no_progress)
        if args.kind == "abc":
            from pairhunt.train.abc_trainer import isr_start_warning

            trainer.calibrate(calibration)
            if warning := isr_start_warning(history):
                print(f"warning: {trainer.run_dir}: {warning}", file=sys.stderr)
            if trainer.stop_isr_share is not None and trainer.stopped is None:
                print(f"warning: {trainer.run_dir}: the background ISR pT share never fell below {trainer.stop_isr_share:g} in "
                      f"{args.epochs} epochs; best.pt has the lowest validation loss instead", file=sys.stderr)
        print(json.dumps(history[-1] if history else {}, indent=2))
        print(f"run directory: {trainer.run_dir.resolve()} (best.pt, last.pt, config.json, history.json)")
    if args.kind == "abc" and args.seeds:
        from pairhunt.train.abc_ensemble import assigner_first, write_members
        from pairhunt.train.abc_trainer import calibrate_ensemble

        write_members(args.output, assigner_first([trainer.run_dir for trainer in trainers]))
        calibrate_ensemble(args.output, data if calibration is None else calibration)
        print(f"ensemble of {len(trainers)}: {Path(args.output).resolve()} (ensemble.json, calibration.json)")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an assignment model: SPA-NET (supervised) or ABC (unsupervised, background only)",
        description="Train a model with torch (extra 'train'); export it with `pairhunt export`.",
    )
    if not installed("torch"):  # a base install: every other command works, this one says what it needs
        parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        parser.set_defaults(handler=lambda args: require("pairhunt train", "train"))
        return
    from pairhunt.train.config import ModelConfig, TrainConfig

    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    spanet = kinds.add_parser("spanet", help="supervised SPA-NET-style model (truth-labelled data)",
                              description="Supervised SPA-NET-style training: symmetric tensor attention, "
                              "permutation-minimal loss, partial events, per-parent detection head; optionally k-fold "
                              "by event number.")
    spanet.add_argument("--topology", required=True, help="shipped topology name, pairhunt YAML or SPANet event YAML")
    spanet.add_argument("--data", nargs="+", required=True, help="generated ROOT files (pairhunt generate) or one SPANet .h5")
    spanet.add_argument("-o", "--output", required=True, help="run directory")
    spanet.add_argument("--max-events", type=int, help="use at most this many events")
    spanet.add_argument(
        "--min-jets", type=int,
        help="train on events with at least this many jets (default: the topology's); for merged jets and leptons, "
        "objects, and no source needs more than this many",
    )
    spanet.add_argument(
        "--folds", type=int, default=1,
        help="k-fold models by NanoAOD event number: fold f trains on event %% k != f and scores event %% k == f; "
        "one run per fold in OUTPUT/fold_<f> (default 1: one model)",
    )
    spanet.add_argument(
        "--detection-weight", type=float, default=TrainConfig.detection_weight,
        help=f"weight of the detection head's binary cross-entropy beside the assignment loss (default {TrainConfig.detection_weight:g})",
    )
    add_training_options(spanet, learning_rate=2e-3, batch_size=512)
    size = ModelConfig()
    spanet.add_argument("--dim", type=int, default=size.dim, help=f"embedding width (default {size.dim})")
    spanet.add_argument("--heads", type=int, default=size.heads, help=f"attention heads (default {size.heads})")
    spanet.add_argument("--encoder-layers", type=int, default=size.encoder_layers, help=f"shared transformer blocks (default {size.encoder_layers})")
    spanet.add_argument("--branch-layers", type=int, default=size.branch_layers, help=f"transformer blocks per parent (default {size.branch_layers})")
    spanet.add_argument("--tensor-dim", type=int, default=size.tensor_dim, help=f"width of the symmetric tensor attention (default {size.tensor_dim})")
    spanet.add_argument(
        "--pair-bias", type=int, default=size.pair_bias, metavar="WIDTH",
        help="bias every attention block with an MLP of this width over the pairwise jet features (Δη, Δφ, ΔR, m_ij), "
        "as the ABC model and the Particle Transformer do; needs the kinematic features log_pt, eta, sin_phi, cos_phi, "
        f"log_mass (default {size.pair_bias}: no bias, as the shipped models)",
    )
    spanet.add_argument(
        "--tuple-mass", type=int, default=size.tuple_mass, metavar="WIDTH",
        help="add to each parent's tuple score an MLP of this width over the tuple's invariant masses and its pairs' "
        "(a top's m_jjj and m_jj: what a chi-square fit reads); needs the same kinematic features as --pair-bias "
        f"(default {size.tuple_mass}: none, as the shipped models)",
    )
    spanet.add_argument("--augment", action="store_true",
                        help="rotate every training batch randomly in phi and mirror it in eta (exact symmetries; MET turns with it)")
    spanet.set_defaults(handler=execute)

    from pairhunt.train.config import AbcConfig

    defaults = AbcConfig()
    abc = kinds.add_parser("abc", help="unsupervised ABC model (background events only)",
                           description="ABC: assign jets to two identical parents and ISR by making the two candidates "
                           "alike in an autoencoder's latent space; its reconstruction error is the anomaly score. "
                           "Train on background only (weighted generated QCD or data), never on signal.")
    abc.add_argument("--topology", default="pair_abc", help="shipped topology name or YAML (default pair_abc)")
    abc.add_argument("--data", nargs="+", required=True, help="background ROOT files (genWeight used when present)")
    abc.add_argument("-o", "--output", required=True, help="run directory")
    abc.add_argument("--max-events", type=int, help="read at most this many events per file")
    abc.add_argument("--train-events", type=int, help="use the first N selected events (learning curves)")
    add_training_options(abc, learning_rate=1e-3, batch_size=256, epochs=ABC_EPOCHS, validate_every=ABC_VALIDATE_EVERY)
    abc.add_argument("--dim", type=int, default=defaults.dim, help=f"embedding width (default {defaults.dim})")
    abc.add_argument("--heads", type=int, default=defaults.heads, help=f"attention heads (default {defaults.heads})")
    abc.add_argument("--layers", type=int, default=defaults.layers, help="ABC layers")
    abc.add_argument("--latent", type=int, default=defaults.latent, help="autoencoder latent dimension")
    abc.add_argument("--temperature", type=float, default=defaults.temperature, help="category softmax temperature")
    for term in LOSS_TERMS:
        abc.add_argument(f"--{term}-weight", type=float, default=getattr(defaults, f"{term}_weight"), help=f"weight of the {term} loss")
    abc.add_argument("--margin", type=float, default=defaults.margin, help="latent distance random pairs are pushed beyond")
    abc.add_argument(
        "--seeds", type=int, nargs="+",
        help="train a deep ensemble, one member per seed (OUTPUT/seed_<s>): the member with the best validation loss "
        "assigns the jets, the anomaly score is the geometric mean of every member's (default: one model, --seed)",
    )
    abc.add_argument(
        "--calibration-data", nargs="+",
        help="background ROOT files whose selected events calibrate the anomaly score in bins of the average mass "
        "(default: the training events); a sample biased to high p̂T puts calibration bins where heavy signals sit",
    )
    abc.add_argument(
        "--stop-isr-share", type=float, default=ABC_STOP_ISR_SHARE,
        help="end each run at the first validation where the background pT share in ISR falls below this: every seed "
        f"then leaves the ISR-heavy start of training and none trains on until ISR is unused (default {ABC_STOP_ISR_SHARE:g}; "
        "0: no early stop, best.pt has the lowest validation loss; with --validate-every 0 too, as the shipped model was trained)",
    )
    abc.add_argument("--augment", action="store_true",
                     help="rotate every training batch randomly in phi and mirror it in eta (exact symmetries)")
    abc.set_defaults(handler=execute)
    register_embed(kinds)


def register_embed(kinds) -> None:
    from pairhunt.train.config import EmbedConfig

    defaults = EmbedConfig()
    embed = kinds.add_parser(
        "embed", help="theory map: a set embedding of a library of theories (one dataset each of a finished run)",
        description="Train the theory map: sets of events of one theory land close together in a latent space of 2-4 "
        "dimensions (deep sets, contrastive margin loss). The library is a finished `pairhunt run` with one dataset per "
        "theory; `pairhunt characterize` places a mass window's events on the exported map.",
    )
    embed.add_argument("run_dir", help="finished pairhunt run over the theory library")
    embed.add_argument("--method", required=True, help="the assignment method whose candidates the map reads (e.g. mass_asymmetry_6)")
    embed.add_argument("--theories", nargs="+", help="datasets of the run to learn, each one theory (default: all)")
    embed.add_argument("-o", "--output", required=True, help="run directory")
    embed.add_argument("--max-events", type=int, help="use the first N usable events of every theory (learning curves)")
    embed.add_argument("--set-size", type=int, default=defaults.set_size, help=f"events per set (default {defaults.set_size})")
    embed.add_argument("--latent", type=int, default=defaults.latent, help=f"latent dimension (default {defaults.latent})")
    embed.add_argument("--hidden", type=int, default=defaults.hidden, help=f"width of the MLPs (default {defaults.hidden})")
    embed.add_argument("--margin", type=float, default=defaults.margin, help="distance sets of different theories are pushed beyond")
    embed.add_argument("--steps", type=int, default=defaults.steps, help=f"training steps (default {defaults.steps})")
    embed.add_argument("--validate-every", type=int, default=defaults.validate_every, help="steps between validations")
    embed.add_argument("--sets-per-theory", type=int, default=defaults.sets_per_theory, help="sets of each theory per step")
    embed.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="peak AdamW learning rate")
    embed.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction,
                       help=f"events of each theory held out (checkpoint, unlike thresholds; default {defaults.validation_fraction:g})")
    embed.add_argument("--window-fraction", type=float, default=defaults.window_fraction,
                       help=f"fraction of sets drawn from a mass window around a random event's mass, as characterize forms them "
                       f"(default {defaults.window_fraction:g})")
    embed.add_argument("--library-sets", type=int, default=defaults.library_sets, help="embedded sets per theory that make its density")
    embed.add_argument("--unlike-quantile", type=float, default=defaults.unlike_quantile,
                       help=f"fraction of a theory's own validation sets below its unlike threshold (default {defaults.unlike_quantile:g})")
    embed.add_argument("--seed", type=int, default=defaults.seed, help="fixes the split, initialisation and sets (default 1)")
    embed.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads")
    embed.add_argument("--no-progress", action="store_true", help="no progress bar")
    embed.set_defaults(handler=train_embedding)


def add_training_options(
    parser: argparse.ArgumentParser, learning_rate: float, batch_size: int, epochs: int = 20, validate_every: int = 0
) -> None:
    """Options every model kind shares: optimisation, seed, threads, resume, progress."""
    parser.add_argument("--epochs", type=int, default=epochs, help=f"training epochs (default {epochs})")
    parser.add_argument("--batch-size", type=int, default=batch_size, help=f"events per step (default {batch_size})")
    parser.add_argument("--learning-rate", type=float, default=learning_rate, help=f"peak AdamW learning rate (default {learning_rate:g})")
    parser.add_argument("--validation-fraction", type=float, default=0.1, help="events held out for validation (default 0.1)")
    parser.add_argument("--validate-every", type=int, default=validate_every,
                        help=f"also validate every N steps, best.pt may come from any validation (default {validate_every}; "
                        "0: each epoch's end only)")
    parser.add_argument("--seed", type=int, default=1, help="fixes the split, initialisation and batch order (default 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
