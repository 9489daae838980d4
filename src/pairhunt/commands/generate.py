"""``pairhunt generate``: Monte Carlo samples into NanoAOD-like ROOT files."""

from __future__ import annotations

import argparse

from pairhunt.commands.display import print_summary
from pairhunt.extras import require


def execute(args: argparse.Namespace) -> int:
    require("pairhunt generate", "generate")
    from pairhunt.generate import Request, generate, make_sample

    sample = make_sample(args.sample, mass=args.mass, mchi=args.mchi, pthat_min=args.pthat_min, bias_pow=args.bias_pow)
    request = Request(sample, args.events, seed=args.seed, block_size=args.block_size)
    summary = generate(request, args.output, workers=args.workers, progress=not args.no_progress)
    print_summary(f"pairhunt generate {args.sample}", summary)
    return 0


def register(subparsers) -> None:
    from pairhunt.generate.samples import SAMPLE_NAMES

    parser = subparsers.add_parser(
        "generate",
        help="generate a Pythia8 sample into a NanoAOD-like ROOT file",
        description=(
            "Pythia8 at 13 TeV -> visible particles -> anti-kT R=0.4 jets with smearing and "
            "b-tagging (and isolated electrons and muons for leptonic decays) -> NanoAOD-like ROOT "
            "file with truth labels (Jet_truthParent, Jet_truthProduct, Electron_/Muon_truth...). "
            "A summary is printed and written next to the file."
        ),
    )
    parser.add_argument("sample", choices=SAMPLE_NAMES, help="process to generate")
    parser.add_argument("-n", "--events", type=int, default=1000, help="number of events (default 1000)")
    parser.add_argument("-o", "--output", required=True, help="output ROOT file")
    parser.add_argument("--seed", type=int, default=1, help="random seed: same seed, same file (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--mass", type=float, default=1500.0, help="gluino or stop mass in GeV (default 1500)")
    parser.add_argument("--mchi", type=float, default=500.0, help="neutralino mass in GeV, cascade only (default 500)")
    parser.add_argument("--pthat-min", type=float, default=250.0, help="QCD pTHat minimum in GeV (default 250)")
    parser.add_argument(
        "--bias-pow", type=float, default=4.0, help="QCD pTHat bias power, compensated by genWeight (default 4)"
    )
    parser.add_argument(
        "--block-size", type=int, default=1000, help="events per Pythia instance; part of the seed (default 1000)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=execute)
